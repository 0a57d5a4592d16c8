//! The worker registry ([`Store::worker_beat`], [`Store::list_workers`]): which workers exist,
//! idle or not, for the fleet page of `tether serve` and `tether prune`.
//!
//! ## Guarantees an implementation must give (checked by the store conformance suite)
//! - A beat is one upsert: the first one of an owner sets `started_at_ms`, every one sets
//!   `heartbeat_at_ms` to the store's clock and the other fields to what the worker says now.
//! - Ages are judged by the store's clock, never the caller's (`heartbeat_age_ms` is computed
//!   on read), as lease expiry is.
//! - The registry is advisory: no lease, claim or fence reads it. A worker whose beat fails
//!   goes on driving its runs; a missing row only hides it from the fleet page.
//!
//! [`Store::worker_beat`]: super::Store::worker_beat
//! [`Store::list_workers`]: super::Store::list_workers
use crate::ids::OwnerId;

/// What a worker says of itself at each beat.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerBeat {
    /// The worker's owner id (the row's key).
    pub owner: OwnerId,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// How many runs it drives at most (its claim batch bound).
    pub concurrency: u32,
    /// The tether version it runs.
    pub version: String,
}

impl WorkerBeat {
    /// A beat of `owner`.
    pub fn new(
        owner: OwnerId,
        host: impl Into<String>,
        pid: u32,
        concurrency: u32,
        version: impl Into<String>,
    ) -> WorkerBeat {
        WorkerBeat {
            owner,
            host: host.into(),
            pid,
            concurrency,
            version: version.into(),
        }
    }
}

/// A registered worker as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerRecord {
    /// Its owner id, host, pid, concurrency and version, as of its last beat.
    pub beat: WorkerBeat,
    /// Its first beat, ms since the Unix epoch (store clock).
    pub started_at_ms: i64,
    /// Its last beat, ms since the Unix epoch (store clock).
    pub heartbeat_at_ms: i64,
    /// Time since its last beat when read, ms (store clock, never negative).
    pub heartbeat_age_ms: i64,
}

impl WorkerRecord {
    /// A stored worker.
    pub fn new(
        beat: WorkerBeat,
        started_at_ms: i64,
        heartbeat_at_ms: i64,
        heartbeat_age_ms: i64,
    ) -> WorkerRecord {
        WorkerRecord {
            beat,
            started_at_ms,
            heartbeat_at_ms,
            heartbeat_age_ms: heartbeat_age_ms.max(0),
        }
    }
}
