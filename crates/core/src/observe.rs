//! What a backend says about a job, as the decision sees it.
use serde::{Deserialize, Serialize};

use crate::ids::ExternalId;

/// Why a job failed. The class drives the next decision (OOM leads to the recovery shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The job (or its executors) ran out of memory.
    Oom,
    /// The job was killed or cancelled in the backend (by someone, or by our cancel).
    Killed,
    /// The job vanished from the backend, or the id now names somebody else's job.
    Lost,
    /// The backend refused the submission outright (bad spec, bad jar): retrying cannot help.
    Rejected,
    /// The run was never started because the spec or environment is unusable.
    Unverifiable,
    /// Any other failure (non-zero exit, exception, timeout).
    Other,
}

impl FailureClass {
    /// Short lower-case name, as shown by the CLI (`failed: oom`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Oom => "oom",
            FailureClass::Killed => "killed",
            FailureClass::Lost => "lost",
            FailureClass::Rejected => "rejected",
            FailureClass::Unverifiable => "unverifiable",
            FailureClass::Other => "other",
        }
    }
}

/// A connector's answer to "what is the state of this submission?".
///
/// Connectors never raise errors from a status call: anything that prevents a definite answer
/// (unreachable, timeout, HTTP 5xx, unparsable body) is [`JobStatus::Unknown`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobStatus {
    /// Queued or running.
    Active {
        /// Waiting for resources, or running. Rows stored before this field existed (and
        /// connectors that cannot tell) read as [`ActiveState::Running`].
        /// (`active_state` in JSON: `state` is the variant's tag.)
        #[serde(default, rename = "active_state")]
        state: ActiveState,
        /// Backend's own words (e.g. `RUNNING`, `pid 1234`).
        detail: String,
    },
    /// Finished successfully; `result` is what the job returns to the caller.
    Succeeded {
        /// Backend-specific result (exit code, app id, ...).
        result: serde_json::Value,
    },
    /// Finished unsuccessfully.
    Failed {
        /// Why, as far as the connector can tell.
        class: FailureClass,
        /// The backend's own words: exit code, exception, diagnostics.
        message: String,
    },
    /// The backend has no job under this id.
    NotFound {
        /// The backend's own words: what it answered for this id.
        detail: String,
    },
    /// A job exists under this id but it is not ours (its tag differs): ids were reused.
    Mismatch {
        /// What we found instead.
        found: String,
    },
    /// No definite answer.
    Unknown {
        /// Why (unreachable, timeout, 5xx, unparsable).
        reason: String,
    },
}

/// Whether an active job waits for resources or runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActiveState {
    /// Accepted, waiting for resources (Spark `SUBMITTED`, a Livy `starting` session, a
    /// pending K8s pod, a local job waiting for its slot).
    Queued,
    /// Running (the default: what a connector that cannot tell says).
    #[default]
    Running,
}

impl ActiveState {
    /// `queued` or `running`, as shown on status lines and in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            ActiveState::Queued => "queued",
            ActiveState::Running => "running",
        }
    }
}

impl JobStatus {
    /// An active job waiting for resources.
    pub fn queued(detail: impl Into<String>) -> Self {
        JobStatus::Active {
            state: ActiveState::Queued,
            detail: detail.into(),
        }
    }
    /// An active, running job.
    pub fn running(detail: impl Into<String>) -> Self {
        JobStatus::Active {
            state: ActiveState::Running,
            detail: detail.into(),
        }
    }
    /// True for a status that ends the submission (succeeded or failed).
    pub fn is_terminal(&self) -> bool {
        matches!(self, JobStatus::Succeeded { .. } | JobStatus::Failed { .. })
    }
    /// Short label for status lines.
    pub fn label(&self) -> String {
        match self {
            JobStatus::Active { state, detail } => format!("{} ({detail})", state.as_str()),
            JobStatus::Succeeded { .. } => "succeeded".into(),
            JobStatus::Failed { class, .. } => format!("failed: {}", class.as_str()),
            JobStatus::NotFound { .. } => "not found".into(),
            JobStatus::Mismatch { .. } => "identity mismatch".into(),
            JobStatus::Unknown { reason } => format!("unknown ({reason})"),
        }
    }
}

/// A connector's answer to "is there a job carrying this tag?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "lookup", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Lookup {
    /// Yes, under this id.
    Found {
        /// The job's backend id.
        external_id: ExternalId,
    },
    /// Definitely not.
    Absent,
    /// Cannot tell right now.
    Unknown {
        /// What made the answer indefinite: unreachable, timeout, HTTP 5xx, unparsable.
        reason: String,
    },
    /// The connector cannot search by tag at all.
    Unsupported,
    /// The connector cannot search, but its backend submits idempotently: a repeated submit
    /// with the same tag returns the existing job (a Databricks `idempotency_token`, a K8s
    /// driver pod name) or is refused, never starts a second one. Submitting again is safe.
    Idempotent,
}

