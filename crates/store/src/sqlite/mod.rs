//! The embedded SQLite store (the default).
//!
//! ## Guarantees
//! - Every write runs under the write lock of a `BEGIN IMMEDIATE` transaction, in a savepoint
//!   of its own (writes waiting together share the transaction: see [`group`]): the fence
//!   check, the change and its history entry commit together or not at all, and two processes
//!   never interleave inside one (SQLite has a single writer). That is also what makes [`Store::claim`] exclusive:
//!   candidates are picked and taken under the write lock, so no run goes to two claimers.
//! - A writer that waits longer than the busy timeout (10 s by default) gets
//!   [`StoreError::Locked`], which is transient: retry later.
//! - A file that is not a tether database is refused untouched (see `open`).
//!
//! ## Assumptions
//! - All processes sharing a file run on one machine (SQLite locking over NFS is unreliable)
//!   and their clocks agree, because lease expiry uses the local clock in milliseconds.
//!
//! ## Caveats
//! - One connection per store, behind a mutex: operations of one process are serialised. That
//!   is plenty for a local machine; a fleet of workers belongs on PostgreSQL.
//! - `request_cancel` on a key that does not exist returns [`StoreError::NotFound`] (so a
//!   typo in `tether cancel` is reported); on a finished run it returns `Ok(false)`.
//! - `record_submitted` for a generation that is not the current one, while the lease is
//!   still valid, returns [`StoreError::Query`] wrapping [`crate::StaleGeneration`].
mod busy;
#[cfg(test)]
mod commit_count_tests;
mod fenced;
mod group;
#[cfg(test)]
mod group_tests;
mod journal;
mod leases;
mod liveness;
mod open;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod read_threads_tests;
mod reads;
mod remove;
pub(crate) mod rerun;
mod rows;
mod sql;
#[cfg(test)]
mod wal_trim_tests;
mod workers;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use rusqlite::{params, Connection, Transaction};
use tether_core::{
    ids::{Epoch, ExternalId, Generation, OwnerId, RunKey, StoreId},
    journal::{Outcome, Submission},
    placement::Placement,
    store::{
        Acquire, ClaimFilter, Created, HistoryEntry, Lease, Liveness, NewRun, QuarantinedRun,
        Remove, RemovedRun, Renewed, Rerun, RerunSpec, RunPage, RunQuery, RunRecord, RunState,
        Store, StoreError, SubmissionRecord,
    },
};

pub use self::busy::{BusyNotifier, SqliteOptions, BUSY_SLICE};
use self::{
    busy::retry_busy,
    fenced::{entry, insert_history, must_get_run},
    open::{map_err, now_ms},
    rows::get_run,
};
use crate::record;

/// A tether state store in one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    store_id: StoreId,
    options: SqliteOptions,
    /// The path as shown in messages.
    location: String,
    /// The database file (its owners' lock files live next to it).
    path: PathBuf,
    /// Writes waiting to be committed together (see [`group`]).
    queue: group::Queue,
    /// Owners whose liveness lock this process holds but whose `owner_locks` row is not
    /// written yet: their first `acquire` or `claim` writes it in its own transaction.
    unregistered: Mutex<std::collections::HashSet<String>>,
    /// Opened for writing: leaves a short WAL behind when dropped ([`Inner::drop`]).
    writer: bool,
    /// Reads allowed a blocking thread at once ([`READERS`]).
    readers: Arc<tokio::sync::Semaphore>,
}

/// Reads waiting for the one connection on a thread of their own, at most. The others wait
/// as tasks: every read used to take a blocking thread and park it on the connection's mutex
/// (up to 512 in a worker starting thousands of runs), each thread keeping its stack and the
/// allocator pages it filled. The bound leaves threads free for the commit's leader too. How
/// much memory the blocking threads held is measured with the front end's pool settings
/// (`tether`'s `main.rs`): this bound alone did not lower the 100,000-run bench's RSS.
const READERS: usize = 4;

