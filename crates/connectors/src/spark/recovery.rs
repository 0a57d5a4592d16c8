//! The recovery shape of every Spark backend (Spark's recovery-mode executors, SPARK-55639,
//! applied at submission instead of inside the driver): after a generation failed with `oom`,
//! the next one keeps `spark.executor.memory` and sets
//! `spark.executor.cores = max(1, ceil(spark.task.cpus))` (default 1), so each executor JVM runs
//! a single task with all its memory; `[recovery.conf]` then overrides or extends it.
//!
//! **Dynamic allocation is kept, and nothing is capped.** With `spark.dynamicAllocation.enabled`
//! Spark asks for executors by pending tasks, so one-task executors mean up to one executor per
//! pending task; the user's `spark.dynamicAllocation.maxExecutors` (and the cluster's quota) still
//! bounds that, and tether cannot know a better cap than the user. Turning dynamic allocation off
//! would need an executor count tether would have to invent. The description says so, so a person
//! reading the history sees it; `[recovery.conf]` can set `maxExecutors`.
//!
//! ## Guarantees
//! - Pure: the same conf gives the same overrides and [`RecoveryPlan::description`].
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::conf::ConfValue;

/// `[recovery]` of a Spark spec.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparkRecovery {
    /// `false` disables the recovery shape: an OOM failure is retried as it was.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Spark properties applied on top of the default recovery overrides.
    #[serde(default)]
    pub conf: BTreeMap<String, ConfValue>,
}

fn default_true() -> bool {
    true
}

impl Default for SparkRecovery {
    /// Enabled, no overrides: what a spec without `[recovery]` gets.
    fn default() -> Self {
        SparkRecovery {
            enabled: true,
            conf: BTreeMap::new(),
        }
    }
}

/// The default recovery overrides and the user's ones, as applied to a spec's conf.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryPlan {
    /// Properties set (or replaced) in the recovery shape.
    pub overrides: BTreeMap<String, String>,
    /// For the run's history, e.g.
    /// `spark.executor.cores 4 -> 1 (= spark.task.cpus), spark.executor.memory 512m kept`.
    pub description: String,
}

impl RecoveryPlan {
    /// The text for the run's history.
    pub fn describe(&self) -> &str {
        &self.description
    }
}

/// What a connector's `RecoveryShape::describe` says: the plan's description, or that recovery
/// is disabled.
pub fn describe(plan: Option<&RecoveryPlan>) -> String {
    plan.map_or_else(|| "recovery disabled".into(), |p| p.description.clone())
}

/// The recovery plan of a job whose conf is `conf` (see the module docs).
pub fn recovery_plan(conf: &BTreeMap<String, ConfValue>, recovery: &SparkRecovery) -> RecoveryPlan {
    let get = |k: &str| conf.get(k).map(ToString::to_string);
    let task_cpus_text = get("spark.task.cpus").unwrap_or_else(|| "1".into());
    // Spark 4.3 accepts fractional task CPUs; an executor still needs a whole core.
    let task_cpus = task_cpus_text
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0)
        .unwrap_or(1.0);
    let cores = (task_cpus.ceil() as u64).max(1).to_string();
    let mut overrides = BTreeMap::new();
    overrides.insert("spark.executor.cores".to_string(), cores.clone());
    for (k, v) in &recovery.conf {
        overrides.insert(k.clone(), v.to_string());
    }
    let mut parts = Vec::new();
    let before =
        get("spark.executor.cores").unwrap_or_else(|| "unset (all of a worker's cores)".into());
    let after = &overrides["spark.executor.cores"];
    if recovery.conf.contains_key("spark.executor.cores") {
        parts.push(format!(
            "spark.executor.cores {before} -> {after} ([recovery.conf])"
        ));
    } else {
        parts.push(format!(
            "spark.executor.cores {before} -> {after} (= spark.task.cpus {task_cpus_text})"
        ));
    }
    match (
        get("spark.executor.memory"),
        overrides.get("spark.executor.memory"),
    ) {
        (old, Some(new)) => parts.push(format!(
            "spark.executor.memory {} -> {new}",
            old.unwrap_or_else(|| "unset".into())
        )),
        (Some(old), None) => parts.push(format!("spark.executor.memory {old} kept")),
        (None, None) => parts.push("spark.executor.memory kept (Spark's default)".into()),
    }
    let dynamic = overrides
        .get("spark.dynamicAllocation.enabled")
        .cloned()
        .or_else(|| get("spark.dynamicAllocation.enabled"));
    if dynamic.is_some_and(|d| d.trim().eq_ignore_ascii_case("true")) {
        let max = overrides
            .get("spark.dynamicAllocation.maxExecutors")
            .cloned()
            .or_else(|| get("spark.dynamicAllocation.maxExecutors"))
            .unwrap_or_else(|| "unbounded".into());
        parts.push(format!(
            "spark.dynamicAllocation kept (up to one executor per task, maxExecutors {max})"
        ));
    }
    for (k, v) in &recovery.conf {
        if k != "spark.executor.cores" && k != "spark.executor.memory" {
            parts.push(format!("{k} = {v}"));
        }
    }
    RecoveryPlan {
        overrides,
        description: parts.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pairs: &[(&str, &str)]) -> BTreeMap<String, ConfValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ConfValue::Text(v.to_string())))
            .collect()
    }

    #[test]
    fn executor_cores_follow_task_cpus_and_memory_is_kept() {
        let c = conf(&[
            ("spark.task.cpus", "2"),
            ("spark.executor.cores", "8"),
            ("spark.executor.memory", "8g"),
        ]);
        let plan = recovery_plan(&c, &SparkRecovery::default());
        assert_eq!(plan.overrides.len(), 1);
        assert_eq!(plan.overrides["spark.executor.cores"], "2");
        assert_eq!(
            plan.describe(),
            "spark.executor.cores 8 -> 2 (= spark.task.cpus 2), spark.executor.memory 8g kept"
        );
    }

    #[test]
    fn dynamic_allocation_is_kept_and_described() {
        let c = conf(&[
            ("spark.dynamicAllocation.enabled", "true"),
            ("spark.dynamicAllocation.maxExecutors", "20"),
        ]);
        let plan = recovery_plan(&c, &SparkRecovery::default());
        assert!(!plan
            .overrides
            .contains_key("spark.dynamicAllocation.enabled"));
        assert!(
            plan.describe().ends_with(
                "spark.dynamicAllocation kept (up to one executor per task, maxExecutors 20)"
            ),
            "{}",
            plan.describe()
        );
        let off = recovery_plan(
            &conf(&[("spark.dynamicAllocation.enabled", "false")]),
            &SparkRecovery::default(),
        );
        assert!(
            !off.describe().contains("dynamicAllocation"),
            "{}",
            off.describe()
        );
    }
}
