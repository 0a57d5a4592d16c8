//! The decision loop for one run whose lease we hold.
//!
//! ## Mutation testing
//! `cargo mutants -p tether-core --file 'crates/core/src/engine/**'` (cargo-mutants 27.1, see
//! README): 71 mutants, 16 unviable, every other one caught or timed out by core's own tests
//! except these five, left alive on purpose:
//! - `note`: `at.elapsed() < HISTORY_REPEAT` → `<=`: differs only when exactly 60 s passed
//!   between two repeats; equivalent.
//! - `run`: `!matches!(phase, Finished)` before returning `Finish::Elsewhere`, and in
//!   `drive/submit.rs` `filter(|_| !self.s.placed)` and `self.s.placed |= …`: host-bound runs only,
//!   which the core's fakes are not. Not equivalent: covered by `crates/cli/tests/host_bound.rs`
//!   and `crates/store/tests/placement.rs` (a host-bound `ScriptedConnector` would bring them
//!   into core).
//! - `fence.rs`: `LeaseFence::interrupted` → `()`: only the worker's local slot wait uses it;
//!   not equivalent, covered by `a_cancel_ends_the_wait_for_a_local_slot_and_nothing_starts`
//!   (`crates/cli/tests/fleet.rs`).
use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use super::{Engine, EngineError, Event, Finish, RunSignals};
use crate::{
    connector::{CancelError, Elsewhere, JobRef},
    decide::{decide, Clocks, Decision},
    history::HistoryKind,
    ids::{ExternalId, Generation},
    journal::{Journal, Phase},
    observe::{ActiveState, Asked, Lookup, Observed},
    placement::Placement,
    store::{HistoryEntry, Lease, RunRecord, StoreError},
    Connector,
};

/// Decisions a flapping backend repeats: each is written to the history at most once per
/// [`HISTORY_REPEAT`] (every other decision always is).
const REPEATING: [HistoryKind; 4] = [
    HistoryKind::Poll,
    HistoryKind::AskAgain,
    HistoryKind::LookUpTag,
    HistoryKind::Backoff,
];
/// See [`REPEATING`].
const HISTORY_REPEAT: Duration = Duration::from_secs(60);

mod events;
mod explain;
mod parked;
mod submit;

pub use parked::{Parked, Stepped};

pub(super) struct Driver<'a> {
    engine: &'a Engine,
    lease: &'a Lease,
    /// Everything else, boxed: the drive's future holds a pointer to it, and a run parked
    /// between two polls ([`Parked`]) is this box and nothing more.
    s: Box<State>,
}

/// What a drive keeps between its steps.
pub(super) struct State {
    /// The engine's connector, or the one rebound to the run's recorded placement.
    connector: Arc<dyn Connector>,
    /// Placement of a host-bound run: recorded with the next intent if the run has none yet.
    /// Boxed, as the two below: most runs have none, and every run in flight holds a `State`
    /// (boxed, 584 bytes fell to 360, a smaller size class of the allocator).
    placement: Option<Box<Placement>>,
    placed: bool,
    /// Where a host-bound run lives when it is not here: the drive ends at once.
    elsewhere: Option<Box<Elsewhere>>,
    journal: Journal,
    signals: Arc<RunSignals>,
    observed: Observed,
    /// What `decide` keeps between calls (unknown and submit-failing clocks, backoff served).
    clocks: Clocks,
    /// The drive's start: `decide`'s `now` is the time since.
    started: Instant,
    /// Name of the last decision written to the history, to keep repeats (polls) out of it.
    last_noted: Option<HistoryKind>,
    /// When each repeating decision kind (by its place in [`REPEATING`]) was last written: a
    /// backend flapping between two answers adds at most one row per kind per
    /// [`HISTORY_REPEAT`]. An array, not a map: no allocation per run.
    noted_at: [Option<Instant>; REPEATING.len()],
    /// The state of the last poll: a change (queued → running) is written to the history.
    polled: Option<ActiveState>,
    /// The backend events already recorded for the current generation.
    events: Option<Box<events::SeenEvents>>,
}

