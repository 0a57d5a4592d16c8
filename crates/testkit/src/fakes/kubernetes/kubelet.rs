//! The fake's "auto-kubelet": a [`Fate`] per pod, chosen by the test from the pod as created
//! (its args, labels, env), moves the pod by itself, one step per `GET` of the pod, so runs
//! progress without a test driving each step (the conformance suite, the CLI's end-to-end
//! tests). Pods without a fate ([`Fate::Driven`]) stay as the test moves them.
//!
//! ## Caveats
//! - A step is taken per read of the pod, not per unit of time: a pod nobody reads stays put.
//! - A fated pod deleted gracefully ends at once `Failed` (its container terminated, exit 143,
//!   `Error`), as a kubelet since Kubernetes 1.27 moves a deleted pod to a terminal phase
//!   before it goes; it stays until its grace period ends.
use std::time::SystemTime;

use serde_json::{json, Value};

use super::store::rfc3339;

/// How a pod lives by itself ([`super::FakeKubernetes::fate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fate {
    /// Stays as the test drives it (the default).
    Driven,
    /// `Pending`, `Running` (writing this log), then `Succeeded`, one step per read.
    Succeed(String),
    /// The same, ending `Failed` with the container's `reason` and `exit_code`.
    Fail {
        /// The container's terminated reason (`Error`, `OOMKilled`).
        reason: String,
        /// Its exit code.
        exit_code: i32,
        /// What the driver logged before it failed.
        log: String,
    },
    /// `Running` until deleted.
    RunForever,
}

/// A pod's status after `phase`, its containers in `container_state` (shared with the
/// test-driven moves).
pub(crate) fn set_status(
    o: &mut Value,
    phase: &str,
    container_state: &Value,
    pod_reason: Option<(&str, &str)>,
) {
    let statuses: Vec<Value> = o
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            json!({"name": c["name"], "image": c["image"], "imageID": "",
                   "ready": phase == "Running", "restartCount": 0,
                   "started": phase == "Running", "state": container_state})
        })
        .collect();
    o["status"]["phase"] = phase.into();
    o["status"]["containerStatuses"] = Value::Array(statuses);
    if let Some((reason, message)) = pod_reason {
        o["status"]["reason"] = reason.into();
        o["status"]["message"] = message.into();
    }
}

/// A container state `terminated` with `reason` and `exit_code`, now.
pub(crate) fn terminated(name: &str, reason: &str, exit_code: i32) -> Value {
    let now = rfc3339(SystemTime::now());
    json!({"terminated": {"exitCode": exit_code, "reason": reason,
        "startedAt": now, "finishedAt": now, "containerID": format!("containerd://{name}")}})
}

/// A container state `running`, started now.
pub(crate) fn running() -> Value {
    json!({"running": {"startedAt": rfc3339(SystemTime::now())}})
}

/// One step of pod `o` under `fate`; returns log text to append when it starts running.
pub(crate) fn step(o: &mut Value, fate: &Fate) -> Option<String> {
    let name = o["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let phase = o["status"]["phase"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (log, end) = match fate {
        Fate::Driven => return None,
        Fate::RunForever => (String::new(), None),
        Fate::Succeed(log) => (log.clone(), Some(("Succeeded", "Completed", 0))),
        Fate::Fail {
            reason,
            exit_code,
            log,
        } => (log.clone(), Some(("Failed", reason.as_str(), *exit_code))),
    };
    match (phase.as_str(), end) {
        ("Pending", _) => {
            set_status(o, "Running", &running(), None);
            Some(log)
        }
        ("Running", Some((phase, reason, code))) => {
            set_status(o, phase, &terminated(&name, reason, code), None);
            None
        }
        _ => None,
    }
}

/// A fated pod being deleted: its containers were stopped (SIGTERM, exit 143), it is `Failed`.
pub(crate) fn deleted(o: &mut Value) {
    let phase = o["status"]["phase"].as_str().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return;
    }
    let name = o["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    set_status(o, "Failed", &terminated(&name, "Error", 143), None);
}
