//! The embedded SQLite store (the default).
//!
//! ## Guarantees
//! - Every write is one `BEGIN IMMEDIATE` transaction: the fence check, the change and its
//!   history entry commit together or not at all, and two processes never interleave inside
//!   one (SQLite has a single writer). That is also what makes [`Store::claim`] exclusive:
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
mod open;
mod rows;
mod sql;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use tether_core::{
    ids::{Epoch, ExternalId, Generation, OwnerId, RunKey, StoreId},
    journal::{Outcome, Submission},
    placement::Placement,
    store::{
        Acquire, ClaimFilter, Created, HistoryEntry, Lease, NewRun, QuarantinedRun, Renewed,
        RunRecord, Store, StoreError, SubmissionRecord,
    },
};

pub use self::busy::{BusyNotifier, SqliteOptions, BUSY_SLICE};
use self::{
    busy::retry_busy,
    open::{map_err, now_ms},
    rows::{get_run, read_run, scan, Decoded},
};
use crate::record::{
    self, encode_outcome, encode_placement, takeover_reason, ttl_ms, SubmissionRow,
};

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
                }),
            },
            versions,
        ))
    }

    /// Runs `f` on the connection in the blocking pool.
    async fn with_conn<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &str) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
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

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction, committed only if `f` succeeds. While
    /// another process holds the write lock, retries (the transaction rolled back, so nothing
    /// was written) up to the busy timeout, telling `on_busy`. The lock is held only for
    /// this one short transaction.
    async fn write<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Transaction<'_>, &str) -> Result<T, StoreError> + Send + 'static,
    {
        let options = self.inner.options.clone();
        self.with_conn(op, move |conn, loc| {
            retry_busy(
                op,
                loc,
                options.busy_timeout,
                options.on_busy.as_ref(),
                || {
                    let tx = conn
                        .transaction_with_behavior(TransactionBehavior::Immediate)
                        .map_err(|e| map_err(op, loc, e))?;
                    let out = f(&tx, loc)?;
                    crate::fault::maybe_stop_holding_write_lock(op);
                    tx.commit().map_err(|e| map_err(op, loc, e))?;
                    Ok(out)
                },
            )
        })
        .await
    }
}

fn must_get_run(
    conn: &Connection,
    op: &'static str,
    loc: &str,
    key: &RunKey,
) -> Result<RunRecord, StoreError> {
    get_run(conn, op, loc, key.as_str())?.ok_or_else(|| StoreError::NotFound { key: key.clone() })
}

fn insert_history(
    tx: &Connection,
    op: &'static str,
    loc: &str,
    key: &str,
    entry: &HistoryEntry,
) -> Result<(), StoreError> {
    let at = if entry.at_ms == 0 {
        now_ms()
    } else {
        entry.at_ms
    };
    tx.prepare_cached(sql::INSERT_HISTORY)
        .and_then(|mut s| {
            s.execute(params![
                key,
                at,
                entry.epoch.0,
                entry.generation.map(|g| i64::from(g.0)),
                entry.decision,
                entry.reason
            ])
        })
        .map_err(|e| map_err(op, loc, e))?;
    Ok(())
}

