//! Opening an SQLite state file: refusing foreign files untouched, WAL, migrations.
//!
//! ## Guarantees
//! - A file that is not SQLite, or an SQLite database that is not tether's, is reported as
//!   [`StoreError::Corrupt`] before anything is written to it (no WAL switch, no tables).
//! - Concurrent openers of a new file agree: the migration runs in `BEGIN IMMEDIATE` and
//!   re-reads the schema version once it holds the write lock.
//!
//! - Read commands ([`crate::Access::ReadExisting`]) create no file and migrate nothing; a
//!   store whose `min_reader_schema` is newer than this build is refused with "upgrade tether".
//! - A new state directory is created 0700 and a new state file 0600, whatever the umask.
//! - Closing a connection does not checkpoint: the `-wal` and `-shm` files stay beside the
//!   database between processes (see `keep_wal_on_close`).
//!
//! ## Caveats
//! - The database file alone is not a copy of the store: committed writes may still be only in
//!   `tether.db-wal`. Back up with `sqlite3 tether.db .backup` or copy all three files while
//!   no tether process runs.
//!
//! ## Assumptions
//! - An empty (zero-byte) file, or an SQLite database with no tables at all, is ours to
//!   initialise: that is what `touch`ing a path or a crash during the very first open leaves.
use std::{
    io::{Read, Write},
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rusqlite::{ffi::ErrorCode, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tether_core::store::StoreError;

use super::sql;

/// The 16 bytes every SQLite 3 database file starts with.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Milliseconds since the Unix epoch, local clock (the SQLite store's lease clock).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Maps an SQLite error to the store's taxonomy: busy/locked → `Locked` (transient),
/// not-a-database/corrupt → `Corrupt`, the rest → `Query`.
pub(crate) fn map_err(op: &'static str, location: &str, e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return StoreError::Locked {
                    location: location.to_string(),
                    message: format!(
                        "{op}: gave up waiting for the write lock ({e}); another tether \
                         process is holding it, retry shortly"
                    ),
                }
            }
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
                return StoreError::Corrupt {
                    location: location.to_string(),
                    message: format!("{op}: {e}"),
                }
            }
            _ => {}
        }
    }
    StoreError::Query {
        op,
        source: Box::new(e),
    }
}

fn open_error(
    location: &str,
    message: String,
    source: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::Open {
        location: location.to_string(),
        message,
        source: Some(Box::new(source)),
    }
}

/// Checks that an existing file is an SQLite database by its header, without opening it through
/// SQLite (which would happily "open" anything and fail only later, maybe after writing).
fn check_header(path: &Path, location: &str) -> Result<(), StoreError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(open_error(location, "cannot inspect the file".into(), e)),
    };
    if meta.is_dir() {
        return Err(StoreError::Open {
            location: location.to_string(),
            message: "this is a directory; pass the path of a database file \
                      (e.g. --state DIR/tether.db)"
                .into(),
            source: None,
        });
    }
    if meta.len() == 0 {
        return Ok(());
    }
    let mut header = [0u8; 16];
    let mut f = std::fs::File::open(path)
        .map_err(|e| open_error(location, "cannot read the file".into(), e))?;
    let n = read_up_to(&mut f, &mut header)
        .map_err(|e| open_error(location, "cannot read the file".into(), e))?;
    if n < header.len() || &header != SQLITE_MAGIC {
        return Err(StoreError::Corrupt {
            location: location.to_string(),
            message: "the file is not an SQLite database (left untouched); \
                      pass --state or set TETHER_STATE to another path"
                .into(),
        });
    }
    Ok(())
}

