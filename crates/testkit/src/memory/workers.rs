//! The worker registry of the [`MemoryStore`](super::MemoryStore), by its clock.
use std::time::Duration;

use tether_core::store::{WorkerBeat, WorkerRecord};

use super::{ttl_ms, State};

/// A registered worker: what it said last, its first and last beat.
#[derive(Clone)]
pub(super) struct Worker {
    beat: WorkerBeat,
    started_at_ms: i64,
    heartbeat_at_ms: i64,
}

impl Worker {
    fn read(&self, now: i64) -> WorkerRecord {
        WorkerRecord::new(
            self.beat.clone(),
            self.started_at_ms,
            self.heartbeat_at_ms,
            now - self.heartbeat_at_ms,
        )
    }
}

pub(super) fn beat(s: &mut State, b: &WorkerBeat, now: i64) {
    let started_at_ms = s.workers.get(&b.owner.0).map_or(now, |w| w.started_at_ms);
    s.workers.insert(
        b.owner.0.clone(),
        Worker {
            beat: b.clone(),
            started_at_ms,
            heartbeat_at_ms: now,
        },
    );
}

pub(super) fn list(s: &State, now: i64) -> Vec<WorkerRecord> {
    s.workers.values().map(|w| w.read(now)).collect()
}

pub(super) fn prune(
    s: &mut State,
    older_than: Duration,
    dry_run: bool,
    now: i64,
) -> Vec<WorkerRecord> {
    let oldest = now.saturating_sub(ttl_ms(older_than));
    let old: Vec<WorkerRecord> = s
        .workers
        .values()
        .filter(|w| w.heartbeat_at_ms < oldest)
        .map(|w| w.read(now))
        .collect();
    if !dry_run {
        s.workers.retain(|_, w| w.heartbeat_at_ms >= oldest);
    }
    old
}
