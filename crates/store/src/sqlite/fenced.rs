//! The pieces every SQLite write shares: the fence check, history rows, taking a lease.
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use tether_core::{
    ids::{Epoch, Generation, OwnerId, RunKey},
    store::{HistoryEntry, Lease, RunRecord, StoreError},
};

use super::{
    open::{map_err, now_ms},
    rows::get_run,
    sql,
};
use crate::record::{takeover_reason, ttl_ms};

pub(super) fn must_get_run(
    conn: &Connection,
    op: &'static str,
    loc: &str,
    key: &RunKey,
) -> Result<RunRecord, StoreError> {
    get_run(conn, op, loc, key.as_str())?.ok_or_else(|| StoreError::NotFound { key: key.clone() })
}

pub(super) fn insert_history(
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
                entry.decision.as_str(),
                entry.reason
            ])
        })
        .map_err(|e| map_err(op, loc, e))?;
    Ok(())
}

/// Executes a fenced statement; zero rows means the lease is gone.
pub(super) fn fenced_execute(
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

pub(super) fn lease_lost(lease: &Lease) -> StoreError {
    StoreError::LeaseLost {
        key: lease.key.clone(),
        epoch: lease.epoch,
    }
}

/// Fenced update returning the run's generation (`None` row → lease lost).
pub(super) fn fenced_generation(
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

pub(super) fn entry(
    epoch: Epoch,
    generation: Option<i64>,
    decision: &str,
    reason: String,
) -> HistoryEntry {
    HistoryEntry {
        at_ms: 0,
        epoch,
        generation: generation
            .and_then(|g| u32::try_from(g).ok())
            .map(Generation),
        decision: decision.into(),
        reason,
    }
}

/// Takes the lease of one run (inside the caller's write transaction) and logs it.
#[allow(clippy::too_many_arguments)]
pub(super) fn take_lease(
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