/// Executes a fenced statement; zero rows means the lease is gone.
fn fenced_execute(
    tx: &Connection,
    op: &'static str,
    loc: &str,
    lease: &Lease,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<(), StoreError> {
    let n = tx
        .prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(|e| map_err(op, loc, e))?;
    if n == 0 {
        return Err(lease_lost(lease));
    }
    Ok(())
}

fn lease_lost(lease: &Lease) -> StoreError {
    StoreError::LeaseLost {
        key: lease.key.clone(),
        epoch: lease.epoch,
    }
}

/// Fenced update returning the run's generation (`None` row → lease lost).
fn fenced_generation(
    tx: &Connection,
    op: &'static str,
    loc: &str,
    lease: &Lease,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Option<i64>, StoreError> {
    let row: Option<Option<i64>> = tx
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row(params, |r| r.get(0)).optional())
        .map_err(|e| map_err(op, loc, e))?;
    row.ok_or_else(|| lease_lost(lease))
}

fn entry(epoch: Epoch, generation: Option<i64>, decision: &str, reason: String) -> HistoryEntry {
    HistoryEntry {
        at_ms: 0,
        epoch,
        generation: generation
            .and_then(|g| u32::try_from(g).ok())
            .map(Generation),
        decision: decision.to_string(),
        reason,
    }
}

/// Takes the lease of one run (inside the caller's write transaction) and logs it.
#[allow(clippy::too_many_arguments)]
fn take_lease(
    tx: &Connection,
    op: &'static str,
    loc: &str,
    key: &str,
    old_epoch: i64,
    prev_owner: Option<&str>,
    prev_exp: Option<i64>,
    generation: Option<i64>,
    owner: &OwnerId,
    ttl: Duration,
    decision: &str,
) -> Result<Epoch, StoreError> {
    let now = now_ms();
    let n = tx
        .prepare_cached(sql::TAKE_LEASE)
        .and_then(|mut s| {
            s.execute(params![
                key,
                old_epoch,
                owner.0,
                now.saturating_add(ttl_ms(ttl)),
                now
            ])
        })
        .map_err(|e| map_err(op, loc, e))?;
    if n != 1 {
        // Cannot happen under the write lock; refuse rather than hand out a phantom lease.
        return Err(StoreError::Query {
            op,
            source: "lease changed under the write lock".into(),
        });
    }
    let epoch = Epoch(old_epoch + 1);
    let reason = takeover_reason(&owner.0, prev_owner, prev_exp, now);
    insert_history(
        tx,
        op,
        loc,
        key,
        &entry(epoch, generation, decision, reason),
    )?;
    Ok(epoch)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_run(&self, new: &NewRun) -> Result<Created, StoreError> {
        let new = new.clone();
        self.write("create_run", move |tx, loc| {
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
                        now_ms()
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
        self.with_conn("list_runs", move |c, loc| {
            Ok(scan(c, loc)?
                .into_iter()
                .filter_map(|d| match d {
                    Decoded::Run(r) => Some(r),
                    Decoded::Quarantined(_) => None,
                })
                .collect())
        })
        .await
    }

    async fn quarantined(&self) -> Result<Vec<QuarantinedRun>, StoreError> {
        self.with_conn("quarantined", move |c, loc| {
            Ok(scan(c, loc)?
                .into_iter()
                .filter_map(|d| match d {
                    Decoded::Quarantined(q) => Some(q),
                    Decoded::Run(_) => None,
                })
                .collect())
        })
        .await
    }

    async fn history(&self, key: &RunKey) -> Result<Vec<HistoryEntry>, StoreError> {
        let key = key.clone();
        self.with_conn("history", move |c, loc| {
            let rows: Vec<(i64, i64, Option<i64>, String, String)> = c
                .prepare_cached(sql::HISTORY)
                .and_then(|mut s| {
                    s.query_map([key.as_str()], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })?
                    .collect()
                })
                .map_err(|e| map_err("history", loc, e))?;
            rows.into_iter()
                .map(|(at_ms, epoch, generation, decision, reason)| {
                    Ok(HistoryEntry {
                        at_ms,
                        epoch: Epoch(epoch),
                        generation: generation
                            .map(|g| record::parse_generation(loc, g))
                            .transpose()?,
                        decision,
                        reason,
                    })
                })
                .collect()
        })
        .await
    }

    async fn submissions(&self, key: &RunKey) -> Result<Vec<SubmissionRecord>, StoreError> {
        let key = key.clone();
        self.with_conn("submissions", move |c, loc| {
            let rows: Vec<SubmissionRow> = c
                .prepare_cached(sql::SUBMISSIONS)
                .and_then(|mut s| {
                    s.query_map([key.as_str()], |r| {
                        Ok(SubmissionRow {
                            generation: r.get(0)?,
                            tag: r.get(1)?,
                            shape: r.get(2)?,
                            external_id: r.get(3)?,
                            outcome: r.get(4)?,
                            intent_at_ms: r.get(5)?,
                        })
                    })?
                    .collect()
                })
                .map_err(|e| map_err("submissions", loc, e))?;
            rows.into_iter().map(|r| r.into_record(loc)).collect()
        })
        .await
    }

    async fn acquire(
        &self,
        key: &RunKey,
        owner: &OwnerId,
        ttl: Duration,
    ) -> Result<Acquire, StoreError> {
        let (key, owner) = (key.clone(), owner.clone());
        self.write("acquire", move |tx, loc| {
            type State = (Option<String>, Option<i64>, String, i64, Option<i64>);
            let state: Option<State> = tx
                .prepare_cached(sql::LEASE_STATE)
                .and_then(|mut s| {
                    s.query_row([key.as_str()], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .optional()
                })
                .map_err(|e| map_err("acquire", loc, e))?;
            let (prev_owner, prev_exp, phase, epoch, generation) =
                state.ok_or_else(|| StoreError::NotFound { key: key.clone() })?;
            let free = prev_owner.is_none() || prev_exp.is_none_or(|e| e <= now_ms());
            if phase == record::PHASE_FINISHED || !free {
                return Ok(Acquire::Held(must_get_run(tx, "acquire", loc, &key)?));
            }
            let epoch = take_lease(
                tx,
                "acquire",
                loc,
                key.as_str(),
                epoch,
                prev_owner.as_deref(),
                prev_exp,
                generation,
                &owner,
                ttl,
                "lease-acquired",
            )?;
            let rec = must_get_run(tx, "acquire", loc, &key)?;
            Ok(Acquire::Acquired(
                Lease {
                    key: key.clone(),
                    owner: owner.clone(),
                    epoch,
                },
                rec,
            ))
        })
        .await
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<(), StoreError> {
        let lease = lease.clone();
        self.write("renew", move |tx, loc| {
            let exp = now_ms().saturating_add(ttl_ms(ttl));
            fenced_execute(
                tx,
                "renew",
                loc,
                &lease,
                sql::RENEW,
                params![lease.key.as_str(), lease.epoch.0, lease.owner.0, exp],
            )
        })
        .await
    }

    async fn renew_all(&self, owner: &OwnerId, ttl: Duration) -> Result<Vec<Renewed>, StoreError> {
        let owner = owner.clone();
        self.write("renew_all", move |tx, loc| {
            let exp = now_ms().saturating_add(ttl_ms(ttl));
            let rows: Vec<(String, i64, bool)> = tx
                .prepare_cached(sql::RENEW_ALL)
                .and_then(|mut s| {
                    s.query_map(params![owner.0, exp], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?
                    .collect()
                })
                .map_err(|e| map_err("renew_all", loc, e))?;
            rows.into_iter()
                .map(|(k, e, c)| {
                    Ok(Renewed {
                        key: record::parse_key(loc, k)?,
                        epoch: Epoch(e),
                        cancel_requested: c,
                    })
                })
                .collect()
        })
        .await
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        let lease = lease.clone();
        self.write("release", move |tx, loc| {
            let generation = fenced_generation(
                tx,
                "release",
                loc,
                &lease,
                sql::RELEASE,
                params![lease.key.as_str(), lease.epoch.0, lease.owner.0, now_ms()],
            )?;
            let reason = format!("lease released by {}", lease.owner);
            insert_history(
                tx,
                "release",
                loc,
                lease.key.as_str(),
                &entry(lease.epoch, generation, "released", reason),
            )
        })
        .await
    }

    async fn claim(
        &self,
        owner: &OwnerId,
        ttl: Duration,
        limit: usize,
        filter: &ClaimFilter,
    ) -> Result<Vec<(Lease, RunRecord)>, StoreError> {
        let owner = owner.clone();
        let host = filter.host.clone();
        let kinds = filter
            .kinds
            .as_ref()
            .map(|k| serde_json::Value::from(k.clone()).to_string());
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.write("claim", move |tx, loc| {
            type Cand = (String, Option<String>, Option<i64>, i64, Option<i64>);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let cands: Vec<Cand> = tx
                .prepare_cached(sql::CLAIM_CANDIDATES)
                .and_then(|mut s| {
                    s.query_map(params![now_ms(), limit, host, kinds], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })?
                    .collect()
                })
                .map_err(|e| map_err("claim", loc, e))?;
            let mut out = Vec::with_capacity(cands.len());
            for (key, prev_owner, prev_exp, epoch, generation) in cands {
                // Decode before taking: a row this build cannot read is set aside (and
                // committed with this claim) instead of failing the claim for every run.
                if let Some(Decoded::Quarantined(q)) = read_run(tx, "claim", loc, &key)? {
                    tx.prepare_cached(sql::QUARANTINE)
                        .and_then(|mut s| s.execute(params![key, q.reason, now_ms()]))
                        .map_err(|e| map_err("claim", loc, e))?;
                    continue;
                }
                let epoch = take_lease(
                    tx,
                    "claim",
                    loc,
                    &key,
                    epoch,
                    prev_owner.as_deref(),
                    prev_exp,
                    generation,
                    &owner,
                    ttl,
                    "claimed",
                )?;
                let key = record::parse_key(loc, key)?;
                let rec = must_get_run(tx, "claim", loc, &key)?;
                out.push((
                    Lease {
                        key,
                        owner: owner.clone(),
                        epoch,
                    },
                    rec,
                ));
            }
            Ok(out)
        })
        .await
    }

    async fn record_intent(
        &self,
        lease: &Lease,
        submission: &Submission,
        previous: Option<&Outcome>,
        placement: Option<&Placement>,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        let (lease, sub, entry) = (lease.clone(), submission.clone(), entry.clone());
        let previous = previous
            .map(|o| encode_outcome("record_intent", o))
            .transpose()?;
        let host = placement.map(|p| p.host.clone());
        let placement = placement
            .map(|p| encode_placement("record_intent", p))
            .transpose()?;
        self.write("record_intent", move |tx, loc| {
            let op = "record_intent";
            let now = now_ms();
            let k = lease.key.as_str();
            let g = i64::from(sub.generation.0);
            fenced_execute(
                tx,
                op,
                loc,
                &lease,
                sql::RECORD_INTENT,
                params![
                    k,
                    lease.epoch.0,
                    lease.owner.0,
                    g,
                    sub.tag.as_str(),
                    sub.shape.as_str(),
                    now,
                    placement,
                    host
                ],
            )?;
            tx.prepare_cached(sql::UPSERT_SUBMISSION)
                .and_then(|mut s| {
                    s.execute(params![k, g, sub.tag.as_str(), sub.shape.as_str(), now])
                })
                .map_err(|e| map_err(op, loc, e))?;
            if let Some(previous) = &previous {
                tx.prepare_cached(sql::PREVIOUS_OUTCOME)
                    .and_then(|mut s| s.execute(params![k, g, previous, now]))
                    .map_err(|e| map_err(op, loc, e))?;
            }
            insert_history(tx, op, loc, k, &entry)
        })
        .await
    }

    async fn record_submitted(
        &self,
        lease: &Lease,
        generation: Generation,
        external_id: &ExternalId,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        let (lease, id, entry) = (lease.clone(), external_id.clone(), entry.clone());
        self.write("record_submitted", move |tx, loc| {
            let op = "record_submitted";
            let now = now_ms();
            let k = lease.key.as_str();
            let g = i64::from(generation.0);
            let n = tx
                .prepare_cached(sql::RECORD_SUBMITTED)
                .and_then(|mut s| s.execute(params![k, lease.epoch.0, lease.owner.0, g, id.0, now]))
                .map_err(|e| map_err(op, loc, e))?;
            if n == 0 {
                // Tell a lost lease (stand down) from a stale generation (a bug in the caller).
                let current: Option<Option<i64>> = tx
                    .prepare_cached(sql::FENCE)
                    .and_then(|mut s| {
                        s.query_row(params![k, lease.epoch.0, lease.owner.0], |r| r.get(0))
                            .optional()
                    })
                    .map_err(|e| map_err(op, loc, e))?;
                return Err(match current {
                    None => lease_lost(&lease),
                    Some(current) => {
                        crate::StaleGeneration::error(op, &lease.key, generation, current)
                    }
                });
            }
            tx.prepare_cached(sql::SUBMISSION_SUBMITTED)
                .and_then(|mut s| s.execute(params![k, g, id.0, now]))
                .map_err(|e| map_err(op, loc, e))?;
            insert_history(tx, op, loc, k, &entry)
        })
        .await
    }

    async fn record_finished(
        &self,
        lease: &Lease,
        outcome: &Outcome,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        let (lease, entry) = (lease.clone(), entry.clone());
        let outcome = encode_outcome("record_finished", outcome)?;
        self.write("record_finished", move |tx, loc| {
            let op = "record_finished";
            let now = now_ms();
            let k = lease.key.as_str();
            let generation = fenced_generation(
                tx,
                op,
                loc,
                &lease,
                sql::RECORD_FINISHED,
                params![k, lease.epoch.0, lease.owner.0, outcome, now],
            )?;
            if let Some(g) = generation {
                tx.prepare_cached(sql::SUBMISSION_FINISHED)
                    .and_then(|mut s| s.execute(params![k, g, outcome, now]))
                    .map_err(|e| map_err(op, loc, e))?;
            }
            insert_history(tx, op, loc, k, &entry)
        })
        .await
    }

    async fn append_history(&self, lease: &Lease, entry: &HistoryEntry) -> Result<(), StoreError> {
        let (lease, entry) = (lease.clone(), entry.clone());
        self.write("append_history", move |tx, loc| {
            let op = "append_history";
            let k = lease.key.as_str();
            fenced_generation(
                tx,
                op,
                loc,
                &lease,
                sql::FENCE,
                params![k, lease.epoch.0, lease.owner.0],
            )?;
            insert_history(tx, op, loc, k, &entry)
        })
        .await
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
}
