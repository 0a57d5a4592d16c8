//! `remove_run` and `prune` of the [`MemoryStore`](super::MemoryStore): under its one lock,
//! the check and the removal of a run with its submissions and history are atomic.
use tether_core::{
    ids::RunKey,
    store::{Remove, RemovedRun, RunSummary, StoreError},
};

use super::{not_found, Row, State};

fn removable(row: &Row, now: i64) -> bool {
    row.finished() && row.free(now)
}

fn removed(row: &Row, now: i64) -> RemovedRun {
    let mut rec = row.read(now);
    rec.spec.clear();
    RemovedRun::new(
        RunSummary::from(&rec),
        row.submissions
            .values()
            .map(|s| s.submission.tag.clone())
            .collect(),
    )
}

pub(super) fn remove_run(s: &mut State, key: &RunKey, now: i64) -> Result<Remove, StoreError> {
    let row = s.runs.get(key.as_str()).ok_or_else(|| not_found(key))?;
    if !removable(row, now) {
        return Ok(Remove::NotFinished(row.read(now)));
    }
    let out = removed(row, now);
    s.runs.remove(key.as_str());
    Ok(Remove::Removed(out))
}

pub(super) fn prune(s: &mut State, before_ms: i64, dry_run: bool, now: i64) -> Vec<RemovedRun> {
    let mut out: Vec<RemovedRun> = s
        .runs
        .values()
        .filter(|r| removable(r, now) && r.rec.updated_at_ms < before_ms)
        .map(|r| removed(r, now))
        .collect();
    out.sort_by(|a, b| {
        (a.run.updated_at_ms, a.run.key.as_str()).cmp(&(b.run.updated_at_ms, b.run.key.as_str()))
    });
    if !dry_run {
        for r in &out {
            s.runs.remove(r.run.key.as_str());
        }
    }
    out
}
