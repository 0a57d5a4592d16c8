//! Faults a test injects into [`super::MemoryStore`], and the per-operation call counts.
use std::{collections::HashMap, fmt};

use tether_core::store::StoreError;
use tokio::time::Instant;

/// One method of [`tether_core::Store`], to count calls and aim faults at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // one variant per `Store` method, named after it
pub enum Op {
    CreateRun,
    GetRun,
    ListRuns,
    Quarantined,
    History,
    Submissions,
    Acquire,
    Renew,
    RenewAll,
    Release,
    Claim,
    RecordIntent,
    RecordSubmitted,
    RecordFinished,
    AppendHistory,
    RequestCancel,
    ForgetHost,
    Rerun,
    RemoveRun,
    Prune,
    CountRuns,
    AnyUnfinished,
}

impl Op {
    /// The method's name (what errors carry as `op`).
    pub fn name(self) -> &'static str {
        match self {
            Op::CreateRun => "create_run",
            Op::RemoveRun => "remove_run",
            Op::Prune => "prune",
            Op::GetRun => "get_run",
            Op::ListRuns => "list_runs",
            Op::Quarantined => "quarantined",
            Op::History => "history",
            Op::Submissions => "submissions",
            Op::Acquire => "acquire",
            Op::Renew => "renew",
            Op::RenewAll => "renew_all",
            Op::Release => "release",
            Op::Claim => "claim",
            Op::RecordIntent => "record_intent",
            Op::RecordSubmitted => "record_submitted",
            Op::RecordFinished => "record_finished",
            Op::AppendHistory => "append_history",
            Op::RequestCancel => "request_cancel",
            Op::ForgetHost => "forget_host",
            Op::Rerun => "rerun",
            Op::CountRuns => "count_runs",
            Op::AnyUnfinished => "any_unfinished",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a faulty call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Fails with [`StoreError::Unavailable`] and changes nothing (the database is down).
    Unavailable,
    /// Fails with [`StoreError::Query`] and changes nothing (a non-transient failure).
    Query,
    /// Changes what the call changes, then fails with [`StoreError::Unavailable`]: the commit
    /// went through but its answer was lost (an ambiguous commit).
    CommitThenUnavailable,
}

impl Fault {
    pub(super) fn error(self, op: Op) -> StoreError {
        match self {
            Fault::Unavailable | Fault::CommitThenUnavailable => StoreError::Unavailable {
                op: op.name(),
                message: "injected by the test (MemoryStore fault)".into(),
            },
            Fault::Query => StoreError::Query {
                op: op.name(),
                source: "injected by the test (MemoryStore fault)".into(),
            },
        }
    }
}

/// A store-wide outage stops after this many refused calls even if its time is not up, so a
/// caller that retries without waiting (a busy loop) ends the test instead of hanging it; the
/// test then sees the count.
pub const OUTAGE_CALL_CAP: usize = 10_000;

#[derive(Default)]
pub(super) struct Faults {
    calls: HashMap<Op, usize>,
    /// Per operation: the fault and how many more calls it hits.
    aimed: HashMap<Op, (Fault, usize)>,
    /// Every call fails as unavailable until then (tokio's clock, so paused tests control it).
    outage_until: Option<Instant>,
    outage_refused: usize,
}

impl Faults {
    /// Counts the call; `Err` = fail before changing anything, `Ok(Some)` = fail after.
    pub(super) fn enter(&mut self, op: Op) -> Result<Option<StoreError>, StoreError> {
        *self.calls.entry(op).or_default() += 1;
        if let Some(until) = self.outage_until {
            if Instant::now() < until && self.outage_refused < OUTAGE_CALL_CAP {
                self.outage_refused += 1;
                return Err(Fault::Unavailable.error(op));
            }
            self.outage_until = None;
        }
        let Some((fault, left)) = self.aimed.get_mut(&op) else {
            return Ok(None);
        };
        let fault = *fault;
        *left -= 1;
        if *left == 0 {
            self.aimed.remove(&op);
        }
        match fault {
            Fault::CommitThenUnavailable => Ok(Some(fault.error(op))),
            _ => Err(fault.error(op)),
        }
    }

    pub(super) fn aim(&mut self, op: Op, fault: Fault, times: usize) {
        if times == 0 {
            self.aimed.remove(&op);
        } else {
            self.aimed.insert(op, (fault, times));
        }
    }

    pub(super) fn outage(&mut self, until: Instant) {
        self.outage_until = Some(until);
        self.outage_refused = 0;
    }

    pub(super) fn calls(&self, op: Op) -> usize {
        self.calls.get(&op).copied().unwrap_or(0)
    }

    pub(super) fn total(&self) -> usize {
        self.calls.values().sum()
    }
}
