//! Removing finished runs ([`Store::remove_run`], [`Store::prune`]): `tether rm`, `tether prune`.
//!
//! ## Guarantees an implementation must give (checked by the store conformance suite)
//! - Only a finished run (succeeded, failed or cancelled) whose lease is not alive is removed;
//!   the check and the removal are one transaction, so a run rerun or taken meanwhile stays.
//! - A removed run's row, submissions and history go together, or nothing does.
//! - The submissions' tags are returned, so the caller can remove the jobs' files (local job
//!   directories are named by tag) after the rows are gone.
//!
//! [`Store::remove_run`]: super::Store::remove_run
//! [`Store::prune`]: super::Store::prune
use super::{RunRecord, RunSummary};
use crate::ids::Tag;

/// A run that was removed (or, in a dry run, would be).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RemovedRun {
    /// The run as it was (no spec body).
    pub run: RunSummary,
    /// The tags of its submissions, oldest first (local job directories are named by them).
    pub tags: Vec<Tag>,
}

impl RemovedRun {
    /// A removed run and its submissions' tags.
    pub fn new(run: RunSummary, tags: Vec<Tag>) -> RemovedRun {
        RemovedRun { run, tags }
    }
}

/// Result of [`Store::remove_run`](super::Store::remove_run).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Remove {
    /// The run, its submissions and its history are gone.
    Removed(RemovedRun),
    /// The run has not finished, or its lease is alive: nothing was changed.
    NotFinished(RunRecord),
}
