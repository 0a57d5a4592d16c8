//! The PostgreSQL store, for fleets of workers on several machines.
//!
//! ## Guarantees
//! - Every operation is a single SQL statement (the `sql` module says why), hence atomic: a
//!   fenced change, its submission row and its history entry commit together or not at all.
//! - [`Store::claim`] locks candidates with `FOR UPDATE SKIP LOCKED` and re-checks them after
//!   any wait, so concurrent claimers (in one process or many) never get the same run.
//! - Lease expiry is judged by the database server's clock (`now()`), so workers whose clocks
//!   disagree still agree on who holds what.
//! - When the server goes away, calls fail with [`StoreError::Unavailable`] (transient) within
//!   the connect/query timeouts, never panic or hang; once it is back the store reconnects.
//!
//! ## Assumptions
//! - The URL names an existing database the user may create tables in. Migrations take an
//!   advisory lock, so any number of processes may open a fresh database at once.
//! - The `public`-schema search path (or whichever the URL's user has) holds only tether's
//!   tables of these names; a database with a `runs` table but no `tether_meta` is refused.
//!
//! ## Caveats
//! - A statement cut off by an outage may or may not have committed; see the crate docs.
//! - `request_cancel` on an absent key returns [`StoreError::NotFound`]; on a finished run
//!   `Ok(false)`. A stale generation in `record_submitted` yields [`crate::StaleGeneration`].
mod journal;
mod leases;
mod liveness;
mod migrate;
mod notify;
#[cfg(test)]
mod plan_tests;
mod pool;
pub mod scratch;
#[macro_use]
mod sql;
mod reads;
mod remove;
mod rerun;
pub mod tls;
mod workers;

use std::time::Duration;

use async_trait::async_trait;
pub use leases::RENEW_CHUNK_ROWS;
use migrate::migrate;
pub use pool::PgOptions;
use pool::{connect, Pool};
use tether_core::{
    ids::{ExternalId, Generation, OwnerId, RunKey, StoreId},
    journal::{Outcome, Submission},
    placement::Placement,
    store::{
        Acquire, ClaimFilter, ClaimWakeups, Created, HistoryEntry, Lease, Liveness, NewRun,
        QuarantinedRun, Remove, RemovedRun, Renewed, Rerun, RerunSpec, RunPage, RunQuery,
        RunRecord, RunState, Store, StoreError, SubmissionRecord,
    },
};
use tokio_postgres::Row;

use crate::{
    record::{self, RunRow},
    redact,
};

/// A tether state store in a PostgreSQL database.
pub struct PgStore {
    pool: Pool,
    store_id: StoreId,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.pool.location())
            .finish()
    }
}

fn decode_err(op: &'static str, e: tokio_postgres::Error) -> StoreError {
    StoreError::Query {
        op,
        source: Box::new(e),
    }
}

fn row_to_run(r: &Row) -> Result<RunRow, tokio_postgres::Error> {
    Ok(RunRow {
        key: r.try_get(0)?,
        kind: r.try_get(1)?,
        spec: r.try_get(2)?,
        spec_name: r.try_get(3)?,
        spec_hash: r.try_get(4)?,
        phase: r.try_get(5)?,
        generation: r.try_get(6)?,
        tag: r.try_get(7)?,
        shape: r.try_get(8)?,
        external_id: r.try_get(9)?,
        outcome: r.try_get(10)?,
        cancel_requested: r.try_get(11)?,
        epoch: r.try_get(12)?,
        owner: r.try_get(13)?,
        lease_expires_at_ms: r.try_get(14)?,
        queued: r.try_get(15)?,
        created_at_ms: r.try_get(16)?,
        updated_at_ms: r.try_get(17)?,
        lease_alive: r.try_get(18)?,
        placement: r.try_get(20)?,
        store_id: r.try_get(21)?,
        base_dir: r.try_get(22)?,
        instance_base: r.try_get(23)?,
    })
}

/// The bound on one renewal: well below a third of the TTL (the renewal period), so a hung
/// renewal fails, and the next one is tried, before the lease can expire.
fn renewal_timeout(ttl: Duration) -> Duration {
    (ttl / 5).max(Duration::from_millis(100))
}

