//! The recovery shape on Kubernetes (the generation after one that failed for memory).
//!
//! - Spark ≥ 4.2: `spark.kubernetes.allocation.recoveryMode.enabled=true`, Spark's own
//!   recovery-mode executors (SPARK-55639) from the first executor: each runs one task
//!   (`SPARK_EXECUTOR_CORES = spark.task.cpus`) in a pod of the same memory and CPU request.
//! - Older Spark (or a version tether does not know): the shared shape of
//!   [`crate::spark::recovery`] (`spark.executor.cores = spark.task.cpus`), keeping
//!   `spark.kubernetes.executor.request.cores` at the executor's original cores, so the pod is
//!   the same and only the task slots shrink.
//! - The native flag set to `false` by the user means fail-fast: no recovery shape.
//!
//! ## Caveats
//! - Recovery-mode executors stay for the rest of the application and lower its throughput
//!   (one task per executor); the plan's description says so, for the run's history.
use std::collections::BTreeMap;

use crate::spark::{
    conf::ConfValue,
    recovery::{recovery_plan, RecoveryPlan, SparkRecovery},
};

/// Spark's flag for recovery-mode executors (Spark ≥ 4.2, Kubernetes only).
pub const NATIVE_FLAG: &str = "spark.kubernetes.allocation.recoveryMode.enabled";
const REQUEST_CORES: &str = "spark.kubernetes.executor.request.cores";

/// `major.minor` of a Spark version text (`4.2.1`, `4.3.0-preview`).
pub fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The plan for a job with `conf`, executor cores `executor_cores` (the spec's), on Spark
/// `version`; `None` when the user switched the native flag off (fail-fast).
pub fn k8s_recovery_plan(
    conf: &BTreeMap<String, ConfValue>,
    executor_cores: Option<u32>,
    recovery: &SparkRecovery,
    version: Option<(u32, u32)>,
) -> Option<RecoveryPlan> {
    let flag = conf.get(NATIVE_FLAG).map(|v| v.to_string());
    if flag
        .as_deref()
        .is_some_and(|f| f.trim().eq_ignore_ascii_case("false"))
    {
        return None;
    }
    let cost = "recovery executors stay for the rest of the application and lower its throughput";
    if version.is_some_and(|v| v >= (4, 2)) {
        let mut overrides = BTreeMap::from([(NATIVE_FLAG.to_string(), "true".to_string())]);
        for (k, v) in &recovery.conf {
            overrides.insert(k.clone(), v.to_string());
        }
        let (major, minor) = version.unwrap_or_default();
        return Some(RecoveryPlan {
            overrides,
            description: format!(
                "Spark {major}.{minor} recovery-mode executors from the first one ({NATIVE_FLAG}=true: one task each, \
                 same pod memory and CPU request); {cost}"
            ),
        });
    }
    let mut with_cores = conf.clone();
    if let Some(c) = executor_cores {
        with_cores
            .entry("spark.executor.cores".into())
            .or_insert(ConfValue::Int(c.into()));
    }
    let mut plan = recovery_plan(&with_cores, recovery);
    let original = with_cores
        .get("spark.executor.cores")
        .map(|v| v.to_string());
    if let Some(cores) = original.filter(|_| !conf.contains_key(REQUEST_CORES)) {
        if !recovery.conf.contains_key(REQUEST_CORES) {
            plan.overrides.insert(REQUEST_CORES.into(), cores.clone());
            plan.description
                .push_str(&format!(", {REQUEST_CORES} {cores} kept (same pod)"));
        }
    }
    plan.description.push_str(&format!("; {cost}"));
    Some(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_on_42_and_later_shared_shape_with_the_same_pod_before() {
        let conf = BTreeMap::from([("spark.task.cpus".to_string(), ConfValue::Int(1))]);
        let r = SparkRecovery::default();
        let p = k8s_recovery_plan(&conf, Some(4), &r, Some((4, 2))).unwrap();
        assert_eq!(
            p.overrides.get(NATIVE_FLAG).map(String::as_str),
            Some("true")
        );
        assert!(!p.overrides.contains_key("spark.executor.cores"));
        assert!(p.description.contains("throughput"), "{}", p.description);
        let p = k8s_recovery_plan(&conf, Some(4), &r, Some((4, 1))).unwrap();
        assert_eq!(
            p.overrides.get("spark.executor.cores").map(String::as_str),
            Some("1")
        );
        assert_eq!(
            p.overrides.get(REQUEST_CORES).map(String::as_str),
            Some("4")
        );
        assert!(!p.overrides.contains_key(NATIVE_FLAG));
        assert_eq!(major_minor("4.3.0-preview"), Some((4, 3)));
    }

    #[test]
    fn the_native_flag_off_is_fail_fast() {
        let conf = BTreeMap::from([(NATIVE_FLAG.to_string(), ConfValue::Bool(false))]);
        assert!(k8s_recovery_plan(&conf, None, &SparkRecovery::default(), Some((4, 3))).is_none());
    }
}
