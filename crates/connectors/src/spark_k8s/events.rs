//! Spark 4.2's native recovery (level 1) made visible: the executor pods of a running job
//! ([`BackendEvents`]), read after each active poll, give the history "executor 1 OOMKilled"
//! and "executor 1 OOMKilled → recovery-mode executors from executor 3 on (1 core each)".
//!
//! The executors are the pods labelled `tether-tag=<the run's tag>` and `spark-role=executor`
//! (tether puts its tag on executors through `spark.kubernetes.executor.label.*`; Spark adds
//! `spark-role` and `spark-exec-id`). An executor is:
//! - lost to OOM when its container terminated `OOMKilled`, or with exit code 52 (the JVM's
//!   `OutOfMemoryError` in Spark's executor) or 137 (SIGKILL) — what Spark 4.2 itself counts
//!   as an OOM-like loss (SPARK-55639);
//! - recovery-mode when its `SPARK_EXECUTOR_CORES` differs from the normal executors' cores
//!   (the spec's `executor.cores` or `spark.executor.cores`, else the first executor's).
//!
//! ## Guarantees
//! - Each executor's OOM and each recovery-mode executor is reported once per cursor (the
//!   cursor lists the events reported); the first recovery-mode executor's message names the
//!   OOM before it and the cost (they stay for the rest of the application).
//!
//! ## Caveats
//! - Spark deletes a lost executor's pod (`spark.kubernetes.executor.deleteOnTermination`,
//!   default true): an OOM between two polls whose pod is gone by the next one is not seen;
//!   the recovery-mode executors that follow it are.
use std::collections::BTreeSet;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use tether_core::connector::{BackendEvent, BackendEvents, EventCursor, EventsError, JobRef};

use super::{spec::TAG_LABEL, state::label, SparkK8s};
use crate::spark::tag::label_value;

/// One executor pod as the events read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executor {
    /// `spark-exec-id` (or `SPARK_EXECUTOR_ID`).
    pub id: u64,
    /// `SPARK_EXECUTOR_CORES`, if set.
    pub cores: Option<u32>,
    /// The container's terminated reason and exit code, if it ended.
    pub ended: Option<(String, i32)>,
}

impl Executor {
    /// The executor of pod `pod`, if it says its id.
    pub fn of(pod: &Pod) -> Option<Executor> {
        let container = pod.spec.as_ref()?.containers.first();
        let env = |name: &str| {
            container?
                .env
                .as_ref()?
                .iter()
                .find(|e| e.name == name)?
                .value
                .clone()
        };
        let id = label(pod, "spark-exec-id")
            .map(str::to_string)
            .or_else(|| env("SPARK_EXECUTOR_ID"))?
            .trim()
            .parse()
            .ok()?;
        let cores = env("SPARK_EXECUTOR_CORES").and_then(|c| c.trim().parse().ok());
        let ended = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .find_map(|c| c.state.as_ref()?.terminated.as_ref())
            })
            .map(|t| (t.reason.clone().unwrap_or_default(), t.exit_code));
        Some(Executor { id, cores, ended })
    }

    /// How it was lost to OOM, if it was.
    fn oom(&self) -> Option<String> {
        let (reason, code) = self.ended.as_ref()?;
        let id = self.id;
        match (reason.as_str(), *code) {
            ("OOMKilled", c) => Some(format!("executor {id} OOMKilled (exit {c})")),
            (_, 52) => Some(format!(
                "executor {id} lost to OOM (exit 52: java.lang.OutOfMemoryError)"
            )),
            (_, 137) => Some(format!(
                "executor {id} killed (exit 137, SIGKILL: Spark counts it as an OOM loss)"
            )),
            _ => None,
        }
    }
}

