//! `Store::remove_run` and `Store::prune` for SQLite.
//!
//! ## Guarantees
//! - Check and removal happen in one `BEGIN IMMEDIATE` transaction: a run that is not
//!   finished, or whose lease is alive, is never touched; a run's row, submissions and history
//!   go together.
use rusqlite::{params, Transaction};
use tether_core::{
    ids::{RunKey, Tag},
    store::{Remove, RemovedRun, RunState, RunSummary, StoreError},
};

use super::{
    open::{map_err, now_ms},
    rows::{decode_row, get_run, Decoded},
};

/// ?1 key. Oldest first.
const TAGS: &str = "SELECT tag FROM submissions WHERE key = ?1 ORDER BY generation";

/// ?1 key: the three deletes (one transaction holds them).
const DELETE: [&str; 3] = [
    "DELETE FROM history WHERE key = ?1",
    "DELETE FROM submissions WHERE key = ?1",
    "DELETE FROM runs WHERE key = ?1",
];

/// Finished, readable, lease not alive (?2 now), changed before ?1; oldest first. The columns
/// of `LIST_RUNS` (no spec body).
const PRUNABLE: &str = "SELECT key, kind, '' AS spec, spec_name, spec_hash, phase, \
     generation, tag, shape, external_id, outcome, cancel_requested, epoch, owner, \
     lease_expires_at_ms, queued, created_at_ms, updated_at_ms, placement, \
     (SELECT value FROM tether_meta WHERE name = 'store_id'), base_dir, instance_base, quarantined \
     FROM runs WHERE phase = 'finished' AND quarantined IS NULL AND updated_at_ms < ?1 \
       AND (owner IS NULL OR lease_expires_at_ms IS NULL OR lease_expires_at_ms <= ?2) \
     ORDER BY updated_at_ms, key";

fn tags(
    tx: &Transaction<'_>,
    op: &'static str,
    loc: &str,
    key: &str,
) -> Result<Vec<Tag>, StoreError> {
    tx.prepare_cached(TAGS)
        .and_then(|mut s| s.query_map([key], |r| r.get::<_, String>(0))?.collect())
        .map(|v: Vec<String>| v.into_iter().map(Tag::from_stored).collect())
        .map_err(|e| map_err(op, loc, e))
}

fn delete(tx: &Transaction<'_>, op: &'static str, loc: &str, key: &str) -> Result<(), StoreError> {
    for stmt in DELETE {
        tx.prepare_cached(stmt)
            .and_then(|mut s| s.execute(params![key]))
            .map_err(|e| map_err(op, loc, e))?;
    }
    Ok(())
}

pub(super) fn remove_run(
    tx: &Transaction<'_>,
    loc: &str,
    key: &RunKey,
) -> Result<Remove, StoreError> {
    let op = "remove_run";
    let Some(run) = get_run(tx, op, loc, key.as_str())? else {
        return Err(StoreError::NotFound { key: key.clone() });
    };
    let summary = RunSummary::from(&run);
    if !summary.state.is_finished() || run.lease_alive {
        return Ok(Remove::NotFinished(run));
    }
    let tags = tags(tx, op, loc, key.as_str())?;
    delete(tx, op, loc, key.as_str())?;
    Ok(Remove::Removed(RemovedRun::new(summary, tags)))
}

pub(super) fn prune(
    tx: &Transaction<'_>,
    loc: &str,
    before_ms: i64,
    dry_run: bool,
) -> Result<Vec<RemovedRun>, StoreError> {
    let op = "prune";
    let now = now_ms();
    let rows: Vec<Decoded> = tx
        .prepare_cached(PRUNABLE)
        .and_then(|mut s| {
            s.query_map(params![before_ms, now], |r| Ok(decode_row(r, now, loc)))?
                .collect()
        })
        .map_err(|e| map_err(op, loc, e))?;
    let mut out = Vec::new();
    for d in rows {
        // A row that decodes but is not finished cannot happen (the statement says finished);
        // one that does not decode is the quarantine's business, not prune's.
        let Decoded::Run(run) = d else { continue };
        let summary = RunSummary::from(&run);
        if !matches!(
            summary.state,
            RunState::Succeeded | RunState::Failed | RunState::Cancelled
        ) {
            continue;
        }
        let tags = tags(tx, op, loc, run.key.as_str())?;
        if !dry_run {
            delete(tx, op, loc, run.key.as_str())?;
        }
        out.push(RemovedRun::new(summary, tags));
    }
    Ok(out)
}