fn read_up_to(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Refuses an SQLite database that belongs to someone else. Reads only.
fn check_ownership(conn: &Connection, location: &str) -> Result<(), StoreError> {
    let app_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| map_err("open", location, e))?;
    if app_id == sql::APPLICATION_ID {
        return Ok(());
    }
    if app_id != 0 {
        return Err(StoreError::Corrupt {
            location: location.to_string(),
            message: format!(
                "this SQLite database belongs to another application (application_id {app_id:#x}); \
                 left untouched, pass --state or set TETHER_STATE to another path"
            ),
        });
    }
    let mut stmt = conn
        .prepare(sql::TABLE_NAMES)
        .map_err(|e| map_err("open", location, e))?;
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| map_err("open", location, e))?;
    if tables.is_empty() || tables.iter().any(|t| t == "tether_meta") {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        location: location.to_string(),
        message: format!(
            "this SQLite database is not a tether state store (it has tables {} but no \
             tether_meta); left untouched, pass --state or set TETHER_STATE to another path",
            tables.join(", ")
        ),
    })
}

/// An opened connection and the schema versions before and after opening.
pub(crate) struct Opened {
    pub conn: Connection,
    pub before: i64,
    pub after: i64,
}

/// Creates the state directory 0700 and an empty state file 0600, whatever the umask, so the
/// journal (specs, outcomes) is readable by its user only. SQLite gives its `-wal`/`-shm`
/// files the mode of the main file. Existing directories and files are left as they are.
fn create_private(path: &Path, location: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .and_then(|()| {
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                })
                .map_err(|e| {
                    open_error(
                        location,
                        format!(
                            "cannot create the directory {}; pass --state or set TETHER_STATE \
                             to a writable location",
                            dir.display()
                        ),
                        e,
                    )
                })?;
        }
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        // The umask may have removed bits but never adds any: 0600 stays 0600 or less.
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(open_error(
            location,
            "cannot create the database file; pass --state or set TETHER_STATE to a writable \
             location"
                .into(),
            e,
        )),
    }
}

/// Opens an existing store for reading without creating or changing anything.
fn open_existing(
    path: &Path,
    location: &str,
    busy_timeout: Duration,
) -> Result<Opened, StoreError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(crate::no_store(location, "the file does not exist"))
        }
        Ok(m) if m.is_file() && m.len() == 0 => {
            return Err(crate::no_store(location, "the file is empty"))
        }
        _ => {}
    }
    check_header(path, location)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| open_error(location, "cannot open the database file".into(), e))?;
    conn.busy_timeout(busy_timeout)
        .map_err(|e| map_err("open", location, e))?;
    keep_wal_on_close(&conn, location)?;
    check_ownership(&conn, location)?;
    let version = current_version(&conn, location)?;
    if version == 0 {
        return Err(crate::no_store(location, "the file holds no tether tables"));
    }
    check_min_reader(&conn, location)?;
    if version < sql::LATEST_VERSION {
        return Err(crate::needs_migration(
            location,
            version,
            sql::LATEST_VERSION,
        ));
    }
    Ok(Opened {
        conn,
        before: version,
        after: version,
    })
}

/// Opens the database: for writing (creating and migrating if needed) or, with
/// `Access::ReadExisting`, read-only in effect. Blocking: call from `spawn_blocking`.
pub(crate) fn open_blocking(
    path: &Path,
    location: &str,
    busy_timeout: Duration,
    access: crate::Access,
) -> Result<Opened, StoreError> {
    if access == crate::Access::ReadExisting {
        return open_existing(path, location, busy_timeout);
    }
    // Creating an absent file first is safe: `create_new` never touches an existing one.
    create_private(path, location)?;
    check_header(path, location)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        open_error(
            location,
            "cannot open the database file for writing; pass --state or set TETHER_STATE to a \
             writable location"
                .into(),
            e,
        )
    })?;
    conn.busy_timeout(busy_timeout)
        .map_err(|e| map_err("open", location, e))?;
    keep_wal_on_close(&conn, location)?;
    check_ownership(&conn, location)?;

    // WAL lets `tether ls` read while a worker writes, and several processes share the file.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| map_err("open", location, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // E.g. a filesystem without shared memory: still correct, just less concurrent.
        // Not eprintln!: it panics when stderr is a closed pipe (`tether ls 2>&1 | head -1`).
        let _ = writeln!(
            std::io::stderr(),
            "tether: state store {location}: journal_mode is {mode}, not WAL"
        );
    }
    // FULL: a committed intent must survive a power cut, not only a process crash, or a
    // resubmission after reboot could launch a second job (the group commit lowers it to
    // NORMAL for batches of bookkeeping only, `group::durable`).
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;")
        .map_err(|e| map_err("open", location, e))?;
    migrate(conn, location)
}

