//! The durable journal of runs, with leases and fencing epochs.
//!
//! ## Guarantees an implementation must give (checked by the store conformance suite in
//! `tether-store`, run against SQLite and PostgreSQL)
//! - [`Store::acquire`] and [`Store::claim`] give a lease only when the run is unowned or its
//!   lease has expired, and each grant increments the run's epoch.
//! - Every write that belongs to an owner ([`Lease`]) matches on the epoch; when zero rows match
//!   it changes nothing and returns [`StoreError::LeaseLost`].
//! - `record_*` writes and their history entry commit together or not at all.
//! - Lease expiry is judged by the store's clock, never by the caller's.
//! - Liveness ([`Store::hold_liveness`]): a run whose owner holds a [`Liveness`] is taken by
//!   [`Store::acquire`]/[`Store::claim`] only at lease expiry while that owner lives; once the
//!   signal is gone (the guard dropped, the process killed) its runs are free at once, each
//!   grant still bumping the epoch (fencing unchanged). An owner that never held the signal is
//!   judged by its lease alone. A frozen owner (SIGSTOP) still holds it: lease expiry as before.
pub use crate::history::HistoryKind;
mod listing;
mod remove;
mod workers;
pub use listing::{BadCursor, RunCursor, RunPage, RunQuery, RunState, RunSummary, UnknownState};
pub use remove::{Remove, RemovedRun};
use std::time::Duration;
pub use workers::{WorkerBeat, WorkerRecord};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{
    ids::{Epoch, ExternalId, Generation, OwnerId, RunKey, StoreId},
    journal::{Journal, Outcome, Submission},
    placement::Placement,
};

/// A new run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Its key.
    pub key: RunKey,
    /// Backend kind (`[job] kind`).
    pub kind: String,
    /// The spec file's text (secrets are referenced by env var name, never inlined).
    pub spec: String,
    /// Name of the spec file, for messages.
    pub spec_name: String,
    /// Hash of the spec text: the same key with another spec is refused.
    pub spec_hash: String,
    /// Wait for a worker (`tether submit`) rather than being driven by the creating process.
    pub queued: bool,
    /// The submitter's working directory: relative paths in the spec are taken from it, by
    /// whichever process drives the run.
    pub base_dir: Option<String>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Its key.
    pub key: RunKey,
    /// Backend kind.
    pub kind: String,
    /// The spec text.
    pub spec: String,
    /// Name of the spec file.
    pub spec_name: String,
    /// Hash of the spec text.
    pub spec_hash: String,
    /// Where it stands.
    pub journal: Journal,
    /// Current epoch (0 = never leased).
    pub epoch: Epoch,
    /// Current lease holder, if any.
    pub owner: Option<OwnerId>,
    /// When the lease expires (ms since the Unix epoch, store clock).
    pub lease_expires_at_ms: Option<i64>,
    /// Whether the lease is alive now (store clock).
    pub lease_alive: bool,
    /// Latest generation, whatever the phase (kept after the run finished, for listings).
    pub last_generation: Option<Generation>,
    /// Latest generation's backend id, whatever the phase.
    pub last_external_id: Option<ExternalId>,
    /// Where a host-bound run's jobs live (recorded with its first intent).
    pub placement: Option<Placement>,
    /// Created by `tether submit` for a worker.
    pub queued: bool,
    /// The submitter's working directory (relative paths of the spec are taken from it).
    pub base_dir: Option<String>,
    /// Creation time (ms since the Unix epoch).
    pub created_at_ms: i64,
    /// Last change (ms since the Unix epoch).
    pub updated_at_ms: i64,
}

impl RunRecord {
    /// Current generation and external id, if any.
    pub fn current(&self) -> (Option<Generation>, Option<&ExternalId>) {
        match &self.journal.phase {
            crate::journal::Phase::Intent { submission } => (Some(submission.generation), None),
            crate::journal::Phase::Submitted {
                submission,
                external_id,
            } => (Some(submission.generation), Some(external_id)),
            _ => (None, None),
        }
    }
}

/// One submission as stored (for `tether history` and the result of a run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmissionRecord {
    /// Generation, tag and shape.
    pub submission: Submission,
    /// Backend id once known.
    pub external_id: Option<ExternalId>,
    /// Outcome of this submission once known.
    pub outcome: Option<Outcome>,
    /// When the intent was recorded.
    pub intent_at_ms: i64,
}

