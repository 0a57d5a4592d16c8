//! The engine's [`Fence`]: a fenced lease renewal right before a connector creates a job.
use std::{sync::Arc, time::Duration};

use async_trait::async_trait;

use super::RunSignals;
use crate::{
    connector::{Fence, Fenced},
    store::Lease,
    Store,
};

pub(super) struct LeaseFence {
    pub(super) store: Arc<dyn Store>,
    pub(super) lease: Lease,
    pub(super) ttl: Duration,
    pub(super) signals: Arc<RunSignals>,
}

#[async_trait]
impl Fence for LeaseFence {
    async fn confirm(&self) -> Result<(), Fenced> {
        if self.signals.is_lost() {
            return Err(Fenced::LeaseLost);
        }
        match self.store.renew(&self.lease, self.ttl).await {
            Ok(()) => Ok(()),
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
