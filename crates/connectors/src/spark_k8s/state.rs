//! A driver pod's state as a [`JobStatus`]. Pure.
//!
//! | pod | status |
//! |---|---|
//! | label `tether-tag` not ours | `Mismatch` |
//! | `Pending` | active, queued (with the container's waiting reason) |
//! | `Running` | active, running (`terminating` once deleted) |
//! | `Succeeded` | succeeded: `{"pod", "namespace", "exit_code"}` |
//! | `Failed` while being deleted (`deletionTimestamp`) | failed, killed: the kubelet stopped it for the delete (a cancel) |
//! | `Failed` | failed: the container's terminated reason and exit code, the pod's reason and message, and the `spark.exit-exception` annotation Spark 4 writes; out of memory through [`crate::spark::oom`] |
//! | `Unknown` or no phase | unknown (the node stopped reporting) |
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use serde_json::json;
use tether_core::observe::{FailureClass, JobStatus};

use super::spec::TAG_LABEL;
use crate::spark::oom::{classify, Facts, Verdict};

/// The annotation Spark 4 puts on a failed driver pod: the exception that ended it.
pub const EXIT_EXCEPTION: &str = "spark.exit-exception";

/// The value of label `key` of `pod`.
pub fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

/// The driver container's termination, if it ended (the first container: Spark's driver).
fn terminated(pod: &Pod) -> Option<&ContainerStateTerminated> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses
        .iter()
        .find_map(|c| c.state.as_ref()?.terminated.as_ref())
}

/// The status of driver pod `pod`, which should carry label value `tag_label`.
pub fn status_of(pod: &Pod, tag_label: &str) -> JobStatus {
    let name = pod.metadata.name.clone().unwrap_or_default();
    if label(pod, TAG_LABEL) != Some(tag_label) {
        return JobStatus::Mismatch {
            found: format!(
                "pod {name} has label {TAG_LABEL}={:?}, not {tag_label:?}",
                label(pod, TAG_LABEL).unwrap_or("(none)")
            ),
        };
    }
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.as_deref().unwrap_or("");
    let deleting = pod.metadata.deletion_timestamp.is_some();
    match phase {
        "Pending" => {
            let waiting = status
                .container_statuses
                .iter()
                .flatten()
                .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
            let detail = match waiting {
                Some(w) => format!("pod {name} Pending ({w})"),
                None => format!("pod {name} Pending"),
            };
            JobStatus::queued(detail)
        }
        "Running" if deleting => JobStatus::running(format!("pod {name} Running, terminating")),
        "Running" => JobStatus::running(format!("pod {name} Running")),
        "Succeeded" => JobStatus::Succeeded {
            result: json!({
                "pod": name,
                "namespace": pod.metadata.namespace,
                "exit_code": terminated(pod).map_or(0, |t| t.exit_code),
            }),
        },
        "Failed" => failed(pod, &name),
        other => JobStatus::Unknown {
            reason: format!(
                "pod {name} is in phase {:?}: its node stopped reporting",
                if other.is_empty() { "(none)" } else { other }
            ),
        },
    }
}

