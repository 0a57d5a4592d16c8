//! `Store::rerun` for SQLite: a finished run becomes a fresh instance of its key.
//!
//! ## Guarantees
//! - Check, reset and history entry happen in one `BEGIN IMMEDIATE` transaction: a run that
//!   is not finished, or whose lease is alive, is never touched.
//! - The generation column is kept: the fresh instance submits the generation after it, so its
//!   tags differ from every tag of the earlier instance (a lookup by tag cannot adopt an old job).
use rusqlite::{params, Transaction};
use tether_core::{
    ids::RunKey,
    journal::Phase,
    store::{HistoryEntry, Rerun, RerunSpec, StoreError},
};

use super::{get_run, insert_history, open::map_err, open::now_ms};
use crate::record::rerun_reason as reason;

/// ?1 key, ?2 now, ?3 kind, ?4 spec, ?5 spec_name, ?6 spec_hash (NULL: keep the stored spec).
const RERUN: &str = "UPDATE runs
    SET phase = 'empty', outcome = NULL, cancel_requested = 0, owner = NULL,
        lease_expires_at_ms = NULL, kind = COALESCE(?3, kind), spec = COALESCE(?4, spec),
        spec_name = COALESCE(?5, spec_name), spec_hash = COALESCE(?6, spec_hash),
        placement = NULL, placement_host = NULL, instance_base = generation, updated_at_ms = ?2
    WHERE key = ?1 AND phase = 'finished'
      AND (owner IS NULL OR lease_expires_at_ms IS NULL OR lease_expires_at_ms <= ?2)";

pub(super) fn rerun(
    tx: &Transaction<'_>,
    loc: &str,
    key: &RunKey,
    spec: Option<&RerunSpec>,
) -> Result<Rerun, StoreError> {
    let op = "rerun";
    let Some(before) = get_run(tx, op, loc, key.as_str())? else {
        return Err(StoreError::NotFound { key: key.clone() });
    };
    let now = now_ms();
    let previous = match &before.journal.phase {
        Phase::Finished { outcome } => outcome.label(),
        _ => return Ok(Rerun::NotFinished(before)),
    };
    let n = tx
        .prepare_cached(RERUN)
        .and_then(|mut s| {
            s.execute(params![
                key.as_str(),
                now,
                spec.map(|s| s.kind.as_str()),
                spec.map(|s| s.spec.as_str()),
                spec.map(|s| s.spec_name.as_str()),
                spec.map(|s| s.spec_hash.as_str()),
            ])
        })
        .map_err(|e| map_err(op, loc, e))?;
    if n == 0 {
        return Ok(Rerun::NotFinished(before));
    }
    insert_history(
        tx,
        op,
        loc,
        key.as_str(),
        &HistoryEntry {
            at_ms: now,
            epoch: before.epoch,
            generation: before.last_generation,
            decision: "rerun".into(),
            reason: reason(&previous, spec),
        },
    )?;
    get_run(tx, op, loc, key.as_str())?
        .map(Rerun::Fresh)
        .ok_or_else(|| StoreError::NotFound { key: key.clone() })
}
