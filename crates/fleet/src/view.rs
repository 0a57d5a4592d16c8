//! The views of runs that front ends show to scripts: `tether … --json` prints them, the coming
//! HTTP server serves them.
//!
//! ## Guarantees
//! - Field names are stable: a field is added, never renamed or removed, without a new major
//!   version. Every field is always present (`null` when there is no value), except
//!   [`RunView::replayed`], present only where a run was asked to run (`tether run`/`rerun`).
//! - A view holds no secret: the spec text (which may name token variables) is not in it, only
//!   its file name; owner ids and external ids are shown as stored.
use serde::Serialize;
use tether_core::{
    ids::{ExternalId, OwnerId, RunKey},
    journal::Phase,
    placement::Placement,
    store::{QuarantinedRun, RunRecord, SubmissionRecord},
};

/// One run: its record and (in `status`, `run`, `rerun`) its submissions.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// The run key.
    pub key: RunKey,
    /// The backend kind (`local`, `spark`, …).
    pub kind: String,
    /// The spec's file name as given at submission.
    pub spec_name: String,
    /// One word: `queued`, `running`, `succeeded`, `failed: <class>`, `cancelled` (see [`state`]).
    pub state: String,
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
    /// Last change, ms since the Unix epoch (store clock).
    pub updated_at_ms: i64,
    /// Every submission (generation, tag, shape, external id, outcome); empty in listings.
    pub submissions: Vec<SubmissionRecord>,
    /// Only from `run`/`rerun`: true when the key had already finished and nothing was run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<bool>,
}

impl RunView {
    /// The view of `run` with its `submissions` (give none for listings).
    pub fn new(run: &RunRecord, submissions: &[SubmissionRecord]) -> RunView {
        let (generation, external_id) = run.current();
        RunView {
            key: run.key.clone(),
            kind: run.kind.clone(),
            spec_name: run.spec_name.clone(),
            state: state(run),
            phase: run.journal.phase.clone(),
            cancel_requested: run.journal.cancel_requested,
            generation: generation.or(run.last_generation).map(|g| g.0),
            external_id: external_id.or(run.last_external_id.as_ref()).cloned(),
            epoch: run.epoch.0,
            owner: run.owner.clone(),
            lease_alive: run.lease_alive,
            queued: run.queued,
            placement: run.placement.clone(),
            created_at_ms: run.created_at_ms,
            updated_at_ms: run.updated_at_ms,
            submissions: submissions.to_vec(),
            replayed: None,
        }
    }

    /// The same view, saying whether the run was replayed rather than run.
    pub fn replayed(mut self, replayed: bool) -> RunView {
        self.replayed = Some(replayed);
        self
    }
}

/// A run this tether cannot read (a row written by a newer version), in listings.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantinedView {
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
    /// A readable run (without its submissions).
    Run(Box<RunView>),
    /// A row this tether cannot read.
    Quarantined(QuarantinedView),
}

/// One word for the run's state: queued, running, succeeded, failed: <class>, cancelled.
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
