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

mod fault;
mod location;
mod record;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::sync::Arc;

pub use location::{default_sqlite_path, redact, Location, LocationError, ACCEPTED_FORMS};
use tether_core::{
    ids::{Generation, RunKey},
    store::StoreError,
    Store,
};

/// How [`open_with`] treats a store that does not exist yet or has an older schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Write commands: create the store if missing and migrate it to this build's schema.
    Write,
    /// Read commands (`status`, `ls`, `logs`, `history`): never create or migrate anything.
    /// A missing store is "no state store at …"; an older schema asks for `tether migrate`.
    ReadExisting,
}

/// Options of [`open_with`].
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// SQLite options (busy patience, busy notifications).
    #[cfg(feature = "sqlite")]
    pub sqlite: sqlite::SqliteOptions,
    /// PostgreSQL options (timeouts, pool size).
    #[cfg(feature = "postgres")]
    pub postgres: postgres::PgOptions,
}

/// Schema versions around a [`migrate`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// Before (0: no store yet).
    pub before: i64,
    /// After.
    pub after: i64,
}

fn parse(location: &str) -> Result<Location, StoreError> {
    Location::parse(location).map_err(|e| StoreError::Open {
        location: e.shown.clone(),
        message: e.to_string(),
        source: Some(Box::new(e)),
    })
}

fn unsupported(location: &str) -> StoreError {
    StoreError::Open {
        location: redact(location),
        message: "this tether was built without support for this kind of store \
                  (cargo features `sqlite` / `postgres`)"
            .into(),
        source: None,
    }
}

/// Opens the state store at `location` for writing: a plain path or `sqlite://PATH` /
/// `sqlite:PATH` (SQLite), or a `postgres://` / `postgresql://` URL. Creates and migrates the
/// schema as needed. Anything else is refused ([`LocationError`] inside [`StoreError::Open`]).
///
/// ```no_run
/// # async fn f() -> Result<(), tether_core::store::StoreError> {
/// let store = tether_store::open("sqlite:///tmp/tether.db").await?;
/// let runs = store.list_runs().await?;
/// # Ok(()) }
/// ```
pub async fn open(location: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(location, Access::Write, &OpenOptions::default()).await
}

/// Opens an existing, up-to-date store without writing anything (no file, no table, no
/// migration): for read commands.
pub async fn open_existing(location: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(location, Access::ReadExisting, &OpenOptions::default()).await
}

/// Opens the store at `location` as `access` says.
pub async fn open_with(
    location: &str,
    access: Access,
    options: &OpenOptions,
) -> Result<Arc<dyn Store>, StoreError> {
    let _ = (access, options);
    match parse(location)? {
        #[cfg(feature = "sqlite")]
        Location::Sqlite(path) => Ok(Arc::new(
            sqlite::SqliteStore::open_mode(path, options.sqlite.clone(), access)
                .await?
                .0,
        )),
        #[cfg(feature = "postgres")]
        Location::Postgres(url) => Ok(Arc::new(
            postgres::PgStore::connect_mode(&url, options.postgres.clone(), access)
                .await?
                .0,
        )),
        #[allow(unreachable_patterns)]
        _ => Err(unsupported(location)),
    }
}

/// Creates or migrates the store at `location` (`tether migrate`); returns the schema versions
/// before and after.
pub async fn migrate(location: &str, options: &OpenOptions) -> Result<Migrated, StoreError> {
    let _ = options;
    match parse(location)? {
        #[cfg(feature = "sqlite")]
        Location::Sqlite(path) => {
            Ok(
                sqlite::SqliteStore::open_mode(path, options.sqlite.clone(), Access::Write)
                    .await?
                    .1,
            )
        }
        #[cfg(feature = "postgres")]
        Location::Postgres(url) => {
            Ok(
                postgres::PgStore::connect_mode(&url, options.postgres.clone(), Access::Write)
                    .await?
                    .1,
            )
        }
        #[allow(unreachable_patterns)]
        _ => Err(unsupported(location)),
    }
}

/// The message of a store whose schema needs a newer tether (`min_reader_schema` in
/// `tether_meta` is above what this build understands).
pub(crate) fn needs_newer(location: &str, min_reader: i64, understood: i64) -> StoreError {
    StoreError::Open {
        location: location.to_string(),
        message: format!(
            "this state store needs tether >= schema {min_reader} (this tether understands \
             schema {understood}); upgrade tether"
        ),
        source: None,
    }
}

/// "No state store at …" for read commands on a location holding no tether store.
pub(crate) fn no_store(location: &str, detail: &str) -> StoreError {
    StoreError::Open {
        location: location.to_string(),
        message: format!(
            "no state store at {location} ({detail}); run something first, pass --state or \
             set TETHER_STATE to the store you mean"
        ),
        source: None,
    }
}

/// A read command on a store with an older schema: reading it would need a migration.
pub(crate) fn needs_migration(location: &str, version: i64, latest: i64) -> StoreError {
    StoreError::Open {
        location: location.to_string(),
        message: format!(
            "the state store has schema version {version}, older than this tether's ({latest}); \
             read commands never migrate: run `tether migrate` (or any write command) first"
        ),
        source: None,
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