impl<'a> Driver<'a> {
    pub(super) fn new(
        engine: &'a Engine,
        lease: &'a Lease,
        record: RunRecord,
        signals: Arc<RunSignals>,
    ) -> Self {
        if record.journal.cancel_requested {
            signals.request_cancel();
        }
        let mut connector = engine.connector.clone();
        let mut elsewhere = None;
        let placement = match (engine.connector.host_bound(), &record.placement) {
            (None, _) => None,
            (Some(bound), None) => Some(Box::new(bound.placement())),
            (Some(bound), Some(recorded)) => {
                match bound.rebind(recorded) {
                    Ok(c) => connector = c,
                    Err(e) => elsewhere = Some(Box::new(e)),
                }
                Some(Box::new(recorded.clone()))
            }
        };
        let s = Box::new(State {
            connector,
            placed: record.placement.is_some(),
            placement,
            elsewhere,
            journal: record.journal,
            signals,
            observed: Observed::Nothing,
            clocks: Clocks::default(),
            started: Instant::now(),
            last_noted: None,
            noted_at: [None; REPEATING.len()],
            polled: None,
            events: None,
        });
        Driver { engine, lease, s }
    }

    /// The driver of a parked run.
    pub(super) fn resume(engine: &'a Engine, lease: &'a Lease, parked: Parked) -> Self {
        Driver {
            engine,
            lease,
            s: parked.state,
        }
    }