fn lease_lost(lease: &Lease) -> StoreError {
    StoreError::LeaseLost {
        key: lease.key.clone(),
        epoch: lease.epoch,
    }
}

fn generation_param(entry: &HistoryEntry) -> Option<i64> {
    entry.generation.map(|g| i64::from(g.0))
}

impl PgStore {
    /// Runs an owner write that reports how many runs it changed; zero means the lease's epoch
    /// is no longer current, which every owner write turns into `LeaseLost`.
    async fn fenced(
        &self,
        lease: &Lease,
        op: &'static str,
        sql: &'static str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<(), StoreError> {
        match self.pool.count(op, sql, params).await? {
            0 => Err(lease_lost(lease)),
            _ => Ok(()),
        }
    }
    /// Connects with default options and migrates the schema.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        Self::connect_with(url, PgOptions::default()).await
    }

    /// Connects and migrates the schema.
    pub async fn connect_with(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
        Ok(Self::connect_mode(url, options, crate::Access::Write)
            .await?
            .0)
    }

    /// Connects (TLS as `sslmode` says) and, for `Access::Write`, migrates the schema; also
    /// returns the schema versions before and after.
    pub(crate) async fn connect_mode(
        url: &str,
        options: PgOptions,
        access: crate::Access,
    ) -> Result<(PgStore, crate::Migrated), StoreError> {
        let location = redact(url);
        let tls::Target {
            mut config, tls, ..
        } = tls::target(url, &location)?;
        config.connect_timeout(options.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("tether");
        }
        let mut first = connect(&config, &tls, options.connect_timeout, "open", &location).await?;
        let versions = tokio::time::timeout(
            options.query_timeout,
            migrate(&mut first, &location, access),
        )
        .await
        .map_err(|_| StoreError::Unavailable {
            op: "migrate",
            message: format!(
                "migrating {location} took longer than {:?}",
                options.query_timeout
            ),
        })??;
        let store_id = first
            .query_one(sql::STORE_ID, &[])
            .await
            .and_then(|r| r.try_get::<_, String>(0))
            .map_err(|e| decode_err("open", e))
            .and_then(|id| {
                StoreId::new(id).map_err(|e| StoreError::Corrupt {
                    location: location.clone(),
                    message: e.to_string(),
                })
            })?;
        Ok((
            PgStore {
                pool: Pool::new(config, tls, options, location, first),
                store_id,
            },
            versions,
        ))
    }

    /// Whether this store's connection is TLS-encrypted, as the server sees it
    /// (`pg_stat_ssl`). For diagnostics and tests.
    pub async fn connection_encrypted(&self) -> Result<bool, StoreError> {
        let op = "connection_encrypted";
        let row = self.pool.query_opt(op, sql::SSL_IN_USE, &[]).await?;
        match row {
            Some(r) => r.try_get(0).map_err(|e| decode_err(op, e)),
            None => Ok(false),
        }
    }

    fn loc(&self) -> &str {
        self.pool.location()
    }

    /// Decodes a row of `run_columns!`: a run, or why this build cannot read it.
    fn decode(&self, r: &Row) -> Result<RunRecord, QuarantinedRun> {
        let key: String = r
            .try_get(0)
            .unwrap_or_else(|e| format!("<unreadable key: {e}>"));
        match r.try_get::<_, Option<String>>(19) {
            Ok(Some(reason)) => return Err(QuarantinedRun::new(key, reason)),
            Ok(None) => {}
            Err(e) => {
                return Err(QuarantinedRun::new(
                    key,
                    format!("quarantine column unreadable: {e}"),
                ))
            }
        }
        let row = row_to_run(r).map_err(|e| {
            QuarantinedRun::new(key.clone(), format!("a column cannot be read: {e}"))
        })?;
        row.into_record(self.loc())
            .map_err(|e| QuarantinedRun::new(key, record::reason(e)))
    }

    fn run(&self, r: &Row) -> Result<RunRecord, StoreError> {
        self.decode(r)
            .map_err(|q| record::quarantined_error(self.loc(), &q))
    }

    async fn get(&self, op: &'static str, key: &RunKey) -> Result<Option<RunRecord>, StoreError> {
        let row = self
            .pool
            .query_opt(op, sql::GET_RUN, &[&key.as_str()])
            .await?;
        row.map(|r| self.run(&r)).transpose()
    }

    async fn must_get(&self, op: &'static str, key: &RunKey) -> Result<RunRecord, StoreError> {
        self.get(op, key)
            .await?
            .ok_or_else(|| StoreError::NotFound { key: key.clone() })
    }
}

