//! Keeping one lease alive, and the signals an owner reacts to.
//!
//! ## Mutation testing
//! Every viable mutant of this module is caught by `crates/core/tests/lease_keeper.rs` (paused
//! tokio time) or the engine tests; `RunSignals::is_lost` → `true` makes them time out (every
//! sleep returns at once). None is left alive (cargo-mutants 27.1, see README).
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::{sync::Notify, task::JoinHandle};

use crate::{store::Lease, Store};

/// Flags raised for a run being driven: lease lost (stand down) or cancel requested.
#[derive(Debug, Default)]
pub struct RunSignals {
    lost: AtomicBool,
    cancel: AtomicBool,
    notify: Notify,
}

impl RunSignals {
    /// Fresh signals, nothing raised.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    /// The lease is gone: the driver stops without touching the job.
    pub fn mark_lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
    /// Whether the lease is gone.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
    /// `tether cancel` asked for the job to be killed.
    pub fn request_cancel(&self) {
        if !self.cancel.swap(true, Ordering::SeqCst) {
            self.notify.notify_waiters();
        }
    }
    /// Whether a cancel was requested.
    pub fn cancel_requested(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
    /// Resolves once the lease is lost or a cancel is requested.
    pub async fn interrupted(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_lost() || self.cancel_requested() {
                return;
            }
            notified.await;
        }
    }
    /// Sleeps for `d`, waking early when a signal is raised.
    pub async fn sleep(&self, d: Duration) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.is_lost() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = notified => {}
        }
    }
}

/// Renews one lease every TTL/3 in a background task, and watches for cancel requests.
///
/// Transient store errors are retried at the next beat; a `LeaseLost` answer raises
/// [`RunSignals::mark_lost`]. Used by a single `tether run`; workers renew all their leases in one
/// statement instead.
pub struct LeaseKeeper {
    signals: Arc<RunSignals>,
    stop: Arc<Notify>,
    handle: JoinHandle<()>,
}

impl LeaseKeeper {
    /// Starts renewing `lease`.
    pub fn start(store: Arc<dyn Store>, lease: Lease, ttl: Duration) -> Self {
        let signals = RunSignals::new();
        let stop = Arc::new(Notify::new());
        let (sig, stp) = (signals.clone(), stop.clone());
        let handle = tokio::spawn(async move {
            let beat = ttl / 3;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(beat) => {}
                    _ = stp.notified() => return,
                }
                match store.renew(&lease, ttl).await {
                    Ok(()) => {}
                    Err(e) if e.is_lease_lost() => {
                        sig.mark_lost();
                        return;
                    }
                    Err(_) => continue, // transient: the next beat tries again
                }
                if let Ok(Some(run)) = store.get_run(&lease.key).await {
                    if run.journal.cancel_requested {
                        sig.request_cancel();
                    }
                }
            }
        });
        LeaseKeeper {
            signals,
            stop,
            handle,
        }
    }

    /// The signals of the kept run.
    pub fn signals(&self) -> Arc<RunSignals> {
        self.signals.clone()
    }

    /// Stops renewing (the lease itself is left as it is).
    pub async fn stop(self) {
        self.stop.notify_one();
        let _ = self.handle.await;
    }
}