    /// The drive. With `park`, a run that would wait for its next poll and cannot notice a
    /// change of its job meanwhile stops there ([`Stepped::Parked`]); without, the drive only
    /// ends when the run does.
    ///
    /// Not an `async fn`: its argument would be kept twice in the future (the argument and the
    /// moved-in local).
    #[allow(clippy::manual_async_fn)]
    pub(super) fn run(
        mut self,
        park: bool,
    ) -> impl Future<Output = Result<Stepped, EngineError>> + Send + 'a {
        async move {
            if let Some(elsewhere) = self.s.elsewhere.take() {
                if !matches!(self.s.journal.phase, Phase::Finished { .. }) {
                    return Ok(Stepped::Finished(Finish::Elsewhere(*elsewhere)));
                }
            }
            loop {
                self.check_lease()?;
                self.s.journal.cancel_requested |= self.s.signals.cancel_requested();
                let (decision, clocks) = decide(
                    &self.s.journal,
                    &self.s.observed,
                    &self.engine.policy,
                    self.s.clocks,
                    self.s.started.elapsed(),
                );
                self.s.clocks = clocks;
                let reason = self.explain(&decision);
                self.engine.observer.event(
                    &self.lease.key,
                    &Event::Decided {
                        generation: self.generation(),
                        external_id: self.external_id().cloned(),
                        decision: Box::new(decision.clone()),
                        reason: reason.clone(),
                    },
                );
                // A run spends its life observing and polling: those two stay inline, the rest is
                // boxed, so that the run's task is as large as its polling state (100,000 runs in
                // one worker hold 100,000 of these), not as its largest rare branch.
                match decision {
                    Decision::Observe => self.s.observed = self.status().await,
                    Decision::Poll { state, .. } => {
                        self.noted_poll(state, &reason).await?;
                        if park && !self.s.connector.notices_changes() {
                            let wait = self.engine.policy.poll_interval;
                            return Ok(Stepped::Parked(self.parked(wait)));
                        }
                        self.wait_poll().await;
                        self.s.observed = Observed::Nothing;
                    }
                    // A backend that gives no definite answer for a while: the whole cohort of a
                    // failed bulk call waits here at once, so it parks as polls do.
                    Decision::AskAgain { after, .. }
                        if park && !self.s.connector.notices_changes() =>
                    {
                        self.note(HistoryKind::AskAgain, self.generation(), &reason)
                            .await?;
                        return Ok(Stepped::Parked(self.parked(after)));
                    }
                    rare => {
                        if let Some(finish) = Box::pin(self.act(rare, reason)).await? {
                            return Ok(Stepped::Finished(finish));
                        }
                    }
                }
            }
        }
    }

    /// The run parked until `wait` from now, asking afresh then.
    fn parked(mut self, wait: Duration) -> Parked {
        self.s.observed = Observed::Nothing;
        Parked {
            state: self.s,
            due: Instant::now() + wait,
        }
    }

    /// Acts on a decision other than observing and polling; `Some` ends the drive.
    async fn act(
        &mut self,
        decision: Decision,
        reason: String,
    ) -> Result<Option<Finish>, EngineError> {
        match decision {
            Decision::Backoff {
                submission, after, ..
            } => {
                self.note(HistoryKind::Backoff, submission.generation.into(), &reason)
                    .await?;
                self.s.signals.sleep(after).await;
                // Then decide again: a cancel may have arrived meanwhile.
            }
            Decision::Submit {
                submission,
                reason: why,
                ..
            } => {
                if let Some(finish) = Box::pin(self.submit(submission, why, reason)).await? {
                    return Ok(Some(finish));
                }
            }
            Decision::LookUp { tag } => {
                self.note(HistoryKind::LookUpTag, self.generation(), &reason)
                    .await?;
                self.s.observed = match self.s.connector.find_by_tag() {
                    None if self.s.connector.idempotent_submit() => {
                        Observed::Lookup(Lookup::Idempotent)
                    }
                    None => Observed::Lookup(Lookup::Unsupported),
                    Some(finder) => Observed::lookup(finder.find_by_tag(&tag).await),
                };
            }
            Decision::Adopt { external_id } => {
                let Phase::Intent { submission } = self.s.journal.phase.clone() else {
                    unreachable!("decide adopts only from an intent")
                };
                let entry = self.entry(HistoryKind::Adopt, Some(submission.generation), reason);
                Box::pin(self.record_id(
                    "the adopted job id",
                    HistoryKind::Adopt,
                    submission,
                    external_id,
                    entry,
                ))
                .await?;
            }
            Decision::AskAgain { after, .. } => {
                self.note(HistoryKind::AskAgain, self.generation(), &reason)
                    .await?;
                self.s.signals.sleep(after).await;
                self.s.observed = Observed::Nothing;
            }
            Decision::GiveUp { .. } => {
                self.note(HistoryKind::GiveUpUnknown, self.generation(), &reason)
                    .await?;
                return Ok(Some(Finish::GaveUp { reason }));
            }
            Decision::Cancel { external_id } => {
                self.note(HistoryKind::Cancel, self.generation(), &reason)
                    .await?;
                // Fenced renewal right before acting on the job: a frozen ex-owner stops here.
                self.touch().await?;
                let job = self.job_ref(external_id);
                self.s.observed = match self.s.connector.cancel(&job).await {
                    Err(CancelError::Unavailable { reason }) => Observed::Unknown {
                        asked: Asked::Cancel,
                        reason,
                    },
                    Ok(()) | Err(CancelError::Refused { .. }) => {
                        self.s
                            .signals
                            .sleep(self.engine.policy.poll_interval.min(Duration::from_secs(1)))
                            .await;
                        self.status().await
                    }
                };
            }
            Decision::Finish(outcome) => {
                // What happened inside the job before it ended (the OOM that ended it).
                Box::pin(self.record_events()).await?;
                let entry = self.entry(HistoryKind::Finish, self.generation(), reason);
                return Box::pin(self.finish(outcome, entry)).await.map(Some);
            }
            Decision::Return(outcome) => return Ok(Some(Finish::Outcome(outcome))),
            Decision::Observe | Decision::Poll { .. } => {
                unreachable!("observing and polling are handled inline")
            }
        }
        Ok(None)
    }

    /// A poll that found the job active: history (the first poll of each state) and the
    /// backend's events. The wait until the next status is the caller's.
    async fn noted_poll(&mut self, state: ActiveState, reason: &str) -> Result<(), EngineError> {
        // Queued → running is news: the history gets the first poll of each state.
        if self.s.polled.replace(state) != Some(state) {
            let poll = REPEATING.iter().position(|r| *r == HistoryKind::Poll);
            if let Some(i) = poll {
                self.s.noted_at[i] = None;
            }
            self.s.last_noted.take_if(|n| *n == HistoryKind::Poll);
        }
        self.note(HistoryKind::Poll, self.generation(), reason)
            .await?;
        Box::pin(self.record_events()).await
    }

    async fn status(&mut self) -> Observed {
        let Phase::Submitted {
            submission,
            external_id,
        } = &self.s.journal.phase
        else {
            return Observed::Nothing;
        };
        let job = JobRef {
            external_id: external_id.clone(),
            submission: submission.clone(),
        };
        Observed::status(self.s.connector.status(&job).await)
    }

    /// The poll interval, cut short when the connector sees the job change (a local job's
    /// end) or a signal comes (cancel, lost lease).
    async fn wait_poll(&self) {
        let interval = self.engine.policy.poll_interval;
        let Some(id) = self
            .external_id()
            .cloned()
            .filter(|_| self.s.connector.notices_changes())
        else {
            return self.s.signals.sleep(interval).await;
        };
        let job = self.job_ref(id);
        tokio::select! {
            () = self.s.signals.sleep(interval) => {}
            () = self.s.connector.wait_change(&job, interval) => {}
        }
    }

    fn job_ref(&self, external_id: ExternalId) -> JobRef {
        let submission = match &self.s.journal.phase {
            Phase::Submitted { submission, .. } | Phase::Intent { submission } => {
                submission.clone()
            }
            _ => unreachable!("a job reference needs a submission"),
        };
        JobRef {
            external_id,
            submission,
        }
    }

    fn generation(&self) -> Option<Generation> {
        match &self.s.journal.phase {
            Phase::Intent { submission } | Phase::Submitted { submission, .. } => {
                Some(submission.generation)
            }
            _ => None,
        }
    }

    fn external_id(&self) -> Option<&ExternalId> {
        match &self.s.journal.phase {
            Phase::Submitted { external_id, .. } => Some(external_id),
            _ => None,
        }
    }

    fn entry(
        &self,
        decision: HistoryKind,
        generation: Option<Generation>,
        reason: String,
    ) -> HistoryEntry {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        HistoryEntry {
            at_ms,
            epoch: self.lease.epoch,
            generation,
            decision,
            reason,
        }
    }

    /// Appends a history entry unless it repeats the previous decision (polls, retries).
    /// History is not worth blocking the run for: a store outage skips the entry.
    async fn note(
        &mut self,
        name: HistoryKind,
        generation: Option<Generation>,
        reason: &str,
    ) -> Result<(), EngineError> {
        if self.s.last_noted.as_ref() == Some(&name) {
            return Ok(());
        }
        if let Some(i) = REPEATING.iter().position(|r| *r == name) {
            if self.s.noted_at[i].is_some_and(|at| at.elapsed() < HISTORY_REPEAT) {
                return Ok(());
            }
            self.s.noted_at[i] = Some(Instant::now());
        }
        let entry = self.entry(name.clone(), generation, reason.to_string());
        match self.engine.store.append_history(self.lease, &entry).await {
            Ok(()) => {
                self.s.last_noted = Some(name);
                Ok(())
            }
            Err(e) if e.is_lease_lost() => Err(self.lost()),
            Err(_) => Ok(()),
        }
    }

    async fn touch(&self) -> Result<(), EngineError> {
        self.write("the lease renewal", || {
            self.engine.store.renew(self.lease, self.engine.leases.ttl)
        })
        .await
    }

    fn check_lease(&self) -> Result<(), EngineError> {
        if self.s.signals.is_lost() {
            return Err(self.lost());
        }
        Ok(())
    }

    fn lost(&self) -> EngineError {
        self.s.signals.mark_lost();
        EngineError::LeaseLost {
            key: self.lease.key.clone(),
            epoch: self.lease.epoch,
        }
    }

    /// A fenced write, retried while the store is unavailable; the lease may be lost meanwhile.
    async fn write<F, Fut>(&self, what: &'static str, mut op: F) -> Result<(), EngineError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), StoreError>>,
    {
        let mut wait = Duration::from_millis(200);
        loop {
            self.check_lease()?;
            match op().await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_lease_lost() => return Err(self.lost()),
                Err(e) if e.is_transient() => {
                    self.s.signals.sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(source) => {
                    return Err(EngineError::Record {
                        key: self.lease.key.clone(),
                        what,
                        source,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every run in flight in a worker holds one `State` (a parked run is nothing else): it
    /// stays within the allocator's 384-byte class (584 bytes before the host-bound and event
    /// fields were boxed).
    #[test]
    fn a_runs_state_stays_small() {
        let size = std::mem::size_of::<super::State>();
        assert!(size <= 384, "State is {size} bytes");
    }
}
