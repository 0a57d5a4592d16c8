//! Listing runs page by page without their spec bodies ([`Store::list_summaries`]), for
//! `tether ls` and the HTTP server.
//!
//! ## Guarantees an implementation must give (checked by the store conformance suite)
//! - One read statement per page; the spec body is never read (a [`RunSummary`] has no field
//!   for it), so a listing of ten thousand runs costs ten thousand rows, not their specs.
//! - Order: most recently changed first (`updated_at_ms` descending, then key descending).
//! - Paging is keyset paging on `(updated_at_ms, key)`: a page starts strictly after its
//!   [`RunCursor`], so runs created while a client pages (which are newer than any cursor) never
//!   shift, duplicate or hide the runs of later pages.
//! - Filters combine with AND; an empty `states`/`kinds` list admits every run.
//!
//! ## Caveats
//! - A run that *changes* while a client pages moves to the front: a client that already
//!   passed its old position does not see it again on a later page (it would on a new listing).
//! - Rows this build cannot read are left out (see [`Store::quarantined`]); a page may then
//!   hold fewer than `limit` runs while `next` is still set.
//!
//! [`Store::list_summaries`]: super::Store::list_summaries
//! [`Store::quarantined`]: super::Store::quarantined
use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use super::RunRecord;
use crate::{
    ids::{Epoch, ExternalId, Generation, OwnerId, RunKey},
    journal::{Outcome, Phase},
    placement::Placement,
};

/// A run's state in one word, as listings filter and show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunState {
    /// Created, no job submitted yet (waiting for a worker or its first submit).
    Queued,
    /// A job's intent or its submission is recorded and no outcome yet.
    Running,
    /// Finished: the job succeeded.
    Succeeded,
    /// Finished: the run failed for good.
    Failed,
    /// Finished: cancelled by `tether cancel`.
    Cancelled,
}

impl RunState {
    /// Every state, in the order of a run's life.
    pub const ALL: [RunState; 5] = [
        RunState::Queued,
        RunState::Running,
        RunState::Succeeded,
        RunState::Failed,
        RunState::Cancelled,
    ];

    /// The word: `queued`, `running`, `succeeded`, `failed`, `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    /// The state of a run in `phase`.
    pub fn of(phase: &Phase) -> RunState {
        match phase {
            Phase::Empty => RunState::Queued,
            Phase::Intent { .. } | Phase::Submitted { .. } => RunState::Running,
            Phase::Finished { outcome } => match outcome {
                Outcome::Succeeded { .. } => RunState::Succeeded,
                Outcome::Failed { .. } => RunState::Failed,
                Outcome::Cancelled { .. } => RunState::Cancelled,
            },
        }
    }

