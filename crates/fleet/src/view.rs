//! The views of runs that front ends show to scripts: `tether … --json` prints them, the coming
//! HTTP server serves them. The schema is documented in `docs/json.md` and, machine-readably,
//! in `docs/json-schema/*.json` (a test validates real command output against those files).
//!
//! ## Guarantees
//! - Every object carries `schema_version` ([`SCHEMA_VERSION`]). Within a schema version, field
//!   names and meanings are stable: a field may be added, never renamed, removed or given
//!   another meaning without a new `schema_version`. Every field is always present (`null`
//!   when there is no value), except [`RunView::replayed`], present only where a run was asked
//!   to run (`tether run`/`rerun`).
//! - Times are given twice: `*_ms` (ms since the Unix epoch, store clock) and the same instant
//!   as ISO 8601 UTC (`*_at`, e.g. `2026-12-01T14:44:53.123Z`).
//!
//! ## Caveats
//! - `ended_at` is the run record's last change once it finished (the store keeps no separate
//!   end time); it does not move afterwards except by `rerun`, which starts a new instance.
//! - A view holds no secret: the spec text (which may name token variables) is not in it, only
//!   its file name; owner ids and external ids are shown as stored.
mod error;
mod fleet;
mod history;
mod list;

pub use error::{ErrorBody, ErrorKind, ErrorView};
pub use fleet::{fleet, HeldRunView, WorkerView, GONE_AFTER_TTLS};
pub use history::{history_views, HistoryEntryView};
pub use list::{list, list_with_submissions, RunListView, RunSummaryView};

use serde::Serialize;
use tether_core::{
    ids::{ExternalId, OwnerId, RunKey},
    journal::{Outcome, Phase},
    placement::Placement,
    store::{QuarantinedRun, RunRecord, RunState, RunSummary, SubmissionRecord},
};

/// The version of the JSON views' schema (`docs/json.md`). Version 1 is the first documented
/// one: it split `state` (`failed: oom` before) into `state` and `failure_class`.
pub const SCHEMA_VERSION: u32 = 1;

/// One run: its record and its submissions.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The run key.
    pub key: RunKey,
    /// The backend kind (`local`, `spark`, …).
    pub kind: String,
    /// The spec's file name as given at submission.
    pub spec_name: String,
    /// One word: `queued`, `running`, `succeeded`, `failed`, `cancelled` (see [`state_word`]).
    pub state: &'static str,
    /// When `state` is `failed`: why (`oom`, `killed`, `lost`, `rejected`, `other`, …).
    pub failure_class: Option<&'static str>,
    /// The outcome's explanation once finished (failed or cancelled), else `null`.
    pub message: Option<String>,
    /// The journal's phase, in full (intent, submitted with its job, finished with its outcome).
    pub phase: Phase,
    /// Whether a cancel was requested.
    pub cancel_requested: bool,
    /// The current (or else the last) generation number, if any job was ever submitted.
    pub generation: Option<u32>,
    /// The current (or else the last) job's external id.
    pub external_id: Option<ExternalId>,
    /// The fencing epoch: bumped by every take-over.
    pub epoch: i64,
    /// Who holds (or last held) the lease.
    pub owner: Option<OwnerId>,
    /// Whether that lease is still alive.
    pub lease_alive: bool,
    /// Whether the run was enqueued for workers (`tether submit`) rather than run directly.
    pub queued: bool,
    /// The host a host-bound job (local) lives on.
    pub placement: Option<Placement>,
    /// Creation time, ms since the Unix epoch (store clock).
    pub created_at_ms: i64,
    /// Creation time, ISO 8601 UTC.
    pub created_at: String,
    /// Last change, ms since the Unix epoch (store clock).
    pub updated_at_ms: i64,
    /// Last change, ISO 8601 UTC.
    pub updated_at: String,
    /// When the first job was submitted (its intent recorded), ISO 8601 UTC; `null` before.
    pub started_at: Option<String>,
    /// When the run finished, ISO 8601 UTC; `null` while it is not finished.
    pub ended_at: Option<String>,
    /// `ended_at - started_at` in ms once finished, else `null`.
    pub duration_ms: Option<i64>,
    /// Every submission (generation, tag, shape, external id, outcome, times).
    pub submissions: Vec<SubmissionView>,
    /// Only from `run`/`rerun`: true when the key had already finished and nothing was run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<bool>,
}

impl RunView {
    /// The view of `run` with its `submissions`.
    pub fn new(run: &RunRecord, submissions: &[SubmissionRecord]) -> RunView {
        RunView::from_summary(&RunSummary::from(run), submissions)
    }

