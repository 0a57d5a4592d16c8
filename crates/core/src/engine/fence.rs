//! The engine's [`Fence`]: a fenced lease renewal right before a connector creates a job.
//!
//! ## Guarantees
//! - A confirmation succeeds only if nobody has taken the run over: either the store says so
//!   now (a fenced renewal), or the intent, itself a fenced write, said so less than
//!   [`INTENT_FRESH`] ago *and* the lease was extended less than a third of the TTL ago, so at
//!   least two thirds of it are left and no claimer can take it by expiry. The second case
//!   spares `tether run` a store transaction (a commit and an fsync) right after its intent.
//!
//! ## Caveats
//! - Within [`INTENT_FRESH`] of the intent, a takeover by *liveness* (the owner's liveness
//!   signal gone although it lives, e.g. its PostgreSQL session dropped) is not seen by the
//!   confirmation; the renewal it replaces would see it, but the same race exists between any
//!   confirmation and the create itself. A look-up or wait inside `submit` that outlasts
//!   [`INTENT_FRESH`] gets the store round trip as before.
use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use async_trait::async_trait;

use super::RunSignals;
use crate::{
    connector::{Fence, Fenced},
    store::Lease,
    Store,
};

/// How recent the intent must be for a confirmation to trust it instead of asking the store.
pub(super) const INTENT_FRESH: Duration = Duration::from_millis(500);

pub(super) struct LeaseFence {
    pub(super) store: Arc<dyn Store>,
    pub(super) lease: Lease,
    pub(super) ttl: Duration,
    pub(super) signals: Arc<RunSignals>,
    /// When the intent write (fenced, so it found the lease ours) was first sent.
    pub(super) intent_sent: Instant,
}

#[async_trait]
impl Fence for LeaseFence {
    async fn confirm(&self) -> Result<(), Fenced> {
        if self.signals.is_lost() {
            return Err(Fenced::LeaseLost);
        }
        if self.intent_sent.elapsed() < INTENT_FRESH && self.signals.extended_within(self.ttl / 3) {
            return Ok(());
        }
        let sent = Instant::now();
        match self.store.renew(&self.lease, self.ttl).await {
            Ok(()) => {
                self.signals.mark_extended(sent);
                Ok(())
            }
            Err(e) if e.is_lease_lost() => {
                self.signals.mark_lost();
                Err(Fenced::LeaseLost)
            }
            Err(e) => Err(Fenced::Unconfirmed {
                reason: e.to_string(),
            }),
        }
    }

    async fn interrupted(&self) {
        self.signals.interrupted().await
    }
}