    /// Whether the run has finished (succeeded, failed or cancelled).
    pub fn is_finished(self) -> bool {
        !matches!(self, RunState::Queued | RunState::Running)
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is not a [`RunState`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a run state; use one of queued, running, succeeded, failed, cancelled")]
pub struct UnknownState(pub String);

impl FromStr for RunState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

/// Where a page of [`RunQuery`] ends: the next page starts strictly after it. Opaque: clients
/// pass back the text of [`fmt::Display`] (URL-safe: hex digits and one `-`), parsed by
/// [`FromStr`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunCursor {
    updated_at_ms: i64,
    key: String,
}

impl RunCursor {
    /// The cursor just after `summary` (the last run of a page).
    pub fn after(summary: &RunSummary) -> RunCursor {
        RunCursor {
            updated_at_ms: summary.updated_at_ms,
            key: summary.key.as_str().to_string(),
        }
    }

    /// The change time of the last run of the page (ms since the Unix epoch, store clock).
    /// For store implementations.
    pub fn updated_at_ms(&self) -> i64 {
        self.updated_at_ms
    }

    /// The key of the last run of the page. For store implementations.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for RunCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-", self.updated_at_ms)?;
        self.key.bytes().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A text that is not a [`RunCursor`] this tether made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a listing cursor: pass back the `next` value of the previous page as it is")]
pub struct BadCursor(pub String);

impl FromStr for RunCursor {
    type Err = BadCursor;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadCursor(s.to_string());
        let (at, hex) = s.split_once('-').ok_or_else(bad)?;
        let updated_at_ms = i64::from_str_radix(at, 16).map_err(|_| bad())?;
        if hex.len() % 2 != 0 || !hex.is_ascii() {
            return Err(bad());
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| bad())?;
        let key = String::from_utf8(bytes).map_err(|_| bad())?;
        Ok(RunCursor { updated_at_ms, key })
    }
}

/// Which runs [`Store::list_summaries`](super::Store::list_summaries) returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunQuery {
    /// Only runs in one of these states (empty: any state).
    pub states: Vec<RunState>,
    /// Only runs of one of these kinds (empty: any kind).
    pub kinds: Vec<String>,
    /// Only runs whose lease holder is one of these owner ids, compared exactly (empty: any
    /// run). A released or finished run has no holder; an expired lease keeps its holder until
    /// someone takes the run over.
    pub owners: Vec<String>,
    /// Only runs changed at or after this time (ms since the Unix epoch, store clock).
    pub since_ms: Option<i64>,
    /// At most this many runs per page; 0: no limit (one page).
    pub limit: usize,
    /// Start after this cursor (the `next` of the previous page).
    pub after: Option<RunCursor>,
}

impl RunQuery {
    /// Every run, one page.
    pub fn new() -> RunQuery {
        RunQuery::default()
    }
    /// Only runs in one of `states`.
    pub fn states(mut self, states: impl IntoIterator<Item = RunState>) -> Self {
        self.states = states.into_iter().collect();
        self
    }
    /// Only runs of one of `kinds`.
    pub fn kinds<S: Into<String>>(mut self, kinds: impl IntoIterator<Item = S>) -> Self {
        self.kinds = kinds.into_iter().map(Into::into).collect();
        self
    }
    /// Only runs whose lease holder is one of `owners`.
    pub fn owners<S: Into<String>>(mut self, owners: impl IntoIterator<Item = S>) -> Self {
        self.owners = owners.into_iter().map(Into::into).collect();
        self
    }
    /// Only runs changed at or after `ms` (ms since the Unix epoch).
    pub fn since_ms(mut self, ms: Option<i64>) -> Self {
        self.since_ms = ms;
        self
    }
    /// At most `n` runs per page (0: no limit).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }
    /// Starts after `cursor`.
    pub fn after(mut self, cursor: Option<RunCursor>) -> Self {
        self.after = cursor;
        self
    }

    /// Whether `s` passes the filters and comes after the cursor (for stores that filter in
    /// memory; the SQL stores say the same in their statement).
    pub fn admits(&self, s: &RunSummary) -> bool {
        (self.states.is_empty() || self.states.contains(&s.state))
            && (self.kinds.is_empty() || self.kinds.contains(&s.kind))
            && (self.owners.is_empty()
                || s.owner.as_ref().is_some_and(|o| self.owners.contains(&o.0)))
            && self.since_ms.is_none_or(|t| s.updated_at_ms >= t)
            && self.after.as_ref().is_none_or(|c| {
                (s.updated_at_ms, s.key.as_str()) < (c.updated_at_ms, c.key.as_str())
            })
    }

    /// The page of `runs` (already filtered and sorted newest first, at most `limit + 1` of
    /// them): the first `limit`, and a cursor when there are more.
    pub fn page(&self, mut runs: Vec<RunSummary>) -> RunPage {
        let next = if self.limit > 0 && runs.len() > self.limit {
            runs.truncate(self.limit);
            runs.last().map(RunCursor::after)
        } else {
            None
        };
        RunPage { runs, next }
    }