#[async_trait]
impl Store for PgStore {
    async fn worker_beat(&self, beat: &tether_core::store::WorkerBeat) -> Result<(), StoreError> {
        self.worker_beat_impl(beat).await
    }

    async fn remove_worker(&self, owner: &OwnerId) -> Result<(), StoreError> {
        self.remove_worker_impl(owner).await
    }

    async fn list_workers(&self) -> Result<Vec<tether_core::store::WorkerRecord>, StoreError> {
        self.list_workers_impl().await
    }

    async fn prune_workers(
        &self,
        older_than: Duration,
        dry_run: bool,
    ) -> Result<Vec<tether_core::store::WorkerRecord>, StoreError> {
        self.prune_workers_impl(older_than, dry_run).await
    }

    async fn hold_liveness(&self, owner: &OwnerId) -> Result<Option<Liveness>, StoreError> {
        self.hold_liveness_impl(owner).await
    }

    async fn claim_wakeups(&self) -> Result<Option<ClaimWakeups>, StoreError> {
        self.claim_wakeups_impl().await
    }

    async fn create_run(&self, new: &NewRun) -> Result<Created, StoreError> {
        let op = "create_run";
        let row = self
            .pool
            .query_opt(
                op,
                sql::INSERT_RUN,
                &[
                    &new.key.as_str(),
                    &new.kind,
                    &new.spec,
                    &new.spec_name,
                    &new.spec_hash,
                    &new.queued,
                    &new.base_dir,
                ],
            )
            .await?;
        match row {
            Some(r) => Ok(Created::New(self.run(&r)?)),
            // Read in a new statement: a concurrent creator's row may be newer than our snapshot.
            None => Ok(Created::Existing(self.must_get(op, &new.key).await?)),
        }
    }

    async fn get_run(&self, key: &RunKey) -> Result<Option<RunRecord>, StoreError> {
        self.get("get_run", key).await
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
        let op = "request_cancel";
        if self
            .pool
            .execute(op, sql::REQUEST_CANCEL, &[&key.as_str()])
            .await?
            > 0
        {
            return Ok(true);
        }
        match self
            .pool
            .query_opt(op, sql::RUN_EXISTS, &[&key.as_str()])
            .await?
        {
            Some(_) => Ok(false),
            None => Err(StoreError::NotFound { key: key.clone() }),
        }
    }

    async fn forget_host(&self, host: &str, reason: &str) -> Result<Vec<RunKey>, StoreError> {
        let op = "forget_host";
        let rows = self
            .pool
            .query(op, sql::FORGET_HOST, &[&host, &reason])
            .await?;
        rows.iter()
            .map(|r| {
                let key: String = r.try_get(0).map_err(|e| decode_err(op, e))?;
                crate::record::parse_key(self.loc(), key)
            })
            .collect()
    }

    fn store_id(&self) -> &StoreId {
        &self.store_id
    }

    async fn remove_run(&self, key: &RunKey) -> Result<Remove, StoreError> {
        self.remove_run_impl(key).await
    }

    async fn prune(&self, before_ms: i64, dry_run: bool) -> Result<Vec<RemovedRun>, StoreError> {
        self.prune_impl(before_ms, dry_run).await
    }

    async fn rerun(&self, key: &RunKey, spec: Option<&RerunSpec>) -> Result<Rerun, StoreError> {
        self.rerun_run(key, spec).await
    }
}
