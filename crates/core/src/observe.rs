//! What a backend says about a job, as the decision sees it.
use std::time::Duration;

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
        /// Backend's own words.
        message: String,
    },
    /// The backend has no job under this id.
    NotFound {
        /// Backend's own words.
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

impl JobStatus {
    /// True for a status that ends the submission (succeeded or failed).
    pub fn is_terminal(&self) -> bool {
        matches!(self, JobStatus::Succeeded { .. } | JobStatus::Failed { .. })
    }
    /// Short label for status lines.
    pub fn label(&self) -> String {
        match self {
            JobStatus::Active { detail } => format!("active ({detail})"),
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
        /// Why.
        reason: String,
    },
    /// The connector cannot search by tag at all.
    Unsupported,
    /// The connector cannot search, but its backend submits idempotently: a repeated submit
    /// with the same tag returns the existing job (a Databricks `idempotency_token`, a K8s
    /// driver pod name) or is refused, never starts a second one. Submitting again is safe.
    Idempotent,
}

/// The input of [`crate::decide`] besides the journal and the policy.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// Nothing asked yet.
    Nothing,
    /// The answer of a search by tag.
    Lookup(Lookup),
    /// The answer of a status call.
    Status(JobStatus),
    /// The backend could not be asked, for `unknown_for` in a row.
    Unknown {
        /// Latest reason.
        reason: String,
        /// How long answers have been unknown without interruption.
        unknown_for: Duration,
    },
}