fn failed(pod: &Pod, name: &str) -> JobStatus {
    let status = pod.status.clone().unwrap_or_default();
    let term = terminated(pod);
    let exception = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(EXIT_EXCEPTION))
        .cloned();
    let mut parts = vec![format!("pod {name} Failed")];
    if let Some(t) = term {
        parts.push(format!(
            "container {} (exit code {})",
            t.reason.as_deref().unwrap_or("terminated"),
            t.exit_code
        ));
        if let Some(m) = t.message.as_deref().filter(|m| !m.is_empty()) {
            parts.push(m.to_string());
        }
    }
    if let Some(r) = &status.reason {
        parts.push(match &status.message {
            Some(m) => format!("{r}: {m}"),
            None => r.clone(),
        });
    }
    if let Some(e) = &exception {
        parts.push(format!("{EXIT_EXCEPTION}: {e}"));
    }
    let verdict = classify(Facts {
        log: exception.as_deref(),
        exit_code: term.map(|t| t.exit_code),
        reason: term.and_then(|t| t.reason.as_deref()),
    });
    // Since Kubernetes 1.27 the kubelet moves a deleted pod to a terminal phase before it goes:
    // a pod that failed while being deleted was stopped by the delete (a cancel), unless the
    // container itself says it ran out of memory first (exit 143 is the delete's SIGTERM here,
    // not the OOM signal it is for a cluster manager's kill).
    let deleted = pod.metadata.deletion_timestamp.is_some()
        && term.and_then(|t| t.reason.as_deref()) != Some("OOMKilled");
    let class = match verdict {
        _ if deleted => {
            parts.push("deleted (cancelled)".into());
            FailureClass::Killed
        }
        Verdict::Oom { evidence, .. } => {
            parts.push(format!("out of memory: {evidence}"));
            FailureClass::Oom
        }
        _ if status.reason.as_deref() == Some("Evicted") => FailureClass::Lost,
        _ => FailureClass::Other,
    };
    JobStatus::Failed {
        class,
        message: parts.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_core::observe::ActiveState;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn base(phase: &str, state: serde_json::Value) -> serde_json::Value {
        json!({"metadata": {"name": "d", "namespace": "ns", "labels": {"tether-tag": "t-g1"}},
               "status": {"phase": phase, "containerStatuses": [{"name": "spark-kubernetes-driver",
                 "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": state}]}})
    }

    #[test]
    fn phases_map_to_statuses() {
        let s = status_of(
            &pod(base(
                "Pending",
                json!({"waiting": {"reason": "ContainerCreating"}}),
            )),
            "t-g1",
        );
        assert!(
            matches!(&s, JobStatus::Active { state: ActiveState::Queued, detail } if detail.contains("ContainerCreating")),
            "{s:?}"
        );
        let s = status_of(&pod(base("Running", json!({"running": {}}))), "t-g1");
        assert!(
            matches!(
                s,
                JobStatus::Active {
                    state: ActiveState::Running,
                    ..
                }
            ),
            "{s:?}"
        );
        let s = status_of(
            &pod(base(
                "Succeeded",
                json!({"terminated": {"exitCode": 0, "reason": "Completed"}}),
            )),
            "t-g1",
        );
        assert!(matches!(s, JobStatus::Succeeded { .. }), "{s:?}");
        let s = status_of(&pod(base("Unknown", json!({}))), "t-g1");
        assert!(matches!(s, JobStatus::Unknown { .. }), "{s:?}");
        let s = status_of(&pod(base("Running", json!({}))), "other-g1");
        assert!(matches!(s, JobStatus::Mismatch { .. }), "{s:?}");
    }

    #[test]
    fn a_failed_driver_says_reason_exit_code_and_exception_and_oom_is_classified() {
        let mut p = base(
            "Failed",
            json!({"terminated": {"exitCode": 1, "reason": "Error"}}),
        );
        p["metadata"]["annotations"] =
            json!({EXIT_EXCEPTION: "java.lang.IllegalStateException: bad input"});
        match status_of(&pod(p), "t-g1") {
            JobStatus::Failed { class, message } => {
                assert_eq!(class, FailureClass::Other);
                assert!(
                    message.contains("Error (exit code 1)") && message.contains("bad input"),
                    "{message}"
                );
            }
            s => panic!("{s:?}"),
        }
        let p = base(
            "Failed",
            json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}),
        );
        match status_of(&pod(p), "t-g1") {
            JobStatus::Failed { class, message } => {
                assert_eq!(class, FailureClass::Oom, "{message}");
                assert!(message.contains("OOMKilled"), "{message}");
            }
            s => panic!("{s:?}"),
        }
        let mut p = base(
            "Failed",
            json!({"terminated": {"exitCode": 143, "reason": "Error"}}),
        );
        p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:30Z");
        match status_of(&pod(p), "t-g1") {
            JobStatus::Failed { class, message } => {
                assert_eq!(class, FailureClass::Killed, "{message}");
                assert!(message.contains("deleted"), "{message}");
            }
            s => panic!("{s:?}"),
        }
        let mut p = base(
            "Failed",
            json!({"terminated": {"exitCode": 1, "reason": "Error"}}),
        );
        p["metadata"]["annotations"] =
            json!({EXIT_EXCEPTION: "java.lang.OutOfMemoryError: Java heap space"});
        assert!(matches!(
            status_of(&pod(p), "t-g1"),
            JobStatus::Failed {
                class: FailureClass::Oom,
                ..
            }
        ));
    }
}
