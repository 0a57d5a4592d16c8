//! The run protocol: applies [`crate::decide()`] against a [`Store`] and a [`Connector`].
//!
//! ## Expected flow
//! 1. take the run's lease (a new epoch) — [`Engine::run`] for a single process, or a worker's
//!    claim followed by [`Engine::drive`];
//! 2. `record_intent(gen, tag)` before submitting;
//! 3. `record_submitted(gen, external_id)` right after the backend answers, before the first poll;
//! 4. `record_finished(outcome)` at the end.
//!
//! Between those records, the engine asks the backend (lookup by tag, status) and feeds the
//! answer to the pure decision, appending every new decision to the run's history.
//!
//! ## Guarantees
//! - Every store write carries the lease's epoch; a [`StoreError::LeaseLost`] stops the engine at
//!   once with [`EngineError::LeaseLost`] and nothing else is done to the job.
//! - Right before each action on the external job the lease is confirmed with a fenced write,
//!   so a holder that lost its lease while it was frozen does not act: before a cancel by the
//!   engine itself, before a create by the connector through [`crate::connector::Fence`] (after
//!   any look-up or slot wait of its own).
//! - A host-bound run (see [`crate::placement`]) is judged only on its host: elsewhere the drive
//!   ends with [`Finish::Elsewhere`], never with a resubmission.
//! - Transient store failures (database down) are retried; polling the job goes on meanwhile.
//!
//! ## Assumptions
//! - The store's clock and this process's timers agree on the order of seconds: the lease TTL
//!   must exceed the renewal period by a safe margin (renewal runs at TTL/3).
//!
//! ## Caveats
//! - Fencing stops our own writes and actions; it cannot stop a request already in flight to the
//!   backend when the process froze. The tag makes such a late duplicate findable, and backends
//!   with idempotent tags (Databricks tokens, K8s pod names, local jobs) reject it outright.
mod drive;
mod fence;
mod lease;

use std::{future::Future, sync::Arc, time::Duration};

pub use drive::{Parked, Stepped};
pub use lease::{LeaseKeeper, RunSignals};

use crate::{
    connector::Elsewhere,
    decide::Decision,
    ids::{Epoch, ExternalId, Generation, OwnerId, RunKey},
    journal::Outcome,
    spec::Policy,
    store::{Acquire, RunRecord, StoreError},
    Connector, Store,
};

/// How a drive ended without an error.
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    /// The run has an outcome (recorded now or earlier).
    Outcome(Outcome),
    /// The status stayed unknown beyond `status_timeout`: the run is left resumable.
    GaveUp {
        /// What was asked, the last unknown answer, and for how long none was definite.
        reason: String,
    },
    /// The run's jobs live on another host: nothing was judged or done (the run stays as it is).
    Elsewhere(Elsewhere),
}

/// Why the engine stopped without finishing.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Another owner holds the run now. Nothing was done to the job.
    #[error("lease lost on run {key} (epoch {epoch}): another owner took over; this process stands down without touching the job")]
    LeaseLost {
        /// The run.
        key: RunKey,
        /// Our stale epoch.
        epoch: Epoch,
    },
    /// The run does not exist in the store.
    #[error("no run with key {key} in the state store")]
    NoSuchRun {
        /// The key.
        key: RunKey,
    },
    /// Taking the lease failed.
    #[error("could not take the lease of run {key}: {source}")]
    Acquire {
        /// The run.
        key: RunKey,
        /// Cause.
        #[source]
        source: StoreError,
    },
    /// Reading the run failed.
    #[error("could not read run {key}: {source}")]
    Read {
        /// The run.
        key: RunKey,
        /// Cause.
        #[source]
        source: StoreError,
    },
    /// A journal write failed for a non-transient reason.
    #[error("could not record {what} for run {key}: {source}")]
    Record {
        /// The run.
        key: RunKey,
        /// Which record.
        what: &'static str,
        /// Cause.
        #[source]
        source: StoreError,
    },
}

/// Points of the protocol where a test may crash the process on purpose (see
/// [`Observer::checkpoint`]). Production observers ignore them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// The intent is committed; the backend has not been called.
    AfterIntent,
    /// The backend returned an id; it is not recorded yet.
    AfterSubmit,
    /// The id is recorded; no poll yet.
    AfterSubmitted,
}

impl Checkpoint {
    /// Name used by `TETHER_FAULT`.
    pub fn name(self) -> &'static str {
        match self {
            Checkpoint::AfterIntent => "after-intent",
            Checkpoint::AfterSubmit => "after-submit",
            Checkpoint::AfterSubmitted => "after-submitted",
        }
    }
}

/// Something that happened while driving a run, for progress displays.
#[derive(Debug, Clone)]
pub enum Event {
    /// We hold the lease.
    Acquired {
        /// Our epoch.
        epoch: Epoch,
    },
    /// Another live owner holds the run; we follow it.
    Following {
        /// The record as last read.
        record: Box<RunRecord>,
    },
    /// A decision was taken.
    Decided {
        /// Current generation.
        generation: Option<Generation>,
        /// Current external id.
        external_id: Option<ExternalId>,
        /// The decision.
        decision: Box<Decision>,
        /// Its explanation (as written to the history).
        reason: String,
    },
}