    /// The page of `rows` as a store read them (filtered, newest first, at most
    /// [`RunQuery::fetch`] of them): the first `limit` decoded by `decode` (`None` for a row
    /// this build cannot read, left out), and a cursor after the last of them (from `at`: its
    /// `updated_at_ms` and key) when there are more. The cursor comes from the row, not from
    /// what decoded, so an unreadable row never ends the listing early.
    pub fn page_of<R>(
        &self,
        mut rows: Vec<R>,
        at: impl Fn(&R) -> (i64, String),
        decode: impl FnMut(R) -> Option<RunSummary>,
    ) -> RunPage {
        let next = if self.limit > 0 && rows.len() > self.limit {
            rows.truncate(self.limit);
            rows.last().map(|r| {
                let (updated_at_ms, key) = at(r);
                RunCursor { updated_at_ms, key }
            })
        } else {
            None
        };
        RunPage {
            runs: rows.into_iter().filter_map(decode).collect(),
            next,
        }
    }

    /// How many rows a store should read: `limit + 1` (to learn whether a next page exists),
    /// or `None` for no limit.
    pub fn fetch(&self) -> Option<usize> {
        (self.limit > 0).then(|| self.limit.saturating_add(1))
    }
}

/// One run in a listing: everything but its spec body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunSummary {
    /// Its key.
    pub key: RunKey,
    /// Backend kind.
    pub kind: String,
    /// Name of the spec file, for messages.
    pub spec_name: String,
    /// Its state in one word.
    pub state: RunState,
    /// The full phase (intent, submitted with its job, finished with its outcome).
    pub phase: Phase,
    /// `tether cancel` asked for the job to be killed.
    pub cancel_requested: bool,
    /// Current epoch (0 = never leased).
    pub epoch: Epoch,
    /// Current (or last) lease holder.
    pub owner: Option<OwnerId>,
    /// When the lease expires (ms since the Unix epoch, store clock).
    pub lease_expires_at_ms: Option<i64>,
    /// Whether the lease is alive now (store clock).
    pub lease_alive: bool,
    /// The current (or else the last) generation.
    pub generation: Option<Generation>,
    /// The current (or else the last) job's backend id.
    pub external_id: Option<ExternalId>,
    /// Created by `tether submit` for a worker.
    pub queued: bool,
    /// Where a host-bound run's jobs live.
    pub placement: Option<Placement>,
    /// Creation time (ms since the Unix epoch).
    pub created_at_ms: i64,
    /// Last change (ms since the Unix epoch); listings are ordered by it.
    pub updated_at_ms: i64,
}

impl RunSummary {
    /// The outcome, once finished.
    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.phase {
            Phase::Finished { outcome } => Some(outcome),
            _ => None,
        }
    }
}

impl From<&RunRecord> for RunSummary {
    fn from(r: &RunRecord) -> RunSummary {
        let (generation, external_id) = r.current();
        RunSummary {
            key: r.key.clone(),
            kind: r.kind.clone(),
            spec_name: r.spec_name.clone(),
            state: RunState::of(&r.journal.phase),
            phase: r.journal.phase.clone(),
            cancel_requested: r.journal.cancel_requested,
            epoch: r.epoch,
            owner: r.owner.clone(),
            lease_expires_at_ms: r.lease_expires_at_ms,
            lease_alive: r.lease_alive,
            generation: generation.or(r.last_generation),
            external_id: external_id.or(r.last_external_id.as_ref()).cloned(),
            queued: r.queued,
            placement: r.placement.clone(),
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RunPage {
    /// The runs, most recently changed first.
    pub runs: Vec<RunSummary>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<RunCursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_text_and_refuses_other_text() {
        let c = RunCursor {
            updated_at_ms: 1_764_600_000_123,
            key: "scheduled__2026-12-01T00:00:00+00:00".into(),
        };
        let text = c.to_string();
        assert!(
            text.chars().all(|ch| ch.is_ascii_hexdigit() || ch == '-'),
            "URL-safe: {text}"
        );
        assert_eq!(text.parse::<RunCursor>(), Ok(c));
        for bad in ["", "zz-00", "10-0", "10-zz", "10"] {
            assert!(bad.parse::<RunCursor>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn states_parse_from_their_words_only() {
        for s in RunState::ALL {
            assert_eq!(s.as_str().parse::<RunState>(), Ok(s));
        }
        assert!("done".parse::<RunState>().is_err());
    }
}
