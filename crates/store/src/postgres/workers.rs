//! The worker registry on PostgreSQL (see [`tether_core::store::WorkerBeat`]): one statement
//! per call, times from the server's clock (`tether_now_ms()`).
use std::time::Duration;

use tether_core::{
    ids::OwnerId,
    store::{StoreError, WorkerBeat, WorkerRecord},
};
use tokio_postgres::Row;

use super::{decode_err, PgStore};

/// $1 owner, $2 host, $3 pid, $4 concurrency, $5 version. `started_at_ms` is kept on conflict.
const BEAT: &str = "INSERT INTO workers \
     (owner, host, pid, started_at_ms, heartbeat_at_ms, concurrency, version) \
     VALUES ($1::text, $2::text, $3::bigint, tether_now_ms(), tether_now_ms(), $4::bigint, $5::text) \
     ON CONFLICT (owner) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, \
     heartbeat_at_ms = EXCLUDED.heartbeat_at_ms, concurrency = EXCLUDED.concurrency, \
     version = EXCLUDED.version";

/// $1 owner.
const REMOVE: &str = "DELETE FROM workers WHERE owner = $1::text";

const LIST: &str = "SELECT owner, host, pid, started_at_ms, heartbeat_at_ms, concurrency, \
     version, tether_now_ms() - heartbeat_at_ms FROM workers ORDER BY owner COLLATE \"C\"";

/// $1 older than (ms), $2 dry run. The CTE's `RETURNING` gives the rows as they were.
const PRUNE: &str = "WITH old AS (SELECT owner FROM workers \
       WHERE heartbeat_at_ms < tether_now_ms() - $1::bigint FOR UPDATE), \
     d AS (DELETE FROM workers WHERE NOT $2::boolean AND owner IN (SELECT owner FROM old)) \
     SELECT owner, host, pid, started_at_ms, heartbeat_at_ms, concurrency, version, \
       tether_now_ms() - heartbeat_at_ms \
     FROM workers WHERE owner IN (SELECT owner FROM old) ORDER BY owner COLLATE \"C\"";

fn decode(op: &'static str, r: &Row) -> Result<WorkerRecord, StoreError> {
    let get = |e| decode_err(op, e);
    let owner: String = r.try_get(0).map_err(get)?;
    let pid: i64 = r.try_get(2).map_err(get)?;
    let concurrency: i64 = r.try_get(5).map_err(get)?;
    Ok(WorkerRecord::new(
        WorkerBeat::new(
            OwnerId(owner),
            r.try_get::<_, String>(1).map_err(get)?,
            u32::try_from(pid).unwrap_or(0),
            u32::try_from(concurrency).unwrap_or(0),
            r.try_get::<_, String>(6).map_err(get)?,
        ),
        r.try_get(3).map_err(get)?,
        r.try_get(4).map_err(get)?,
        r.try_get(7).map_err(get)?,
    ))
}

impl PgStore {
    pub(super) async fn worker_beat_impl(&self, beat: &WorkerBeat) -> Result<(), StoreError> {
        self.pool
            .execute(
                "worker_beat",
                BEAT,
                &[
                    &beat.owner.0,
                    &beat.host,
                    &i64::from(beat.pid),
                    &i64::from(beat.concurrency),
                    &beat.version,
                ],
            )
            .await
            .map(drop)
    }

    pub(super) async fn remove_worker_impl(&self, owner: &OwnerId) -> Result<(), StoreError> {
        self.pool
            .execute("remove_worker", REMOVE, &[&owner.0])
            .await
            .map(drop)
    }

    pub(super) async fn list_workers_impl(&self) -> Result<Vec<WorkerRecord>, StoreError> {
        let op = "list_workers";
        let rows = self.pool.query(op, LIST, &[]).await?;
        rows.iter().map(|r| decode(op, r)).collect()
    }

    pub(super) async fn prune_workers_impl(
        &self,
        older_than: Duration,
        dry_run: bool,
    ) -> Result<Vec<WorkerRecord>, StoreError> {
        let op = "prune_workers";
        let ms = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
        let rows = self.pool.query(op, PRUNE, &[&ms, &dry_run]).await?;
        rows.iter().map(|r| decode(op, r)).collect()
    }
}
