//! [`MemoryStore`]: a fake [`Store`] for tests, kept in memory.
//!
//! ## Guarantees (as [`tether_core::store`] asks of every store)
//! - `acquire` and `claim` grant a lease only on an unfinished run whose lease is free or
//!   expired, each grant incrementing the epoch; a finished run is never leased.
//! - Every owner write matches key, epoch and owner (and an unfinished phase where the real
//!   stores require it); otherwise it changes nothing and answers [`StoreError::LeaseLost`].
//! - A write and its history entry happen together, under one lock.
//! - Lease expiry is judged by the store's own clock: real time plus what the test added with
//!   [`MemoryStore::advance`] (so a test can expire a lease without sleeping).
//! - Liveness: an owner's signal from `hold_liveness` is released when its guard is dropped;
//!   its runs are then free at once (the stand-in for a killed process).
//!
//! ## Caveats
//! - Not durable, no quarantine, no schema: a fake for tests only.
mod faults;
mod ops;
mod remove;
mod workers;

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicI64, Ordering},
        Mutex, MutexGuard, Weak,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

pub use faults::{Fault, Op, OUTAGE_CALL_CAP};
use tether_core::{
    ids::{RunKey, StoreId},
    store::{HistoryEntry, RunRecord, StoreError, SubmissionRecord},
};

/// One run and what hangs off it.
#[derive(Clone)]
struct Row {
    /// `lease_alive` is computed on read; `spec` is always the full text here.
    rec: RunRecord,
    /// Creation order, to break ties between runs created in the same millisecond.
    seq: u64,
    submissions: BTreeMap<u32, SubmissionRecord>,
    history: Vec<HistoryEntry>,
}

#[derive(Default)]
struct State {
    runs: BTreeMap<String, Row>,
    next_seq: u64,
    /// Owners that hold (or held) a liveness signal: dead once the token is dropped.
    live: BTreeMap<String, Weak<()>>,
    /// The worker registry, by owner id.
    workers: BTreeMap<String, workers::Worker>,
}

/// Whether `owner` held a liveness signal and released it (dropped guard: "died").
fn gone(live: &BTreeMap<String, Weak<()>>, owner: Option<&tether_core::ids::OwnerId>) -> bool {
    owner
        .and_then(|o| live.get(&o.0))
        .is_some_and(|w| w.strong_count() == 0)
}

/// A [`Store`](tether_core::Store) in memory, for tests only (see the module docs).
///
/// ```
/// # use tether_testkit::{MemoryStore, Fault, Op};
/// let store = MemoryStore::new();
/// store.fail(Op::RecordIntent, Fault::Unavailable, 2); // the next two intents fail
/// ```
pub struct MemoryStore {
    id: StoreId,
    state: Mutex<State>,
    faults: Mutex<faults::Faults>,
    /// Added to real time to make the store's clock (ms).
    skew_ms: AtomicI64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store with id `memstore`.
    pub fn new() -> Self {
        MemoryStore {
            id: StoreId::new("memstore").expect("a valid store id"),
            state: Mutex::default(),
            faults: Mutex::default(),
            skew_ms: AtomicI64::new(0),
        }
    }

    /// Moves the store's clock forward (leases expire by this clock).
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 4);
        self.skew_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// The store's clock, in ms since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        real + self.skew_ms.load(Ordering::SeqCst)
    }

    /// The next `times` calls of `op` fail with `fault` (`times == 0` clears it;
    /// `usize::MAX` is for ever).
    pub fn fail(&self, op: Op, fault: Fault, times: usize) {
        self.faults().aim(op, fault, times);
    }

    /// Every call fails as unavailable for `d` of tokio's clock from now (a paused test clock
    /// controls it), or until [`OUTAGE_CALL_CAP`] calls were refused.
    pub fn outage(&self, d: Duration) {
        self.faults().outage(tokio::time::Instant::now() + d);
    }

    /// How many times `op` was called (faulty calls included).
    pub fn calls(&self, op: Op) -> usize {
        self.faults().calls(op)
    }

    /// How many calls the store received in all.
    pub fn total_calls(&self) -> usize {
        self.faults().total()
    }

    /// The state under the lock, with the store's clock (no fault applies).
    fn state(&self) -> (MutexGuard<'_, State>, i64) {
        let now = self.now_ms();
        (self.state.lock().unwrap_or_else(|e| e.into_inner()), now)
    }

    fn faults(&self) -> MutexGuard<'_, faults::Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts the call, applies any fault, and runs `f` on the state under the lock.
    fn with<T>(
        &self,
        op: Op,
        f: impl FnOnce(&mut State, i64) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let after = self.faults().enter(op)?;
        let now = self.now_ms();
        let result = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut state, now)
        };
        match (after, result) {
            (Some(lost_answer), Ok(_)) => Err(lost_answer),
            (_, result) => result,
        }
    }
}

impl Row {
    fn read(&self, now: i64) -> RunRecord {
        let mut rec = self.rec.clone();
        rec.lease_alive = rec.owner.is_some() && rec.lease_expires_at_ms.is_some_and(|e| e > now);
        rec
    }

    fn free(&self, now: i64) -> bool {
        self.rec.owner.is_none() || self.rec.lease_expires_at_ms.is_none_or(|e| e <= now)
    }

    fn finished(&self) -> bool {
        matches!(
            self.rec.journal.phase,
            tether_core::journal::Phase::Finished { .. }
        )
    }

    fn push(&mut self, mut entry: HistoryEntry, now: i64) {
        if entry.at_ms == 0 {
            entry.at_ms = now;
        }
        self.history.push(entry);
    }
}

fn entry(rec: &RunRecord, decision: &str, reason: String) -> HistoryEntry {
    HistoryEntry {
        at_ms: 0,
        epoch: rec.epoch,
        generation: rec.last_generation,
        decision: decision.into(),
        reason,
    }
}

fn lease_lost(lease: &tether_core::store::Lease) -> StoreError {
    StoreError::LeaseLost {
        key: lease.key.clone(),
        epoch: lease.epoch,
    }
}

fn not_found(key: &RunKey) -> StoreError {
    StoreError::NotFound { key: key.clone() }
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4)
}

#[cfg(test)]
mod tests;