/// One line of a run's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When (ms since the Unix epoch; filled by the store if 0).
    pub at_ms: i64,
    /// Epoch of the writer.
    pub epoch: Epoch,
    /// Generation concerned, if any.
    pub generation: Option<Generation>,
    /// Decision kind (see [`crate::Decision::kind`]) or store event (`lease-acquired`, ...),
    /// stored as its text.
    pub decision: HistoryKind,
    /// Human explanation.
    pub reason: String,
}

/// Which runs a worker may claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimFilter {
    /// The worker's host: runs placed on another host are never claimed (unplaced runs are).
    /// `None`: only unplaced runs.
    pub host: Option<String>,
    /// Only runs of these kinds (`tether worker --kinds`); `None`: every kind.
    pub kinds: Option<Vec<String>>,
}

impl ClaimFilter {
    /// Whether a run of `kind`, placed at `placement`, may be claimed under this filter. The
    /// stores say the same in their claim SQL; the worker and the in-memory store use this.
    pub fn admits(&self, kind: &str, placement: Option<&Placement>) -> bool {
        let host_ok = placement.is_none_or(|p| self.host.as_deref() == Some(p.host.as_str()));
        let kind_ok = self
            .kinds
            .as_ref()
            .is_none_or(|ks| ks.iter().any(|k| k == kind));
        host_ok && kind_ok
    }
}

/// The right to act on a run, valid while its epoch is the run's current epoch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lease {
    /// The run.
    pub key: RunKey,
    /// The holder.
    pub owner: OwnerId,
    /// The fencing token.
    pub epoch: Epoch,
}

/// One lease still held after [`Store::renew_all`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Renewed {
    /// The run.
    pub key: RunKey,
    /// Its current epoch (ours).
    pub epoch: Epoch,
    /// `tether cancel` asked for the job to be killed.
    pub cancel_requested: bool,
}

/// Result of [`Store::create_run`].
#[derive(Debug, Clone)]
pub enum Created {
    /// A new run was created.
    New(RunRecord),
    /// A run with this key already existed (idempotent create).
    Existing(RunRecord),
}

/// The spec a rerun runs instead of the stored one (`tether rerun KEY SPEC`).
#[derive(Debug, Clone)]
pub struct RerunSpec {
    /// Backend kind (`[job] kind`).
    pub kind: String,
    /// The spec file's text.
    pub spec: String,
    /// Name of the spec file, for messages.
    pub spec_name: String,
    /// Hash of the spec text.
    pub spec_hash: String,
}

/// Result of [`Store::rerun`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Rerun {
    /// The run is a fresh instance now: phase empty, outcome and cancel flag cleared, the
    /// generation column kept so the next submission continues the numbering.
    Fresh(RunRecord),
    /// The run has not finished (or its lease is still alive): nothing was changed.
    NotFinished(RunRecord),
}

/// Result of [`Store::acquire`].
#[derive(Debug, Clone)]
pub enum Acquire {
    /// The lease is ours, with a new epoch.
    Acquired(Lease, RunRecord),
    /// Someone else holds a live lease.
    Held(RunRecord),
}

/// A run row this build cannot read (a phase written by a newer version, a damaged column).
/// It is set aside: claims skip it, listings show it with the reason instead of failing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuarantinedRun {
    /// The row's key, as stored (it may itself be what is wrong).
    pub key: String,
    /// Why it cannot be read.
    pub reason: String,
}

impl QuarantinedRun {
    /// A quarantined row.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        QuarantinedRun {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The liveness signal of one owner, held while this value lives (see
/// [`Store::hold_liveness`]). Dropping it, or the death of the process, releases it: the
/// owner's runs may then be taken over at once, without waiting for lease expiry.
pub struct Liveness {
    _held: Box<dyn std::any::Any + Send + Sync>,
}

impl Liveness {
    /// Wraps whatever keeps the signal held (a locked file, a database session).
    pub fn new(held: impl std::any::Any + Send + Sync) -> Self {
        Liveness {
            _held: Box::new(held),
        }
    }
}

impl std::fmt::Debug for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Liveness")
    }
}

