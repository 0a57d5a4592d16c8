//! The durable journal of a run, as the decision sees it.
use serde::{Deserialize, Serialize};

use crate::{
    ids::{ExternalId, Generation, RunKey, StoreId, Tag},
    observe::FailureClass,
};

/// How a submission is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// As the spec says.
    Normal,
    /// With the recovery overrides applied (after an OOM): one task per executor, same memory;
    /// for local jobs, alone on the machine's state store.
    Recovery,
}

impl Shape {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Normal => "normal",
            Shape::Recovery => "recovery",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The job succeeded; `result` comes from the backend.
    Succeeded {
        /// Backend-specific result.
        result: serde_json::Value,
    },
    /// The run failed for good.
    Failed {
        /// Class of the last failure.
        class: FailureClass,
        /// Human explanation.
        message: String,
    },
    /// The run was cancelled by `tether cancel`.
    Cancelled {
        /// Human explanation.
        message: String,
    },
}

impl Outcome {
    /// Short label: `succeeded`, `failed: oom`, `cancelled`.
    pub fn label(&self) -> String {
        match self {
            Outcome::Succeeded { .. } => "succeeded".into(),
            Outcome::Failed { class, .. } => format!("failed: {}", class.as_str()),
            Outcome::Cancelled { .. } => "cancelled".into(),
        }
    }
}

/// One submission: a generation with its tag and shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// Its generation.
    pub generation: Generation,
    /// The tag it carries in the backend.
    pub tag: Tag,
    /// Its shape.
    pub shape: Shape,
}

/// Where the run stands, from the durable records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Nothing recorded yet (queued).
    Empty,
    /// An intent was committed; no external id yet.
    Intent {
        /// The intended submission.
        submission: Submission,
    },
    /// The backend accepted the submission and its id is committed.
    Submitted {
        /// The submission.
        submission: Submission,
        /// Its backend id.
        external_id: ExternalId,
    },
    /// The run ended.
    Finished {
        /// How.
        outcome: Outcome,
    },
}

impl Phase {
    /// Short label for listings.
    pub fn label(&self) -> &'static str {
        match self {
            Phase::Empty => "queued",
            Phase::Intent { .. } => "submitting",
            Phase::Submitted { .. } => "submitted",
            Phase::Finished { .. } => "finished",
        }
    }
}

/// The journal: the phase plus the flags that steer the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// The state store the run belongs to (tags derive from it).
    pub store: StoreId,
    /// The run this journal belongs to (tags derive from it).
    pub key: RunKey,
    /// Where the run stands.
    pub phase: Phase,
    /// `tether cancel` asked for the job to be killed.
    pub cancel_requested: bool,
    /// Last generation of earlier instances of this key (`tether rerun`): an empty journal
    /// submits the generation after it, so the new instance's tags differ from the old ones
    /// and a lookup by tag can never adopt the old instance's job; `max_submissions` counts the
    /// new instance's generations from it. `None` for a first instance.
    #[serde(default)]
    pub after_generation: Option<Generation>,
}

impl Journal {
    /// A journal with nothing in it.
    pub fn empty(store: StoreId, key: RunKey) -> Self {
        Journal {
            store,
            key,
            phase: Phase::Empty,
            cancel_requested: false,
            after_generation: None,
        }
    }
}
