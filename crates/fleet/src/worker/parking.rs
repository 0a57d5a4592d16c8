//! Runs between two polls, held without a task (issue 15: 100,000 runs in one worker).
//!
//! A run that polls a remote backend spends nearly all its life waiting for its next status. A
//! task per run held its drive future, its timer and its tracing span for all that time; a
//! parked run is its drive's state ([`Parked`]) in one ordered map, and gets a task again only
//! when its status has come, or when it is interrupted. A due run whose spec has a bulk
//! observer ([`crate::bulk`]) asks it for its status through [`ask_for`] and waits for the
//! answer still without a task: the runs of one tick (a quarter of them, at a 5 s poll and a
//! 100,000-driver listing) no longer hold a task, a status future and a span each while the
//! listing is fetched.
//!
//! ## Guarantees
//! - A parked run is resumed no earlier than its due time, unless interrupted: a cancel its
//!   drive has not seen, or its lease lost ([`Parked::interrupted`]). Those are looked for every
//!   [`LOOK`] at most, so a cancel reaches a parked run within the heartbeat that brings it
//!   plus [`LOOK`].
//! - Parking changes nothing the run decides: its drive goes on from the same state.
//! - A parked run is still in the worker's table: renewed by the heartbeat, counted against
//!   `--concurrency`, released when the worker stops.
//!
//! ## Caveats
//! - Local runs never park (their connector notices their job's end, so they wait in a task).
use std::{collections::BTreeMap, sync::Arc, time::Duration};

use tether_core::{
    engine::{Engine, Parked},
    observe::JobStatus,
    store::Lease,
};

use crate::bulk::Endpoint;
use tokio::time::Instant;

/// How often parked runs are looked at for an interruption before they are due.
pub(super) const LOOK: Duration = Duration::from_millis(250);

/// A parked run and what resuming it takes.
pub(super) struct Entry {
    pub(super) engine: Arc<Engine>,
    pub(super) lease: Lease,
    pub(super) parked: Parked,
    /// Its spec's bulk observer, if it has one: a due run asks it for its status and is
    /// resumed with the answer, so it holds no task while the answer comes.
    pub(super) endpoint: Option<Endpoint>,
}

/// The parked runs of a worker, by due time.
#[derive(Default)]
pub(super) struct Parking {
    /// By due time, then by arrival (runs due at the same instant keep their order).
    runs: BTreeMap<(Instant, u64), Entry>,
    arrivals: u64,
    /// When the parked runs were last looked at for interruptions.
    looked: Option<Instant>,
}

impl Parking {
    pub(super) fn park(&mut self, entry: Entry) {
        self.arrivals += 1;
        let due = Instant::from_std(entry.parked.due());
        self.runs.insert((due, self.arrivals), entry);
    }