/// Wake-ups for claimers (see [`Store::claim_wakeups`]): `notify` gets a permit whenever a run
/// may have become claimable. Listening lasts while this value lives.
pub struct ClaimWakeups {
    /// Notified (one stored permit, coalescing) when a run was created queued or released.
    pub notify: std::sync::Arc<tokio::sync::Notify>,
    _held: Box<dyn std::any::Any + Send + Sync>,
}

impl ClaimWakeups {
    /// Wake-ups on `notify`, for as long as `held` (the listening session or task) lives.
    pub fn new(
        notify: std::sync::Arc<tokio::sync::Notify>,
        held: impl std::any::Any + Send + Sync,
    ) -> Self {
        ClaimWakeups {
            notify,
            _held: Box::new(held),
        }
    }
}

impl std::fmt::Debug for ClaimWakeups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClaimWakeups")
    }
}

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A fenced write matched no row: another owner took the run over. Stand down.
    #[error("lease lost on run {key}: epoch {epoch} is no longer current; another owner took over, standing down")]
    LeaseLost {
        /// The run.
        key: RunKey,
        /// The stale epoch.
        epoch: Epoch,
    },
    /// No run with this key.
    #[error("no run with key {key}: see `tether ls` for the keys in this state store")]
    NotFound {
        /// The key.
        key: RunKey,
    },
    /// The store could not be opened or created.
    #[error("cannot open the state store at {location}: {message}")]
    Open {
        /// Path or URL (without password).
        location: String,
        /// What went wrong and what to do.
        message: String,
        /// The cause.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The store is not a tether state store, or is damaged.
    #[error("the state store at {location} is corrupt or not a tether database: {message}")]
    Corrupt {
        /// Path or URL.
        location: String,
        /// What is wrong, e.g. a run row whose phase this build does not know.
        message: String,
    },
    /// The store is locked by another process for too long.
    #[error("the state store at {location} is locked by another process: {message}")]
    Locked {
        /// Path or URL.
        location: String,
        /// The database's words, for the operator.
        message: String,
    },
    /// The store cannot be reached right now (network, server down). Transient.
    #[error("the state store is unavailable during {op}: {message}")]
    Unavailable {
        /// The operation.
        op: &'static str,
        /// The database's words, for the operator.
        message: String,
    },
    /// Any other failed query.
    #[error("state store operation {op} failed: {source}")]
    Query {
        /// The operation.
        op: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// True for [`StoreError::LeaseLost`].
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, StoreError::LeaseLost { .. })
    }
    /// True for errors worth retrying later (the store is down, or busy).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::Locked { .. }
        )
    }
}