    /// The view of a listed run with its `submissions`.
    pub fn from_summary(run: &RunSummary, submissions: &[SubmissionRecord]) -> RunView {
        let (failure_class, message) = failure(run.outcome());
        let started_ms = submissions.iter().map(|s| s.intent_at_ms).min();
        let ended_ms = run.state.is_finished().then_some(run.updated_at_ms);
        RunView {
            schema_version: SCHEMA_VERSION,
            key: run.key.clone(),
            kind: run.kind.clone(),
            spec_name: run.spec_name.clone(),
            state: run.state.as_str(),
            failure_class,
            message,
            phase: run.phase.clone(),
            cancel_requested: run.cancel_requested,
            generation: run.generation.map(|g| g.0),
            external_id: run.external_id.clone(),
            epoch: run.epoch.0,
            owner: run.owner.clone(),
            lease_alive: run.lease_alive,
            queued: run.queued,
            placement: run.placement.clone(),
            created_at_ms: run.created_at_ms,
            created_at: iso_time(run.created_at_ms),
            updated_at_ms: run.updated_at_ms,
            updated_at: iso_time(run.updated_at_ms),
            started_at: started_ms.map(iso_time),
            ended_at: ended_ms.map(iso_time),
            duration_ms: started_ms.zip(ended_ms).map(|(s, e)| (e - s).max(0)),
            submissions: submissions.iter().map(SubmissionView::new).collect(),
            replayed: None,
        }
    }

    /// The same view, saying whether the run was replayed rather than run.
    pub fn replayed(mut self, replayed: bool) -> RunView {
        self.replayed = Some(replayed);
        self
    }
}

/// One submission: the stored record (`submission` {generation, tag, shape}, `external_id`,
/// `outcome`, `intent_at_ms`) and the intent time as ISO 8601.
#[derive(Debug, Clone, Serialize)]
pub struct SubmissionView {
    /// The stored record, its fields inline.
    #[serde(flatten)]
    pub record: SubmissionRecord,
    /// Its generation (also in `submission.generation`), for scripts that want it at the top.
    pub generation: u32,
    /// When its intent was recorded, ISO 8601 UTC.
    pub intent_at: String,
}

impl SubmissionView {
    /// The view of one stored submission.
    pub fn new(record: &SubmissionRecord) -> SubmissionView {
        SubmissionView {
            generation: record.submission.generation.0,
            intent_at: iso_time(record.intent_at_ms),
            record: record.clone(),
        }
    }
}

/// A run this tether cannot read (a row written by a newer version), in listings.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantinedView {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The key as stored.
    pub key: String,
    /// Always `quarantined`.
    pub state: &'static str,
    /// Why it cannot be read.
    pub quarantined: String,
}

impl QuarantinedView {
    /// The view of a quarantined row.
    pub fn new(q: &QuarantinedRun) -> QuarantinedView {
        QuarantinedView {
            schema_version: SCHEMA_VERSION,
            key: q.key.clone(),
            state: "quarantined",
            quarantined: q.reason.clone(),
        }
    }
}

/// One entry of a listing: a run, or a row this tether cannot read.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum ListEntry {
    /// A readable run, with its submissions.
    Run(Box<RunView>),
    /// A row this tether cannot read.
    Quarantined(QuarantinedView),
}

/// The failure class and the message of an outcome (`None`s while unfinished; a success has
/// neither, a cancel only a message).
fn failure(outcome: Option<&Outcome>) -> (Option<&'static str>, Option<String>) {
    match outcome {
        Some(Outcome::Failed { class, message }) => (Some(class.as_str()), Some(message.clone())),
        Some(Outcome::Cancelled { message }) => (None, Some(message.clone())),
        _ => (None, None),
    }
}

/// One word for the run's state, as the JSON views give it: `queued`, `running`, `succeeded`,
/// `failed`, `cancelled` (the failure class is a field of its own).
pub fn state_word(run: &RunRecord) -> &'static str {
    RunState::of(&run.journal.phase).as_str()
}

/// The run's state for people: queued, running, succeeded, failed: <class>, cancelled.
pub fn state(run: &RunRecord) -> String {
    match &run.journal.phase {
        Phase::Empty => "queued".into(),
        Phase::Intent { .. } | Phase::Submitted { .. } => "running".into(),
        Phase::Finished { outcome } => outcome.label(),
    }
}

/// A store time (ms since the Unix epoch) as ISO 8601 UTC, e.g. `2026-12-01T14:44:53.123Z`.
pub fn iso_time(ms: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}