/// Receives engine events. All methods have empty defaults.
pub trait Observer: Send + Sync {
    /// An event of run `key`.
    fn event(&self, _key: &RunKey, _event: &Event) {}
    /// A protocol checkpoint was passed (fault injection hook for crash tests).
    fn checkpoint(&self, _key: &RunKey, _point: Checkpoint) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// Timing settings of leases.
#[derive(Debug, Clone, Copy)]
pub struct LeaseSettings {
    /// Lease time to live; renewed every `ttl / 3`.
    pub ttl: Duration,
    /// How often a follower re-reads a run owned by someone else (the first re-reads come
    /// sooner: an eighth of it, doubling).
    pub follow_interval: Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        // 9 s TTL, renewed every 3 s: a dead owner's run is taken over within ~10 s.
        LeaseSettings {
            ttl: Duration::from_secs(9),
            follow_interval: Duration::from_millis(500),
        }
    }
}

/// Drives runs of one connector against one store.
pub struct Engine {
    store: Arc<dyn Store>,
    connector: Arc<dyn Connector>,
    policy: Policy,
    leases: LeaseSettings,
    observer: Arc<dyn Observer>,
}

impl Engine {
    /// A new engine.
    pub fn new(
        store: Arc<dyn Store>,
        connector: Arc<dyn Connector>,
        policy: Policy,
        leases: LeaseSettings,
        observer: Arc<dyn Observer>,
    ) -> Self {
        Engine {
            store,
            connector,
            policy,
            leases,
            observer,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Runs `key` to the end from this process: takes the lease (or follows the live owner
    /// until it finishes or its lease expires, then takes over), renews it while driving,
    /// and returns the outcome. The run must exist ([`Store::create_run`]).
    pub async fn run(&self, key: &RunKey, owner: &OwnerId) -> Result<Finish, EngineError> {
        // The first looks come quickly, then every `follow_interval`: an owner that just died
        // may not look dead yet (a SIGKILLed owner's PostgreSQL session is closed by the server
        // a moment after the rerun's first `acquire`), and waiting a whole interval for it was
        // most of a rerun's takeover time.
        let mut pause = self.leases.follow_interval / 8;
        loop {
            let acquired = self
                .store
                .acquire(key, owner, self.leases.ttl)
                .await
                .map_err(|source| EngineError::Acquire {
                    key: key.clone(),
                    source,
                })?;
            match acquired {
                Acquire::Acquired(lease, record) => {
                    self.observer
                        .event(key, &Event::Acquired { epoch: lease.epoch });
                    let keeper =
                        LeaseKeeper::start(self.store.clone(), lease.clone(), self.leases.ttl);
                    let result = self.drive(&lease, record, keeper.signals()).await;
                    keeper.stop().await;
                    if let Ok(Finish::GaveUp { .. } | Finish::Elsewhere(_)) = &result {
                        // Leave the run resumable by anyone at once.
                        let _ = self.store.release(&lease).await;
                    }
                    return result;
                }
                Acquire::Held(record) => {
                    if let crate::journal::Phase::Finished { outcome } = &record.journal.phase {
                        return Ok(Finish::Outcome(outcome.clone()));
                    }
                    self.observer.event(
                        key,
                        &Event::Following {
                            record: Box::new(record),
                        },
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(self.leases.follow_interval);
                }
            }
        }
    }

    /// Drives a run whose lease we hold until it finishes, gives up on an unknown status, or
    /// the lease is lost (`signals`). `record` is the run as read when the lease was taken.
    ///
    /// Not an `async fn`: the record is taken apart before the future exists, so the future
    /// does not keep a copy of it beside the driver's state for its whole life.
    pub fn drive<'a>(
        &'a self,
        lease: &'a crate::store::Lease,
        record: RunRecord,
        signals: Arc<RunSignals>,
    ) -> impl Future<Output = Result<Finish, EngineError>> + Send + 'a {
        // The driver is captured, its future made inside: capturing the future and awaiting it
        // kept it twice in this one (~930 bytes instead of ~500).
        let driver = drive::Driver::new(self, lease, record, signals);
        async move {
            match driver.run(false).await? {
                Stepped::Finished(finish) => Ok(finish),
                Stepped::Parked(_) => unreachable!("a drive without parking never parks"),
            }
        }
    }

    /// [`Engine::drive`], except that a run that would wait for its next status (after a poll,
    /// or to ask again after no definite answer) and cannot notice a change of its job
    /// meanwhile (every connector but `local`) stops waiting there:
    /// [`Stepped::Parked`] hands it back without a task, to [`Engine::resume`] when due (or
    /// [`Parked::interrupted`]). Nothing about the run changes while it is parked: its lease is
    /// renewed by its owner as before, and it decides as if it had slept.
    pub fn drive_parking<'a>(
        &'a self,
        lease: &'a crate::store::Lease,
        record: RunRecord,
        signals: Arc<RunSignals>,
    ) -> impl Future<Output = Result<Stepped, EngineError>> + Send + 'a {
        drive::Driver::new(self, lease, record, signals).run(true)
    }

    /// Goes on with a parked run: `lease` and this engine must be those it was driven with.
    pub fn resume<'a>(
        &'a self,
        lease: &'a crate::store::Lease,
        parked: Parked,
    ) -> impl Future<Output = Result<Stepped, EngineError>> + Send + 'a {
        drive::Driver::resume(self, lease, parked).run(true)
    }
}
