//! [`Starting`]: bounds the runs a worker has claimed but not yet started.
//!
//! ## Guarantees
//! - At most [`STARTING`] claimed runs are on their way to their job at once (submitting,
//!   looking their tag up, adopting, first status). The worker claims no more than there is
//!   room for: a claimed run waiting its turn in memory holds a lease it must renew, so claiming
//!   100,000 runs at once to start them ~1,000 at a time cost renewals and memory for nothing
//!   (measured: leases lost by the tens of thousands, each lost run claimed again).
//! - A run leaves the bound on its first decision that is not a step of starting: the first
//!   `Observe` (its job has an id: submitted, adopted or reconnected), a backoff, a finish, …;
//!   or when its task ends, whichever comes first. The claim loop is woken.
//! - The first status of a run is not part of starting: with bulk status it waits for the
//!   endpoint's next listing (up to a second), and holding the place until then made a worker
//!   start at most ~2,048 runs a second (10,000 runs took 4.7 s with bulk status against 1.6 s
//!   with one status request per run, release build).
//!
//! ## Caveats
//! - A run that keeps submitting and failing counts as started once it backs off, so a backend
//!   that refuses everything does not stop a worker from claiming (and then taking over) runs.
use std::sync::Arc;

use tether_core::{
    decide::Decision,
    engine::{Checkpoint, Event, Observer},
    ids::RunKey,
};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::Table;

/// Claimed runs on their way to their job at once, at most.
pub const STARTING: usize = 2048;

/// The bound, and the observer that lets runs out of it.
pub struct Starting {
    permits: Arc<Semaphore>,
    table: Table,
    /// Woken when a run leaves the bound: the claim loop may claim again at once.
    pub freed: Arc<Notify>,
    inner: Arc<dyn Observer>,
}

impl Starting {
    /// A bound of `size`, reading the runs' permits in `table`, passing events on to `inner`.
    pub fn new(size: usize, table: Table, inner: Arc<dyn Observer>) -> Arc<Starting> {
        Arc::new(Starting {
            permits: Arc::new(Semaphore::new(size)),
            table,
            freed: Arc::new(Notify::new()),
            inner,
        })
    }

    /// Runs there is room to claim now.
    pub fn room(&self) -> usize {
        self.permits.available_permits()
    }

    /// Runs to claim now: none while less than `least` would fit, so that runs freeing their
    /// places one by one do not turn into one claim (one store transaction) per run.
    pub fn claimable(&self, least: usize) -> usize {
        match self.room() {
            n if n < least => 0,
            n => n,
        }
    }

    /// A place for a run just claimed (`None` if full: the run is driven anyway).
    pub fn enter(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }
}

impl Observer for Starting {
    fn event(&self, key: &RunKey, event: &Event) {
        if let Event::Decided { decision, .. } = event {
            let starting = matches!(
                **decision,
                Decision::Submit { .. } | Decision::LookUp { .. } | Decision::Adopt { .. }
            );
            if !starting {
                let permit = self
                    .table
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_mut(key)
                    .and_then(|f| f.starting.take());
                if permit.is_some() {
                    drop(permit);
                    self.freed.notify_one();
                }
            }
        }
        self.inner.event(key, event);
    }

    fn checkpoint(&self, key: &RunKey, point: Checkpoint) {
        self.inner.checkpoint(key, point);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tether_core::{decide::Decision, engine::Quiet, ids::ExternalId, observe::ActiveState};

    use super::*;
    use crate::worker::InFlight;

    fn decided(decision: Decision) -> Event {
        Event::Decided {
            generation: None,
            external_id: None,
            decision: Box::new(decision),
            reason: String::new(),
        }
    }

    #[tokio::test]
    async fn a_run_leaves_the_bound_once_its_job_has_an_id_and_wakes_the_claims() {
        let table: Table = Arc::default();
        let starting = Starting::new(2, table.clone(), Arc::new(Quiet));
        let key = RunKey::new("r").unwrap();
        let permit = starting.enter();
        assert!(permit.is_some());
        table.lock().unwrap().insert(
            key.clone(),
            InFlight {
                epoch: tether_core::ids::Epoch(1),
                signals: tether_core::engine::RunSignals::new(),
                since: Instant::now(),
                starting: permit,
                task: None,
                resumed: false,
            },
        );
        assert_eq!(starting.room(), 1);
        // Steps of starting keep the place.
        starting.event(
            &key,
            &decided(Decision::Adopt {
                external_id: ExternalId("driver-1".into()),
            }),
        );
        assert_eq!(starting.room(), 1);
        // Observing the job (it has an id) frees it, without waiting for the first status,
        // and the claim loop hears of it.
        let freed = starting.freed.clone();
        let heard = tokio::spawn(async move { freed.notified().await });
        starting.event(&key, &decided(Decision::Observe));
        assert_eq!(starting.room(), 2);
        // Later decisions find no place to free.
        starting.event(
            &key,
            &decided(Decision::Poll {
                state: ActiveState::Running,
                detail: String::new(),
            }),
        );
        assert_eq!(starting.room(), 2);
        tokio::time::timeout(Duration::from_secs(5), heard)
            .await
            .expect("the claim loop was not woken")
            .unwrap();
        // A run whose task ended (its entry gone) frees its place too.
        let p = starting.enter();
        assert_eq!(starting.room(), 1);
        drop(p);
        assert_eq!(starting.room(), 2);
        assert_eq!(starting.claimable(3), 0, "claims wait for room for a batch");
        assert_eq!(starting.claimable(2), 2);
    }
}
