//! Reading `runs` rows one by one: what this build cannot decode becomes a quarantined entry
//! instead of an error that would fail a whole listing or claim.
use rusqlite::{Connection, OptionalExtension, Row};
use tether_core::store::{QuarantinedRun, RunRecord, StoreError};

use super::{
    open::{map_err, now_ms},
    sql,
};
use crate::record::{self, RunRow};

pub(crate) fn row_to_run(r: &Row<'_>, now: i64) -> rusqlite::Result<RunRow> {
    let owner: Option<String> = r.get(13)?;
    let exp: Option<i64> = r.get(14)?;
    Ok(RunRow {
        key: r.get(0)?,
        kind: r.get(1)?,
        spec: r.get(2)?,
        spec_name: r.get(3)?,
        spec_hash: r.get(4)?,
        phase: r.get(5)?,
        generation: r.get(6)?,
        tag: r.get(7)?,
        shape: r.get(8)?,
        external_id: r.get(9)?,
        outcome: r.get(10)?,
        cancel_requested: r.get(11)?,
        epoch: r.get(12)?,
        lease_alive: owner.is_some() && exp.is_some_and(|e| e > now),
        owner,
        lease_expires_at_ms: exp,
        queued: r.get(15)?,
        created_at_ms: r.get(16)?,
        updated_at_ms: r.get(17)?,
        placement: r.get(18)?,
        store_id: r.get(19)?,
        base_dir: r.get(20)?,
        instance_base: r.get(21)?,
    })
}

/// A `runs` row (`GET_RUN`/`LIST_RUNS` columns) as this build reads it.
#[allow(clippy::large_enum_variant)] // short-lived, one per row read
pub(crate) enum Decoded {
    Run(RunRecord),
    Quarantined(QuarantinedRun),
}

/// Decodes one row; never fails: what cannot be read becomes a quarantined entry.
pub(crate) fn decode_row(r: &Row<'_>, now: i64, loc: &str) -> Decoded {
    let key: String = r
        .get(0)
        .unwrap_or_else(|e| format!("<unreadable key: {e}>"));
    match r.get::<_, Option<String>>(22) {
        Ok(Some(reason)) => return Decoded::Quarantined(QuarantinedRun::new(key, reason)),
        Ok(None) => {}
        Err(e) => {
            return Decoded::Quarantined(QuarantinedRun::new(
                key,
                format!("quarantine column unreadable: {e}"),
            ))
        }
    }
    let row = match row_to_run(r, now) {
        Ok(row) => row,
        Err(e) => {
            return Decoded::Quarantined(QuarantinedRun::new(
                key,
                format!("a column cannot be read: {e}"),
            ))
        }
    };
    match row.into_record(loc) {
        Ok(rec) => Decoded::Run(rec),
        Err(e) => Decoded::Quarantined(QuarantinedRun::new(key, record::reason(e))),
    }
}

/// Reads one row as this build understands it (`None`: no such key).
pub(crate) fn read_run(
    conn: &Connection,
    op: &'static str,
    loc: &str,
    key: &str,
) -> Result<Option<Decoded>, StoreError> {
    let now = now_ms();
    conn.prepare_cached(sql::GET_RUN)
        .and_then(|mut s| {
            s.query_row([key], |r| Ok(decode_row(r, now, loc)))
                .optional()
        })
        .map_err(|e| map_err(op, loc, e))
}

pub(crate) fn get_run(
    conn: &Connection,
    op: &'static str,
    loc: &str,
    key: &str,
) -> Result<Option<RunRecord>, StoreError> {
    match read_run(conn, op, loc, key)? {
        None => Ok(None),
        Some(Decoded::Run(rec)) => Ok(Some(rec)),
        Some(Decoded::Quarantined(q)) => Err(record::quarantined_error(loc, &q)),
    }
}

/// Every row, decoded one by one (newest first).
pub(crate) fn scan(c: &Connection, loc: &str) -> Result<Vec<Decoded>, StoreError> {
    let now = now_ms();
    c.prepare_cached(sql::LIST_RUNS)
        .and_then(|mut s| s.query_map([], |r| Ok(decode_row(r, now, loc)))?.collect())
        .map_err(|e| map_err("list_runs", loc, e))
}