/// The events of `executors` (any order) not in `reported` (event keys), with their keys.
/// `normal`: the normal executors' cores, if the spec says.
pub fn executor_events(
    executors: &[Executor],
    normal: Option<u32>,
    reported: &BTreeSet<String>,
) -> Vec<(String, BackendEvent)> {
    let mut execs = executors.to_vec();
    execs.sort_by_key(|e| e.id);
    let normal = normal.or_else(|| execs.first().and_then(|e| e.cores));
    let first_recovery = execs
        .iter()
        .find(|e| e.cores.is_some() && e.cores != normal)
        .map(|e| e.id);
    let mut out = vec![];
    let mut last_oom: Option<String> = None;
    for e in &execs {
        let cores = e.cores.unwrap_or_default();
        let plural = if cores == 1 { "" } else { "s" };
        if e.cores.is_some() && e.cores != normal {
            let key = format!("recovery:{}", e.id);
            let message = if Some(e.id) == first_recovery {
                let before = last_oom
                    .as_ref()
                    .map(|m| format!("{m} → "))
                    .unwrap_or_default();
                let was = normal
                    .map(|n| format!(" instead of {n}"))
                    .unwrap_or_default();
                format!(
                    "{before}recovery-mode executors from executor {} on ({cores} core{plural} each{was}); \
                     they stay for the rest of the application and lower its throughput",
                    e.id
                )
            } else {
                format!(
                    "recovery-mode executor {} started ({cores} core{plural})",
                    e.id
                )
            };
            out.push((key, event("recovery-executor", message)));
        }
        if let Some(message) = e.oom() {
            last_oom = Some(message.clone());
            out.push((format!("oom:{}", e.id), event("executor-oom", message)));
        }
    }
    out.retain(|(k, _)| !reported.contains(k));
    out
}

fn event(kind: &str, message: String) -> BackendEvent {
    BackendEvent {
        kind: kind.into(),
        message,
        at_ms: None,
    }
}

fn keys(cursor: Option<&EventCursor>) -> BTreeSet<String> {
    cursor
        .map(|c| {
            c.0.split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait]
impl BackendEvents for SparkK8s {
    async fn events(
        &self,
        job: &JobRef,
        since: Option<&EventCursor>,
    ) -> Result<(Vec<BackendEvent>, EventCursor), EventsError> {
        let selector = format!(
            "{TAG_LABEL}={},spark-role=executor",
            label_value(&job.submission.tag)
        );
        let pods = self
            .kube
            .pods_with(&selector)
            .await
            .map_err(|e| EventsError {
                reason: crate::text::clean(&e.to_string(), &[]),
            })?;
        let executors: Vec<Executor> = pods.iter().filter_map(Executor::of).collect();
        let mut reported = keys(since);
        let found = executor_events(&executors, self.normal_cores(), &reported);
        let mut events = vec![];
        for (key, e) in found {
            reported.insert(key);
            events.push(e);
        }
        let cursor = EventCursor(reported.into_iter().collect::<Vec<_>>().join(","));
        Ok((events, cursor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(id: u64, cores: u32, ended: Option<(&str, i32)>) -> Executor {
        Executor {
            id,
            cores: Some(cores),
            ended: ended.map(|(r, c)| (r.to_string(), c)),
        }
    }

    #[test]
    fn an_oom_then_recovery_executors_are_told_once_each() {
        let execs = [
            ex(2, 4, None),
            ex(1, 4, Some(("OOMKilled", 137))),
            ex(3, 1, None),
            ex(4, 1, None),
        ];
        let all = executor_events(&execs, Some(4), &BTreeSet::new());
        let msgs: Vec<&str> = all.iter().map(|(_, e)| e.message.as_str()).collect();
        assert_eq!(msgs[0], "executor 1 OOMKilled (exit 137)");
        assert!(
            msgs[1].starts_with(
                "executor 1 OOMKilled (exit 137) → recovery-mode executors from executor 3 on (1 core each instead of 4)"
            ),
            "{}",
            msgs[1]
        );
        assert_eq!(msgs[2], "recovery-mode executor 4 started (1 core)");
        let reported: BTreeSet<String> = all.into_iter().map(|(k, _)| k).collect();
        assert!(executor_events(&execs, Some(4), &reported).is_empty());
        // Exit 52 and a normal shape without the spec's cores (the first executor's).
        let execs = [ex(1, 2, Some(("Error", 52))), ex(2, 2, None)];
        let got = executor_events(&execs, None, &BTreeSet::new());
        assert_eq!(got.len(), 1);
        assert!(got[0].1.message.contains("exit 52"), "{:?}", got[0]);
        // A plain error is no OOM.
        assert!(
            executor_events(&[ex(1, 2, Some(("Error", 1)))], None, &BTreeSet::new()).is_empty()
        );
    }
}
