//! # tether-store
//!
//! The durable journal behind [`tether_core::Store`]: an embedded SQLite file (the default,
//! for one machine) or a PostgreSQL database (for a fleet of workers). [`open`] picks the
//! backend from the location string.
//!
//! ## Guarantees
//! - Both backends pass the same conformance suite (`tests/conformance.rs`): fenced writes,
//!   epoch bumps on every take-over, exclusive claims, history committed with its change.
//! - Passwords never reach an error or a log line: every message names the store through
//!   [`redact`].
//! - Opening never modifies a file that is not a tether database ([`StoreError::Corrupt`]).
//!
//! ## Assumptions
//! - SQLite: the processes sharing a file are on one machine (lease expiry uses its clock).
//! - PostgreSQL: lease expiry uses the database server's clock, so workers' clocks may differ.
//!
//! ## Caveats
//! - A PostgreSQL write that fails with [`StoreError::Unavailable`] may or may not have been
//!   committed (the connection dropped mid-flight). Re-read the run before retrying; a retried
//!   `record_finished` or `release` that had in fact landed reports `LeaseLost`.
#![forbid(unsafe_code)]

mod location;
mod record;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::sync::Arc;

use location::Location;
pub use location::{default_sqlite_path, redact};
use tether_core::{
    ids::{Generation, RunKey},
    store::StoreError,
    Store,
};

/// Opens the state store at `location`: a plain path or `sqlite://PATH` (SQLite), or a
/// `postgres://` / `postgresql://` URL. Creates and migrates the schema as needed.
///
/// ```no_run
/// # async fn f() -> Result<(), tether_core::store::StoreError> {
/// let store = tether_store::open("sqlite:///tmp/tether.db").await?;
/// let runs = store.list_runs().await?;
/// # Ok(()) }
/// ```
pub async fn open(location: &str) -> Result<Arc<dyn Store>, StoreError> {
    match Location::parse(location) {
        #[cfg(feature = "sqlite")]
        Location::Sqlite(path) => Ok(Arc::new(sqlite::SqliteStore::open(path).await?)),
        #[cfg(feature = "postgres")]
        Location::Postgres(url) => Ok(Arc::new(postgres::PgStore::connect(&url).await?)),
        #[allow(unreachable_patterns)]
        _ => Err(StoreError::Open {
            location: redact(location),
            message: "this tether was built without support for this kind of store \
                      (cargo features `sqlite` / `postgres`)"
                .into(),
            source: None,
        }),
    }
}

/// `record_submitted` named a generation that is not the run's current one, although the lease
/// is still held: a caller bug (the id would be filed under the wrong submission), so nothing is
/// written. Delivered as [`StoreError::Query`] with this as the source.
#[derive(Debug, thiserror::Error)]
#[error("run {key}: cannot record an external id for generation {given}: the current generation is {current}")]
pub struct StaleGeneration {
    /// The run.
    pub key: RunKey,
    /// The generation the caller named.
    pub given: Generation,
    /// The run's current generation (`none` if no intent was recorded).
    pub current: String,
}

impl StaleGeneration {
    pub(crate) fn error(
        op: &'static str,
        key: &RunKey,
        given: Generation,
        current: Option<i64>,
    ) -> StoreError {
        StoreError::Query {
            op,
            source: Box::new(StaleGeneration {
                key: key.clone(),
                given,
                current: current.map_or_else(|| "none".to_string(), |g| g.to_string()),
            }),
        }
    }
}
