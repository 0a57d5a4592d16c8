//! The worker's heartbeat: one renewal of all its leases per TTL/3 (see the guarantees of
//! [`super`]).
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use tether_core::{
    ids::{Epoch, OwnerId, RunKey},
    store::Lease,
    Store,
};

use super::Table;
use crate::context::Notices;

/// Renews every lease of this worker in one statement per beat and tells the drivers what
/// changed: a run missing from the answer was taken over (stand down), a flagged one is cancelled.
pub(super) async fn heartbeat(
    store: Arc<dyn Store>,
    owner: OwnerId,
    ttl: Duration,
    table: Table,
    say: Notices,
    metrics: crate::Metrics,
) {
    let mut beat = tokio::time::interval(ttl / 3);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut down_since: Option<Instant> = None;
    // Runs the store says we hold but that we no longer drive (a release that failed while the
    // store was down, a driver that stopped on an error). Renewing them forever would keep every
    // other worker away, so a run seen so in two beats in a row is released.
    let mut undriven: HashMap<RunKey, Epoch> = HashMap::new();
    loop {
        beat.tick().await;
        let asked = Instant::now();
        let renewed = store.renew_all(&owner, ttl).await;
        metrics.renewal(asked.elapsed());
        match renewed {
            Ok(held) => {
                if let Some(since) = down_since.take() {
                    tracing::warn!(
                        down_secs = since.elapsed().as_secs_f32(),
                        "state store back"
                    );
                    say(&format!(
                        "tether worker: state store back after {:.1}s; re-validated leases",
                        since.elapsed().as_secs_f32()
                    ));
                }
                let held: HashMap<RunKey, (Epoch, bool)> = held
                    .into_iter()
                    .map(|r| (r.key, (r.epoch, r.cancel_requested)))
                    .collect();
                let mut release = Vec::new();
                {
                    let table = table.lock().unwrap_or_else(|p| p.into_inner());
                    let now_undriven: HashMap<RunKey, Epoch> = held
                        .iter()
                        .filter(|(k, _)| !table.contains_key(*k))
                        .map(|(k, (e, _))| (k.clone(), *e))
                        .collect();
                    for (k, e) in &now_undriven {
                        if undriven.get(k) == Some(e) {
                            release.push(Lease {
                                key: k.clone(),
                                owner: owner.clone(),
                                epoch: *e,
                            });
                        }
                    }
                    undriven = now_undriven;
                }
                for lease in release {
                    tracing::warn!(key = %lease.key, epoch = %lease.epoch, "held but not driven: releasing");
                    say(&format!(
                        "tether worker: {}: held but not driven: releasing it",
                        lease.key
                    ));
                    let _ = store.release(&lease).await;
                }
                let table = table.lock().unwrap_or_else(|p| p.into_inner());
                // Runs claimed while the renewal was in flight are judged at the next beat: on
                // PostgreSQL the renewal's snapshot may predate their claim's commit.
                for (key, run) in table.iter().filter(|(_, run)| run.since < asked) {
                    match held.get(key) {
                        Some((epoch, cancel)) if *epoch == run.epoch => {
                            if *cancel {
                                run.signals.request_cancel();
                            }
                        }
                        // Not renewed: another owner has it (or it just finished). Drop it silently.
                        _ => {
                            tracing::info!(%key, epoch = %run.epoch, "lease not renewed: taken over");
                            run.signals.mark_lost()
                        }
                    }
                }
            }
            Err(e) => {
                if down_since.is_none() {
                    tracing::warn!(error = %e, "cannot renew leases");
                    say(&format!(
                        "tether worker: cannot renew leases ({e}); polling goes on, writes wait"
                    ));
                    down_since = Some(Instant::now());
                }
            }
        }
    }
}
