//! The worker registry on SQLite (see [`tether_core::store::WorkerBeat`]): one statement per
//! call (a prune: one transaction), times from this machine's clock, which is the store's.
use std::time::Duration;

use rusqlite::{params, Connection, Row};
use tether_core::{
    ids::OwnerId,
    store::{StoreError, WorkerBeat, WorkerRecord},
};

use super::open::{map_err, now_ms};

/// ?1 owner, ?2 host, ?3 pid, ?4 now, ?5 concurrency, ?6 version. `started_at_ms` is kept on
/// conflict.
const BEAT: &str = "INSERT INTO workers \
     (owner, host, pid, started_at_ms, heartbeat_at_ms, concurrency, version) \
     VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6) \
     ON CONFLICT (owner) DO UPDATE SET host = excluded.host, pid = excluded.pid, \
     heartbeat_at_ms = excluded.heartbeat_at_ms, concurrency = excluded.concurrency, \
     version = excluded.version";

/// ?1 now.
const LIST: &str = "SELECT owner, host, pid, started_at_ms, heartbeat_at_ms, concurrency, \
     version, ?1 - heartbeat_at_ms FROM workers ORDER BY owner";

/// ?1 now, ?2 the oldest beat kept.
const OLD: &str = "SELECT owner, host, pid, started_at_ms, heartbeat_at_ms, concurrency, \
     version, ?1 - heartbeat_at_ms FROM workers WHERE heartbeat_at_ms < ?2 ORDER BY owner";

/// ?1 the oldest beat kept.
const DELETE_OLD: &str = "DELETE FROM workers WHERE heartbeat_at_ms < ?1";

fn decode(r: &Row<'_>) -> rusqlite::Result<WorkerRecord> {
    Ok(WorkerRecord::new(
        WorkerBeat::new(
            OwnerId(r.get(0)?),
            r.get::<_, String>(1)?,
            u32::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            u32::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
            r.get::<_, String>(6)?,
        ),
        r.get(3)?,
        r.get(4)?,
        r.get(7)?,
    ))
}

pub(super) fn beat(c: &Connection, loc: &str, b: &WorkerBeat) -> Result<(), StoreError> {
    c.prepare_cached(BEAT)
        .and_then(|mut s| {
            s.execute(params![
                b.owner.0,
                b.host,
                i64::from(b.pid),
                now_ms(),
                i64::from(b.concurrency),
                b.version
            ])
        })
        .map(drop)
        .map_err(|e| map_err("worker_beat", loc, e))
}

pub(super) fn remove(c: &Connection, loc: &str, owner: &OwnerId) -> Result<(), StoreError> {
    c.prepare_cached("DELETE FROM workers WHERE owner = ?1")
        .and_then(|mut s| s.execute([&owner.0]))
        .map(drop)
        .map_err(|e| map_err("remove_worker", loc, e))
}

pub(super) fn list(c: &Connection, loc: &str) -> Result<Vec<WorkerRecord>, StoreError> {
    c.prepare_cached(LIST)
        .and_then(|mut s| s.query_map([now_ms()], decode)?.collect())
        .map_err(|e| map_err("list_workers", loc, e))
}

pub(super) fn prune(
    c: &Connection,
    loc: &str,
    older_than: Duration,
    dry_run: bool,
) -> Result<Vec<WorkerRecord>, StoreError> {
    let op = "prune_workers";
    let now = now_ms();
    let oldest = now.saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
    let old: Vec<WorkerRecord> = c
        .prepare_cached(OLD)
        .and_then(|mut s| s.query_map(params![now, oldest], decode)?.collect())
        .map_err(|e| map_err(op, loc, e))?;
    if !dry_run {
        c.execute(DELETE_OLD, [oldest])
            .map_err(|e| map_err(op, loc, e))?;
    }
    Ok(old)
}
