//! Starting one claimed run (its connector, its engine and its task), and resuming a parked one.
use tether_core::{engine::Stepped, ids::Generation, observe::JobStatus};

use crate::bulk::Endpoint;

use super::{parking::Entry, *};

/// Where a run's task starts from.
enum From {
    /// A claimed run.
    Record(Box<RunRecord>, Arc<RunSignals>),
    /// A parked run.
    Parked(tether_core::engine::Parked),
}

/// How a run's task ended.
pub(super) enum Ended {
    /// The drive ended (or stopped: lease lost, store error).
    Done(RunKey, Result<Finish, EngineError>),
    /// The run waits for its next status: kept in [`super::parking::Parking`] until then.
    Parked(Entry),
}

/// What starting a claimed run needs.
pub(super) struct Launch<'a> {
    pub(super) ctx: &'a Ctx,
    pub(super) store: &'a Arc<dyn Store>,
    pub(super) owner: &'a OwnerId,
    pub(super) table: &'a Table,
    pub(super) slots: &'a Arc<Semaphore>,
    pub(super) local_slots: usize,
    pub(super) observer: &'a Arc<dyn Observer>,
    pub(super) starting: &'a starting::Starting,
    pub(super) say: &'a Notices,
    /// Coalesces the status requests of all runs on one endpoint (see [`crate::bulk`]).
    pub(super) bulk: &'a Observers,
    pub(super) metrics: &'a Metrics,
}

impl Launch<'_> {
    pub(super) fn start(
        &self,
        connectors: &mut ConnectorCache,
        tasks: &mut Tasks,
        lease: Lease,
        record: RunRecord,
    ) {
        let Launch {
            ctx,
            store,
            table,
            slots,
            local_slots,
            ..
        } = *self;
        let key = lease.key.clone();
        let engine_over = |connector, policy| {
            Arc::new(Engine::new(
                store.clone(),
                crate::metrics::timed(connector, self.metrics.clone()),
                policy,
                ctx.config.leases,
                Arc::new(Counted {
                    metrics: self.metrics.clone(),
                    kind: record.kind.clone(),
                    inner: self.observer.clone(),
                }),
            ))
        };
        let shared = match connectors.get(&record, || {
            let built = ctx.connector_for(&record)?;
            let (connector, endpoint) = self.bulk.wrap_endpoint(built.connector);
            Ok(cache::Shared {
                engine: engine_over(connector.clone(), built.policy.clone()),
                connector,
                policy: built.policy,
                endpoint,
            })
        }) {
            Ok(shared) => shared,
            Err(e) => {
                // A spec this worker cannot build (a bad spec: runs of kinds it does not know are
                // never claimed, see `claim_filter`): leave it to others.
                tracing::warn!(%key, error = %e, "cannot build the run's connector; releasing it");
                (self.say)(&format!(
                    "tether worker: {key}: cannot build its connector here: {e}; releasing it"
                ));
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = store.release(&lease).await;
                });
                return;
            }
        };
        let signals = RunSignals::new();
        if record.journal.cancel_requested {
            signals.request_cancel();
        }
        table.lock().unwrap_or_else(|p| p.into_inner()).insert(
            key.clone(),
            InFlight {
                epoch: lease.epoch,
                signals: signals.clone(),
                since: Instant::now(),
                starting: self.starting.enter(),
                task: None,
                resumed: false,
            },
        );
        // A local run holds its own slots (released when its drive ends): its own engine.
        let engine = if shared.connector.kind() == "local" {
            engine_over(
                slots::limit_local(shared.connector, slots.clone(), local_slots),
                shared.policy,
            )
        } else {
            shared.engine
        };
        self.spawn(
            tasks,
            (engine, shared.endpoint),
            lease,
            From::Record(Box::new(record), signals),
            None,
        );
    }

    /// Drives a parked run again (with `status` if its owner asked for it).
    pub(super) fn resume(&self, tasks: &mut Tasks, entry: Entry, status: Option<JobStatus>) {
        let Entry {
            engine,
            lease,
            mut parked,
            endpoint,
        } = entry;
        if let Some(status) = status {
            parked.set_status(status);
        }
        let generation = parked.generation();
        self.spawn(
            tasks,
            (engine, endpoint),
            lease,
            From::Parked(parked),
            generation,
        );
    }

    /// The run's task: its drive until it ends or parks, in its span.
    fn spawn(
        &self,
        tasks: &mut Tasks,
        (engine, endpoint): (Arc<Engine>, Option<Endpoint>),
        lease: Lease,
        from: From,
        generation: Option<Generation>,
    ) {
        let key = lease.key.clone();
        let span = crate::trace::run_span(&key, lease.epoch, self.owner);
        if let Some(g) = generation {
            span.record("generation", g.0);
        }
        let resumed = matches!(from, From::Parked(_));
        let handle = tasks.set.spawn(
            async move {
                // Boxed, and moved out at once: the task keeps what it captures for its life.
                let stepped = match from {
                    From::Record(record, signals) => {
                        engine.drive_parking(&lease, *record, signals).await
                    }
                    From::Parked(parked) => engine.resume(&lease, parked).await,
                };
                let result = match stepped {
                    Ok(Stepped::Parked(parked)) => {
                        let entry = Entry {
                            engine,
                            lease,
                            parked,
                            endpoint,
                        };
                        return Ended::Parked(entry);
                    }
                    Ok(Stepped::Finished(finish)) => Ok(finish),
                    Ok(other) => unreachable!("a step this worker does not know: {other:?}"),
                    Err(e) => Err(e),
                };
                if let Ok(Finish::GaveUp { .. } | Finish::Elsewhere(_)) = &result {
                    let _ = engine.store().release(&lease).await;
                }
                Ended::Done(lease.key, result)
            }
            .instrument(span),
        );
        // The task cannot have been reaped yet: only the worker's loop reaps tasks.
        if let Some(f) = self
            .table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&key)
        {
            f.task = Some(handle.id());
            f.resumed = resumed;
        }
    }
}