/// Closing this connection neither checkpoints nor deletes the WAL. Every commit that must be
/// durable already is, in the WAL (`group::durable`), so the checkpoint on close only cost the process's
/// exit two more fsyncs, and the next process to write then had to create the WAL afresh (its
/// header and the directory fsynced): about a third of a short `tether run`'s store time.
/// SQLite's automatic checkpoint (every 1,000 pages) still bounds the WAL.
fn keep_wal_on_close(conn: &Connection, location: &str) -> Result<(), StoreError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map(|_| ())
    .map_err(|e| map_err("open", location, e))
}

/// The WAL file of the database at `path` (`tether.db` → `tether.db-wal`).
pub(crate) fn wal_path(path: &Path) -> std::path::PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    wal.into()
}

fn current_version(conn: &Connection, location: &str) -> Result<i64, StoreError> {
    let exists: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| map_err("open", location, e))?;
    if !exists {
        return Ok(0);
    }
    conn.query_row(sql::SCHEMA_VERSION, [], |r| r.get(0))
        .map_err(|e| map_err("open", location, e))
}

/// Refuses a store whose `min_reader_schema` is newer than this build understands.
fn check_min_reader(conn: &Connection, location: &str) -> Result<(), StoreError> {
    let has_meta: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tether_meta')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| map_err("open", location, e))?;
    if !has_meta {
        return Ok(());
    }
    let raw: Option<String> = conn
        .query_row(sql::MIN_READER, [], |r| r.get(0))
        .optional()
        .map_err(|e| map_err("open", location, e))?;
    let Some(raw) = raw else { return Ok(()) };
    let min: i64 = raw.trim().parse().map_err(|_| StoreError::Corrupt {
        location: location.to_string(),
        message: format!("tether_meta.min_reader_schema is not a number: {raw:?}"),
    })?;
    if min > sql::LATEST_VERSION {
        return Err(crate::needs_newer(location, min, sql::LATEST_VERSION));
    }
    Ok(())
}

fn migrate(mut conn: Connection, location: &str) -> Result<Opened, StoreError> {
    // Read first, outside a write transaction: an up-to-date store (the common case) then opens
    // without taking the write lock at all.
    let before = current_version(&conn, location)?;
    check_min_reader(&conn, location)?;
    if before >= sql::LATEST_VERSION {
        // A newer schema whose min reader version we satisfy is usable as it is.
        return Ok(Opened {
            conn,
            before,
            after: before,
        });
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| map_err("migrate", location, e))?;
    tx.execute_batch(sql::CREATE_SCHEMA_VERSION)
        .map_err(|e| map_err("migrate", location, e))?;
    // Re-read under the lock: a concurrent opener may have migrated meanwhile.
    let version = current_version(&tx, location)?;
    check_min_reader(&tx, location)?;
    for (i, step) in sql::MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.execute_batch(step)
            .map_err(|e| map_err("migrate", location, e))?;
        let v = i64::try_from(i + 1).unwrap_or(i64::MAX);
        tx.execute(sql::INSERT_SCHEMA_VERSION, rusqlite::params![v, now_ms()])
            .map_err(|e| map_err("migrate", location, e))?;
    }
    tx.execute_batch(&format!("PRAGMA application_id = {}", sql::APPLICATION_ID))
        .map_err(|e| map_err("migrate", location, e))?;
    tx.commit().map_err(|e| map_err("migrate", location, e))?;
    let after = version.max(sql::LATEST_VERSION);
    Ok(Opened {
        conn,
        before,
        after,
    })
}
