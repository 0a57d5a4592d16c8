//! The worker's row in the store's worker registry (see [`tether_core::store::WorkerBeat`]):
//! written at start and at every beat (TTL/3, the renewal's pace), removed on a clean stop.
//!
//! ## Guarantees
//! - One upsert per beat, in a task of its own beside the lease renewal: a slow or failing
//!   registry write never delays a renewal, and the registry is never read to decide anything.
//!
//! ## Caveats
//! - A killed worker leaves its row: its heartbeat ages, the fleet view calls it gone after
//!   [`crate::view::GONE_AFTER_TTLS`] lease TTLs, and `tether prune` removes it.
use std::{sync::Arc, time::Duration};

use tether_core::{ids::OwnerId, store::WorkerBeat, Store};

/// What this process says of itself as `owner`.
pub(super) fn beat_of(owner: &OwnerId, concurrency: usize) -> WorkerBeat {
    WorkerBeat::new(
        owner.clone(),
        tether_connectors::local::placement::this_host().host,
        std::process::id(),
        u32::try_from(concurrency).unwrap_or(u32::MAX),
        env!("CARGO_PKG_VERSION"),
    )
}

/// Beats every `ttl / 3` until aborted (the first beat at once).
pub(super) async fn beat(store: Arc<dyn Store>, beat: WorkerBeat, ttl: Duration) {
    let mut tick = tokio::time::interval(ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        match store.worker_beat(&beat).await {
            Ok(()) => failing = false,
            // Said once per outage: the renewal reports the store's state already.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "cannot write the worker registry row");
            }
            Err(_) => {}
        }
    }
}

/// Removes the row on a clean stop (a failure only leaves it to age and be pruned).
pub(super) async fn leave(store: &dyn Store, owner: &OwnerId) {
    if let Err(e) = store.remove_worker(owner).await {
        tracing::warn!(error = %e, "cannot remove the worker registry row; it ages out");
    }
}
