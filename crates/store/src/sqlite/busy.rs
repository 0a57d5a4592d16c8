//! Waiting for SQLite's write lock: options, and the retry that tells the user it waits.
//!
//! ## Guarantees
//! - Only attempts that wrote nothing are retried (`Locked` comes from a transaction that was
//!   rolled back, or from an open that is idempotent).
//! - A wait is announced once per operation through [`SqliteOptions::on_busy`].
use std::{sync::Arc, time::Duration};

use tether_core::store::StoreError;

/// Called with a status line when an operation finds the store busy and keeps retrying.
pub type BusyNotifier = Arc<dyn Fn(&str) + Send + Sync>;

/// Options of the SQLite store.
#[derive(Clone)]
pub struct SqliteOptions {
    /// How long an operation keeps retrying while another process holds the write lock,
    /// before [`StoreError::Locked`]. SQLite's own busy handler waits in slices of at most
    /// [`BUSY_SLICE`] in between, so a notification comes early.
    pub busy_timeout: Duration,
    /// Told once per operation that has to wait ("state store busy, retrying…").
    pub on_busy: Option<BusyNotifier>,
}

/// One wait of SQLite's busy handler; `busy_timeout` is spent in slices of this.
pub const BUSY_SLICE: Duration = Duration::from_secs(2);

impl std::fmt::Debug for SqliteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteOptions")
            .field("busy_timeout", &self.busy_timeout)
            .field("on_busy", &self.on_busy.is_some())
            .finish()
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(60),
            on_busy: None,
        }
    }
}

/// Runs `attempt` until it succeeds, fails for another reason than a busy store, or
/// `patience` is spent; tells `on_busy` once when it starts waiting. Only for attempts that
/// write nothing when they fail with `Locked` (a rolled-back transaction, a failed open).
pub(crate) fn retry_busy<T>(
    op: &str,
    location: &str,
    patience: Duration,
    on_busy: Option<&BusyNotifier>,
    mut attempt: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let deadline = std::time::Instant::now() + patience;
    let mut told = false;
    loop {
        match attempt() {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                if !told {
                    told = true;
                    if let Some(f) = on_busy {
                        f(&format!(
                            "state store {location} busy ({op}: another tether process holds \
                             the write lock), retrying for up to {}s…",
                            patience.as_secs()
                        ));
                    }
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            other => return other,
        }
    }
}