/// The durable journal. See the module docs for the guarantees.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates the run, or returns the existing one with that key (idempotent).
    async fn create_run(&self, new: &NewRun) -> Result<Created, StoreError>;
    /// Reads one run.
    async fn get_run(&self, key: &RunKey) -> Result<Option<RunRecord>, StoreError>;
    /// Lists all readable runs, newest first, without their spec bodies (`spec` is empty: a
    /// listing of ten thousand runs must not load ten thousand specs; use `get_run` for one).
    /// Rows that cannot be read are left out: see [`Store::quarantined`].
    async fn list_runs(&self) -> Result<Vec<RunRecord>, StoreError>;
    /// One page of runs that `query` admits, most recently changed first, without spec
    /// bodies (see [`RunQuery`] for the guarantees). The SQL stores answer in one statement;
    /// this default filters [`Store::list_runs`] in memory, for stores that have no better way.
    async fn list_summaries(&self, query: &RunQuery) -> Result<RunPage, StoreError> {
        let mut runs: Vec<RunSummary> = self
            .list_runs()
            .await?
            .iter()
            .map(RunSummary::from)
            .filter(|s| query.admits(s))
            .collect();
        runs.sort_by(|a, b| {
            (b.updated_at_ms, b.key.as_str()).cmp(&(a.updated_at_ms, a.key.as_str()))
        });
        runs.truncate(query.fetch().unwrap_or(usize::MAX));
        Ok(query.page(runs))
    }
    /// How many readable runs there are per (state, kind), for gauges. The SQL stores answer
    /// with one grouped count (no row is loaded); this default counts [`Store::list_runs`].
    async fn count_runs(&self) -> Result<Vec<(RunState, String, u64)>, StoreError> {
        let mut counts =
            std::collections::BTreeMap::<(&'static str, String), (RunState, u64)>::new();
        for run in self.list_runs().await? {
            let state = RunState::of(&run.journal.phase);
            counts
                .entry((state.as_str(), run.kind))
                .or_insert((state, 0))
                .1 += 1;
        }
        Ok(counts
            .into_iter()
            .map(|((_, kind), (state, n))| (state, kind, n))
            .collect())
    }
    /// Whether an unfinished, readable run is left that `filter` admits (a worker's idle
    /// check). The SQL stores answer with one `EXISTS` (it stops at the first such run); this
    /// default reads [`Store::list_runs`].
    async fn any_unfinished(&self, filter: &ClaimFilter) -> Result<bool, StoreError> {
        Ok(self.list_runs().await?.iter().any(|r| {
            filter.admits(&r.kind, r.placement.as_ref())
                && !RunState::of(&r.journal.phase).is_finished()
        }))
    }
    /// Runs set aside because they cannot be read (see [`QuarantinedRun`]), including rows
    /// that no claim has marked yet.
    async fn quarantined(&self) -> Result<Vec<QuarantinedRun>, StoreError> {
        Ok(Vec::new())
    }
    /// A run's history, oldest first.
    async fn history(&self, key: &RunKey) -> Result<Vec<HistoryEntry>, StoreError>;
    /// A run's submissions, by generation.
    async fn submissions(&self, key: &RunKey) -> Result<Vec<SubmissionRecord>, StoreError>;

    /// Takes the run's lease if it is free or expired (new epoch), else reports the holder.
    /// Takes no lease on a finished run (returns `Held` with the record so the caller sees it).
    async fn acquire(
        &self,
        key: &RunKey,
        owner: &OwnerId,
        ttl: Duration,
    ) -> Result<Acquire, StoreError>;
    /// Extends one lease. `LeaseLost` if the epoch is no longer current.
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<(), StoreError>;
    /// Extends every lease of `owner` on unfinished runs; returns those still held, with their
    /// cancel flag (so a worker learns about cancels without another query). Never extends a
    /// lease the owner no longer holds. PostgreSQL renews in chunks, each atomic on its own,
    /// and answers a row locked by a write in flight as held without renewing it (the next
    /// call does); an error may leave the chunks before it renewed.
    async fn renew_all(&self, owner: &OwnerId, ttl: Duration) -> Result<Vec<Renewed>, StoreError>;
    /// Gives the lease up at once (others may take over without waiting). Fenced.
    async fn release(&self, lease: &Lease) -> Result<(), StoreError>;
    /// Claims up to `limit` unfinished runs whose lease is free or expired (queued ones first),
    /// each with a new epoch. PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one atomic update.
    /// Only runs that `filter` admits are claimed.
    async fn claim(
        &self,
        owner: &OwnerId,
        ttl: Duration,
        limit: usize,
        filter: &ClaimFilter,
    ) -> Result<Vec<(Lease, RunRecord)>, StoreError>;

    /// Records the intent to submit (before submitting). Fenced. `previous` is the outcome of the
    /// generation before this one (why we resubmit); it is stored on that submission in the same
    /// transaction, unless that submission already has one. `placement` binds a host-bound run
    /// to its host in the same statement; a run already placed keeps its placement.
    async fn record_intent(
        &self,
        lease: &Lease,
        submission: &Submission,
        previous: Option<&Outcome>,
        placement: Option<&Placement>,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError>;
    /// Records the backend id of the current intent (before the first poll). Fenced.
    async fn record_submitted(
        &self,
        lease: &Lease,
        generation: Generation,
        external_id: &ExternalId,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError>;
    /// Records the run's outcome (and the current submission's). Fenced.
    async fn record_finished(
        &self,
        lease: &Lease,
        outcome: &Outcome,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError>;
    /// Appends a history entry. Fenced.
    async fn append_history(&self, lease: &Lease, entry: &HistoryEntry) -> Result<(), StoreError>;
    /// Marks the run for cancellation (anyone may ask). Returns false if it already finished.
    async fn request_cancel(&self, key: &RunKey) -> Result<bool, StoreError>;
    /// The operator declares host `host` gone: its unfinished runs lose their placement (so
    /// any host may claim them, and their jobs, not found there, count as lost) and their
    /// leases, with `reason` in their history. Returns the runs concerned.
    async fn forget_host(&self, host: &str, reason: &str) -> Result<Vec<RunKey>, StoreError>;
    /// The store's random id, created with its schema (tags derive from it).
    fn store_id(&self) -> &StoreId;
    /// Makes a finished run (succeeded, failed or cancelled) with no live lease a fresh
    /// instance: phase empty, outcome and cancel flag cleared, generation kept (the next
    /// submission is the one after it, so its tag is new), `spec` replacing the stored spec if
    /// given, and a `rerun` history entry, all in one transaction. Submissions and history of
    /// the earlier instance are kept. An unfinished run is left as it is (`NotFinished`);
    /// an absent key is [`StoreError::NotFound`].
    async fn rerun(&self, key: &RunKey, spec: Option<&RerunSpec>) -> Result<Rerun, StoreError>;

    /// Removes a finished run (succeeded, failed or cancelled, no live lease) with its
    /// submissions and history, in one transaction; returns their tags so that the caller can
    /// remove the jobs' files. An unfinished run is left as it is (`NotFinished`); an absent
    /// key is [`StoreError::NotFound`].
    async fn remove_run(&self, key: &RunKey) -> Result<Remove, StoreError>;

    /// Removes every finished run (no live lease) last changed before `before_ms` (ms since the
    /// Unix epoch, store clock), with its submissions and history, in one transaction; with
    /// `dry_run`, changes nothing and returns what it would remove. Oldest first.
    async fn prune(&self, before_ms: i64, dry_run: bool) -> Result<Vec<RemovedRun>, StoreError>;

    /// Starts holding `owner`'s liveness signal, which the operating system (or the database
    /// server) releases when this process dies: while it is held, others take `owner`'s runs
    /// only at lease expiry; once released, at once. `None`: this store has no such signal (the
    /// lease alone decides). Hold it before taking leases and for as long as they are driven.
    async fn hold_liveness(&self, owner: &OwnerId) -> Result<Option<Liveness>, StoreError> {
        let _ = owner;
        Ok(None)
    }

    /// Registers `beat`'s worker, or refreshes its row (one upsert; see [`WorkerBeat`]).
    /// Default: this store keeps no registry.
    async fn worker_beat(&self, beat: &WorkerBeat) -> Result<(), StoreError> {
        let _ = beat;
        Ok(())
    }

    /// Removes `owner`'s registry row (a clean shutdown). Absent: nothing to do.
    async fn remove_worker(&self, owner: &OwnerId) -> Result<(), StoreError> {
        let _ = owner;
        Ok(())
    }

    /// Every registered worker, by owner id, with its heartbeat age (store clock).
    async fn list_workers(&self) -> Result<Vec<WorkerRecord>, StoreError> {
        Ok(Vec::new())
    }

    /// Removes the workers whose last beat is older than `older_than` (store clock); with
    /// `dry_run`, changes nothing. Returns them, by owner id.
    async fn prune_workers(
        &self,
        older_than: Duration,
        dry_run: bool,
    ) -> Result<Vec<WorkerRecord>, StoreError> {
        let _ = (older_than, dry_run);
        Ok(Vec::new())
    }

    /// Starts listening for runs that become claimable (created queued, released), so a
    /// claimer wakes at once instead of at its next poll. `None`: this store cannot tell;
    /// poll. A best effort: a missed wake-up only costs the poll interval, never a run.
    async fn claim_wakeups(&self) -> Result<Option<ClaimWakeups>, StoreError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_filter_admits_unplaced_runs_and_its_own_host_of_its_kinds() {
        let on = |host: &str| Placement {
            host: host.into(),
            boot_id: "b".into(),
            location: "/jobs".into(),
        };
        let f = ClaimFilter {
            host: Some("a".into()),
            kinds: Some(vec!["local".into()]),
        };
        assert!(f.admits("local", None));
        assert!(f.admits("local", Some(&on("a"))));
        assert!(!f.admits("local", Some(&on("b"))), "another host's run");
        assert!(!f.admits("yarn", None), "a kind the worker does not build");
        let any = ClaimFilter::default();
        assert!(any.admits("yarn", None));
        assert!(
            !any.admits("local", Some(&on("a"))),
            "no host: only unplaced runs"
        );
    }
}