/// What the engine was asking when no definite answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Asked {
    /// The status of the recorded job.
    Status,
    /// A search by tag for the intent's job.
    LookUp,
    /// A submission (it may or may not have reached the backend).
    Submit,
    /// A cancel of the recorded job.
    Cancel,
}

impl Asked {
    /// What was asked, in words for the history (`status`, `tag look-up`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Asked::Status => "status",
            Asked::LookUp => "tag look-up",
            Asked::Submit => "submission",
            Asked::Cancel => "cancel",
        }
    }
}

/// The input of [`crate::decide()`] besides the journal, the policy and the clocks.
///
/// There is one way to say "unknown": [`Observed::Unknown`]. The driver builds observations
/// with [`Observed::status`] and [`Observed::lookup`], which turn a connector's
/// [`JobStatus::Unknown`] / [`Lookup::Unknown`] into it; `decide` reads those two forms the
/// same way (see [`Observed::unknown`]) should a caller build them by hand.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// Nothing asked yet.
    Nothing,
    /// The definite answer of a search by tag.
    Lookup(Lookup),
    /// The definite answer of a status call.
    Status(JobStatus),
    /// The backend gave no definite answer. How long this has lasted is kept in
    /// [`crate::decide::Clocks`], not here.
    Unknown {
        /// What was asked.
        asked: Asked,
        /// Why no answer came (unreachable, timeout, 5xx, unparsable).
        reason: String,
    },
}

impl Observed {
    /// A connector's status answer; [`JobStatus::Unknown`] becomes [`Observed::Unknown`].
    pub fn status(status: JobStatus) -> Self {
        match status {
            JobStatus::Unknown { reason } => Observed::Unknown {
                asked: Asked::Status,
                reason,
            },
            status => Observed::Status(status),
        }
    }
    /// A connector's look-up answer; [`Lookup::Unknown`] becomes [`Observed::Unknown`].
    pub fn lookup(lookup: Lookup) -> Self {
        match lookup {
            Lookup::Unknown { reason } => Observed::Unknown {
                asked: Asked::LookUp,
                reason,
            },
            lookup => Observed::Lookup(lookup),
        }
    }
    /// What was asked and why no definite answer came, if this is an unknown answer (in any of
    /// its forms); `None` for a definite answer or nothing.
    pub fn unknown(&self) -> Option<(Asked, &str)> {
        match self {
            Observed::Unknown { asked, reason } => Some((*asked, reason)),
            Observed::Status(JobStatus::Unknown { reason }) => Some((Asked::Status, reason)),
            Observed::Lookup(Lookup::Unknown { reason }) => Some((Asked::LookUp, reason)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_active_status_stored_without_state_reads_as_running() {
        let old = serde_json::json!({"state": "active", "detail": "RUNNING"});
        let status: JobStatus = serde_json::from_value(old).unwrap();
        assert_eq!(status, JobStatus::running("RUNNING"));
        assert_eq!(status.label(), "running (RUNNING)");
    }

    #[test]
    fn an_active_state_round_trips_as_snake_case() {
        let queued = JobStatus::queued("SUBMITTED");
        let json = serde_json::to_value(&queued).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"state": "active", "detail": "SUBMITTED", "active_state": "queued"})
        );
        assert_eq!(serde_json::from_value::<JobStatus>(json).unwrap(), queued);
        assert_eq!(queued.label(), "queued (SUBMITTED)");
    }

    #[test]
    fn connector_unknowns_become_the_one_unknown_observation() {
        let reason = "timeout".to_string();
        let from_status = Observed::status(JobStatus::Unknown {
            reason: reason.clone(),
        });
        let from_lookup = Observed::lookup(Lookup::Unknown {
            reason: reason.clone(),
        });
        assert_eq!(
            from_status,
            Observed::Unknown {
                asked: Asked::Status,
                reason: reason.clone()
            }
        );
        assert_eq!(
            from_lookup,
            Observed::Unknown {
                asked: Asked::LookUp,
                reason: reason.clone()
            }
        );
        // The raw forms read the same way, definite answers not at all.
        let raw = Observed::Lookup(Lookup::Unknown { reason });
        assert_eq!(raw.unknown(), Some((Asked::LookUp, "timeout")));
        assert_eq!(Observed::lookup(Lookup::Absent).unknown(), None);
        assert_eq!(Observed::status(JobStatus::running("x")).unknown(), None);
    }
}