/// A WAL longer than this is checkpointed and truncated when a writing process closes the
/// store (~250 pages; a `tether run` writes ~35).
const WAL_TRIM_BYTES: u64 = 1 << 20;

/// Closing does not checkpoint (`open::keep_wal_on_close`), but a long WAL costs the next
/// process: the first connection of a process rebuilds the WAL's index from every frame in it
/// (SQLite resets `-shm` when no other process has the file open), so with SQLite's automatic
/// checkpoint at 1,000 pages each short `tether run` read ~500 frames (~2 MiB) on average
/// before its first statement. A writer that leaves more than [`WAL_TRIM_BYTES`] checkpoints
/// and truncates it on its way out, without waiting: if another process holds the file the
/// checkpoint is skipped (that process, or the next, will do it).
impl Drop for Inner {
    fn drop(&mut self) {
        if !self.writer {
            return;
        }
        let wal = std::fs::metadata(open::wal_path(&self.path)).map(|m| m.len());
        if wal.is_ok_and(|len| len > WAL_TRIM_BYTES) {
            let conn = self.conn.get_mut().unwrap_or_else(|p| p.into_inner());
            let _ = conn.busy_timeout(Duration::ZERO);
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.inner.location)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the store at `path` with default options.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens the store at `path` for writing (creating and migrating if needed).
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<SqliteStore, StoreError> {
        Ok(Self::open_mode(path, options, crate::Access::Write)
            .await?
            .0)
    }

    /// Opens the store at `path` as `access` says; also returns the schema versions.
    pub(crate) async fn open_mode(
        path: impl AsRef<Path>,
        options: SqliteOptions,
        access: crate::Access,
    ) -> Result<(SqliteStore, crate::Migrated), StoreError> {
        let path: PathBuf = path.as_ref().to_path_buf();
        let db_path = path.clone();
        let location = path.display().to_string();
        let loc = location.clone();
        let opts = options.clone();
        let opened = tokio::task::spawn_blocking(move || {
            // Switching a brand-new file to WAL while another process creates it too can fail
            // with SQLITE_BUSY at once, without the busy handler; and a process frozen inside
            // a migration holds the write lock. Opening is idempotent: retry all of it.
            let slice = opts.busy_timeout.min(BUSY_SLICE);
            retry_busy(
                "open",
                &loc,
                opts.busy_timeout,
                opts.on_busy.as_ref(),
                || open::open_blocking(&path, &loc, slice, access),
            )
        })
        .await
        .map_err(|e| StoreError::Query {
            op: "open",
            source: Box::new(e),
        })??;
        let store_id = opened
            .conn
            .query_row(sql::STORE_ID, [], |r| r.get::<_, String>(0))
            .map_err(|e| map_err("open", &location, e))
            .and_then(|id| {
                StoreId::new(id).map_err(|e| StoreError::Corrupt {
                    location: location.clone(),
                    message: e.to_string(),
                })
            })?;
        let versions = crate::Migrated {
            before: opened.before,
            after: opened.after,
        };
        Ok((
            SqliteStore {
                inner: Arc::new(Inner {
                    conn: Mutex::new(opened.conn),
                    options,
                    store_id,
                    location,
                    path: db_path,
                    queue: group::Queue::default(),
                    unregistered: Mutex::default(),
                    writer: access == crate::Access::Write,
                    readers: Arc::new(tokio::sync::Semaphore::new(READERS)),
                }),
            },
            versions,
        ))
    }

    /// Directory of the owners' liveness lock files.
    fn owners_dir(&self) -> PathBuf {
        liveness::dir_of(&self.inner.path)
    }

    /// Runs `f` on the connection in the blocking pool.
    async fn with_conn<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &str) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        // Never closed: a permit always comes. Held by the thread, even if this call is dropped.
        let permit = self.inner.readers.clone().acquire_owned().await;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // A panic while holding the lock leaves no open transaction behind (rusqlite rolls
            // back on drop), so a poisoned mutex still guards a usable connection.
            let mut conn = inner.conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn, &inner.location)
        })
        .await
        .map_err(|e| StoreError::Query {
            op,
            source: Box::new(e),
        })?
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction, committed only if `f` succeeds, and
    /// answers once it committed. Writes waiting at the same time share the transaction, each
    /// in its own savepoint ([`group`]: one fsync per batch, none for a batch of bookkeeping,
    /// [`group::durable`]). While another process holds the
    /// write lock, retries (the transaction rolled back, so nothing was written) up to the busy
    /// timeout, telling `on_busy`. The lock is held only for this one short transaction.
    async fn write<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Transaction<'_>, &str) -> Result<T, StoreError> + Send + 'static,
    {
        group::write(&self.inner, op, group::durable(op), f).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn hold_liveness(&self, owner: &OwnerId) -> Result<Option<Liveness>, StoreError> {
        self.hold_liveness_impl(owner).await
    }

    async fn worker_beat(&self, b: &tether_core::store::WorkerBeat) -> Result<(), StoreError> {
        let b = b.clone();
        self.with_conn("worker_beat", move |c, loc| workers::beat(c, loc, &b))
            .await
    }

    async fn remove_worker(&self, owner: &OwnerId) -> Result<(), StoreError> {
        let o = owner.clone();
        self.with_conn("remove_worker", move |c, loc| workers::remove(c, loc, &o))
            .await
    }

    async fn list_workers(&self) -> Result<Vec<tether_core::store::WorkerRecord>, StoreError> {
        self.with_conn("list_workers", |c, loc| workers::list(c, loc))
            .await
    }

    async fn prune_workers(
        &self,
        older_than: Duration,
        dry_run: bool,
    ) -> Result<Vec<tether_core::store::WorkerRecord>, StoreError> {
        self.write("prune_workers", move |tx, loc| {
            workers::prune(tx, loc, older_than, dry_run)
        })
        .await
    }

    async fn create_run(&self, new: &NewRun) -> Result<Created, StoreError> {
        let new = new.clone();
        // Only a queued submission is acknowledged before anything else is written.
        group::write(&self.inner, "create_run", new.queued, move |tx, loc| {
            let n = tx
                .prepare_cached(sql::INSERT_RUN)
                .and_then(|mut s| {
                    s.execute(params![
                        new.key.as_str(),
                        new.kind,
                        new.spec,
                        new.spec_name,
                        new.spec_hash,
                        new.queued,
                        now_ms(),
                        new.base_dir
                    ])
                })
                .map_err(|e| map_err("create_run", loc, e))?;
            let rec = must_get_run(tx, "create_run", loc, &new.key)?;
            Ok(if n == 1 {
                Created::New(rec)
            } else {
                Created::Existing(rec)
            })
        })
        .await
    }

    async fn get_run(&self, key: &RunKey) -> Result<Option<RunRecord>, StoreError> {
        let key = key.clone();
        self.with_conn("get_run", move |c, loc| {
            get_run(c, "get_run", loc, key.as_str())
        })
        .await
    }

    async fn list_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.list_runs_impl().await
    }

    async fn list_summaries(&self, query: &RunQuery) -> Result<RunPage, StoreError> {
        self.list_summaries_impl(query).await
    }

    async fn count_runs(&self) -> Result<Vec<(RunState, String, u64)>, StoreError> {
        self.count_runs_impl().await
    }

    async fn any_unfinished(&self, filter: &ClaimFilter) -> Result<bool, StoreError> {
        self.any_unfinished_impl(filter).await
    }

    async fn quarantined(&self) -> Result<Vec<QuarantinedRun>, StoreError> {
        self.quarantined_impl().await
    }

    async fn history(&self, key: &RunKey) -> Result<Vec<HistoryEntry>, StoreError> {
        self.history_impl(key).await
    }

    async fn submissions(&self, key: &RunKey) -> Result<Vec<SubmissionRecord>, StoreError> {
        self.submissions_impl(key).await
    }

    async fn acquire(
        &self,
        key: &RunKey,
        owner: &OwnerId,
        ttl: Duration,
    ) -> Result<Acquire, StoreError> {
        self.acquire_impl(key, owner, ttl).await
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<(), StoreError> {
        self.renew_impl(lease, ttl).await
    }

    async fn renew_all(&self, owner: &OwnerId, ttl: Duration) -> Result<Vec<Renewed>, StoreError> {
        self.renew_all_impl(owner, ttl).await
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        self.release_impl(lease).await
    }

    async fn claim(
        &self,
        owner: &OwnerId,
        ttl: Duration,
        limit: usize,
        filter: &ClaimFilter,
    ) -> Result<Vec<(Lease, RunRecord)>, StoreError> {
        self.claim_impl(owner, ttl, limit, filter).await
    }

    async fn record_intent(
        &self,
        lease: &Lease,
        submission: &Submission,
        previous: Option<&Outcome>,
        placement: Option<&Placement>,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        self.record_intent_impl(lease, submission, previous, placement, entry)
            .await
    }

    async fn record_submitted(
        &self,
        lease: &Lease,
        generation: Generation,
        external_id: &ExternalId,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        self.record_submitted_impl(lease, generation, external_id, entry)
            .await
    }

    async fn record_finished(
        &self,
        lease: &Lease,
        outcome: &Outcome,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        self.record_finished_impl(lease, outcome, entry).await
    }

    async fn append_history(&self, lease: &Lease, entry: &HistoryEntry) -> Result<(), StoreError> {
        self.append_history_impl(lease, entry).await
    }

    async fn request_cancel(&self, key: &RunKey) -> Result<bool, StoreError> {
        let key = key.clone();
        self.write("request_cancel", move |tx, loc| {
            let op = "request_cancel";
            let n = tx
                .prepare_cached(sql::REQUEST_CANCEL)
                .and_then(|mut s| s.execute(params![key.as_str(), now_ms()]))
                .map_err(|e| map_err(op, loc, e))?;
            if n > 0 {
                return Ok(true);
            }
            let exists = tx
                .prepare_cached(sql::RUN_EXISTS)
                .and_then(|mut s| s.exists([key.as_str()]))
                .map_err(|e| map_err(op, loc, e))?;
            if exists {
                Ok(false)
            } else {
                Err(StoreError::NotFound { key: key.clone() })
            }
        })
        .await
    }

    async fn forget_host(&self, host: &str, reason: &str) -> Result<Vec<RunKey>, StoreError> {
        let (host, reason) = (host.to_string(), reason.to_string());
        self.write("forget_host", move |tx, loc| {
            let op = "forget_host";
            let rows: Vec<(String, i64, Option<i64>)> = tx
                .prepare_cached(sql::FORGET_HOST)
                .and_then(|mut s| {
                    s.query_map(params![host, now_ms()], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?
                    .collect()
                })
                .map_err(|e| map_err(op, loc, e))?;
            let mut keys = Vec::with_capacity(rows.len());
            for (key, epoch, generation) in rows {
                let e = entry(Epoch(epoch), generation, "host-forgotten", reason.clone());
                insert_history(tx, op, loc, &key, &e)?;
                keys.push(record::parse_key(loc, key)?);
            }
            Ok(keys)
        })
        .await
    }

    fn store_id(&self) -> &StoreId {
        &self.inner.store_id
    }

    async fn remove_run(&self, key: &RunKey) -> Result<Remove, StoreError> {
        let key = key.clone();
        self.write("remove_run", move |tx, loc| {
            remove::remove_run(tx, loc, &key)
        })
        .await
    }

    async fn prune(&self, before_ms: i64, dry_run: bool) -> Result<Vec<RemovedRun>, StoreError> {
        self.write("prune", move |tx, loc| {
            remove::prune(tx, loc, before_ms, dry_run)
        })
        .await
    }

    async fn rerun(&self, key: &RunKey, spec: Option<&RerunSpec>) -> Result<Rerun, StoreError> {
        let (key, spec) = (key.clone(), spec.cloned());
        self.write("rerun", move |tx, loc| {
            rerun::rerun(tx, loc, &key, spec.as_ref())
        })
        .await
    }
}
