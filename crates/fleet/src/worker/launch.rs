//! Starting one claimed run: its connector, its engine and its task.
use super::*;

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
            let connector = self.bulk.wrap(built.connector);
            Ok(cache::Shared {
                engine: engine_over(connector.clone(), built.policy.clone()),
                connector,
                policy: built.policy,
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
        // Boxed and taken out at once: the task keeps what it captures for its whole life (a
        // plain `Box` moved out of would keep its allocation), and the drive takes the record
        // apart as it starts.
        let mut record = Some(Box::new(record));
        let held = lease.clone();
        let span = crate::trace::run_span(&key, lease.epoch, self.owner);
        let handle = tasks.set.spawn(
            async move {
                let record = *record.take().expect("taken once");
                let result = engine.drive(&lease, record, signals).await;
                if let Ok(Finish::GaveUp { .. } | Finish::Elsewhere(_)) = &result {
                    let _ = engine.store().release(&lease).await;
                }
                (key, result)
            }
            .instrument(span),
        );
        tasks.leases.insert(handle.id(), held);
    }
}