    pub(super) fn len(&self) -> usize {
        self.runs.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// When the worker must next call [`Parking::take_ready`]: the first due time, or the next
    /// look for interruptions, whichever comes first. `None`: nothing is parked.
    pub(super) fn next_wake(&self, now: Instant) -> Option<Instant> {
        let first = self.runs.keys().next()?.0;
        Some(first.min(self.looked.unwrap_or(now) + LOOK))
    }

    /// The runs due by `now` and, once per [`LOOK`], the interrupted ones, taken out.
    pub(super) fn take_ready(&mut self, now: Instant) -> Vec<Entry> {
        // Everything at or before `now` (no arrival number reaches `u64::MAX`).
        let later = self.runs.split_off(&(now, u64::MAX));
        let due = std::mem::replace(&mut self.runs, later);
        let mut ready: Vec<Entry> = due.into_values().collect();
        if self.looked.is_none_or(|at| now >= at + LOOK) {
            self.looked = Some(now);
            let interrupted: Vec<(Instant, u64)> = self
                .runs
                .iter()
                .filter(|(_, e)| e.parked.interrupted())
                .map(|(k, _)| *k)
                .collect();
            ready.extend(interrupted.iter().filter_map(|k| self.runs.remove(k)));
        }
        ready
    }
}

/// Asks `entry`'s bulk observer for the status of a due run: the answer comes back on
/// `answered` with the run, which holds no task meanwhile. `Some(entry)`: resume it now (it
/// was interrupted, or its connector has no bulk status).
pub(super) fn ask_for(
    entry: Entry,
    answered: &tokio::sync::mpsc::UnboundedSender<(Entry, JobStatus)>,
) -> Option<Entry> {
    if entry.parked.interrupted() {
        return Some(entry);
    }
    let (Some(endpoint), Some(job)) = (entry.endpoint.clone(), entry.parked.job()) else {
        return Some(entry);
    };
    let answered = answered.clone();
    // A send fails only once the worker has stopped: the run is then dropped with it.
    endpoint.ask(
        job,
        Box::new(move |status| {
            let _ = answered.send((entry, status));
        }),
    );
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tether_core::{
        engine::{Engine, LeaseSettings, Quiet, RunSignals, Stepped},
        ids::RunKey,
        observe::JobStatus,
        spec::Policy,
        Store,
    };
    use tether_testkit::{acquired, scripted_run, MemoryStore, ScriptedConnector};

    use super::*;

    /// A run of `key` driven until it parks (its job stays running), and its signals.
    async fn parked(
        store: &Arc<MemoryStore>,
        key: &str,
        poll: Duration,
    ) -> (Entry, Arc<RunSignals>) {
        let key = RunKey::new(key).unwrap();
        store.create_run(&scripted_run(&key)).await.unwrap();
        let (lease, record) = acquired(store.as_ref(), &key, "me", Duration::from_secs(9)).await;
        let engine = Arc::new(Engine::new(
            store.clone(),
            Arc::new(ScriptedConnector::new(vec![JobStatus::running("RUNNING")])),
            Policy {
                poll_interval: poll,
                ..Policy::default()
            },
            LeaseSettings {
                ttl: Duration::from_secs(9),
                follow_interval: Duration::from_millis(10),
            },
            Arc::new(Quiet),
        ));
        let signals = RunSignals::new();
        let step = engine
            .drive_parking(&lease, record, signals.clone())
            .await
            .unwrap();
        let Stepped::Parked(parked) = step else {
            panic!("{step:?}")
        };
        let entry = Entry {
            engine,
            lease,
            parked,
            endpoint: None,
        };
        (entry, signals)
    }

    fn keys(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(|e| e.lease.key.to_string()).collect()
    }

    #[tokio::test]
    async fn runs_come_out_when_due_or_when_interrupted() {
        let store = Arc::new(MemoryStore::new());
        let mut parking = Parking::default();
        let (soon, _) = parked(&store, "soon", Duration::from_millis(1)).await;
        let (late, late_signals) = parked(&store, "late", Duration::from_secs(3600)).await;
        let (later, _) = parked(&store, "later", Duration::from_secs(3600)).await;
        let soon_due = Instant::from_std(soon.parked.due());
        for e in [later, soon, late] {
            parking.park(e);
        }
        assert_eq!(parking.len(), 3);
        let first = parking.next_wake(Instant::now()).unwrap();
        assert!(first <= soon_due, "the first due run sets the wake-up");
        // The first call looks for interruptions too: none yet, so only the due run comes out.
        let now = soon_due.max(Instant::now());
        assert_eq!(keys(&parking.take_ready(now)), ["soon"]);
        // A cancel is noticed at the next look, long before the run is due.
        late_signals.request_cancel();
        assert!(
            parking.take_ready(now).is_empty(),
            "looked less than LOOK ago"
        );
        let next = parking.next_wake(now).unwrap();
        assert_eq!(
            next,
            now + LOOK,
            "the next look, not the hour-long due time"
        );
        assert_eq!(keys(&parking.take_ready(next)), ["late"]);
        assert_eq!(parking.len(), 1);
        assert!(parking.take_ready(next + LOOK).is_empty());
    }
}
