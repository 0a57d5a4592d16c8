//! The view of a run's history entries: each entry with its generation, epoch, owner and the
//! external id of its generation as fields of their own.
//!
//! ## Caveats
//! - History rows have no owner column: the owner of an entry is the one that took the lease
//!   at that entry's epoch, read from the `lease-acquired`/`claimed` entries ("… new owner X")
//!   and `released` entries ("lease released by X"). Entries of an epoch without such an entry
//!   (e.g. written by a store without lease events) have `owner: null`.
use std::collections::HashMap;

use serde::Serialize;
use tether_core::{
    history::HistoryKind,
    ids::ExternalId,
    store::{HistoryEntry, SubmissionRecord},
};

use super::{iso_time, SCHEMA_VERSION};

/// One history entry.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntryView {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When, ms since the Unix epoch (store clock).
    pub at_ms: i64,
    /// When, ISO 8601 UTC.
    pub at: String,
    /// The fencing epoch of the writer.
    pub epoch: i64,
    /// The generation concerned, if any.
    pub generation: Option<u32>,
    /// Who held the lease at that epoch, when known (see the module's caveats).
    pub owner: Option<String>,
    /// The external id of that generation's job, once known.
    pub external_id: Option<ExternalId>,
    /// What happened: a decision (`submit`, `resubmit`, `observe`, …) or a store event
    /// (`lease-acquired`, `released`, …).
    pub decision: HistoryKind,
    /// The explanation, for people.
    pub reason: String,
}

/// The views of `entries`, with owners and external ids filled from the entries themselves
/// and the run's `submissions`.
pub fn history_views(
    entries: &[HistoryEntry],
    submissions: &[SubmissionRecord],
) -> Vec<HistoryEntryView> {
    let mut owners: HashMap<i64, String> = HashMap::new();
    for e in entries {
        if let Some(owner) = owner_named(e) {
            owners.entry(e.epoch.0).or_insert(owner);
        }
    }
    let ids: HashMap<u32, &ExternalId> = submissions
        .iter()
        .filter_map(|s| Some((s.submission.generation.0, s.external_id.as_ref()?)))
        .collect();
    entries
        .iter()
        .map(|e| {
            let generation = e.generation.map(|g| g.0);
            HistoryEntryView {
                schema_version: SCHEMA_VERSION,
                at_ms: e.at_ms,
                at: iso_time(e.at_ms),
                epoch: e.epoch.0,
                generation,
                owner: owners.get(&e.epoch.0).cloned(),
                external_id: generation.and_then(|g| ids.get(&g)).map(|i| (*i).clone()),
                decision: e.decision.clone(),
                reason: e.reason.clone(),
            }
        })
        .collect()
}

/// The owner a lease entry names (both store backends write the same texts).
fn owner_named(e: &HistoryEntry) -> Option<String> {
    let text = e.reason.as_str();
    let tail = match e.decision.as_str() {
        "lease-acquired" | "claimed" => text.rsplit_once("new owner ")?.1,
        "released" => text.strip_prefix("lease released by ")?,
        _ => return None,
    };
    let owner = tail.split_whitespace().next()?;
    Some(owner.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_core::ids::{Epoch, Generation};

    fn entry(epoch: i64, g: Option<u32>, decision: &str, reason: &str) -> HistoryEntry {
        HistoryEntry {
            at_ms: 1_764_600_000_000,
            epoch: Epoch(epoch),
            generation: g.map(Generation),
            decision: decision.into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn owner_comes_from_the_lease_entry_of_the_same_epoch() {
        let entries = [
            entry(
                1,
                None,
                "lease-acquired",
                "lease was free; new owner host-a:1",
            ),
            entry(1, Some(1), "submit", "first submission"),
            entry(
                2,
                None,
                "lease-acquired",
                "took over from host-a:1 (lease expired 3.0s ago); new owner host-b:2",
            ),
            entry(2, Some(1), "observe", "running"),
        ];
        let v = history_views(&entries, &[]);
        let owners: Vec<_> = v.iter().map(|e| e.owner.as_deref()).collect();
        assert_eq!(
            owners,
            [
                Some("host-a:1"),
                Some("host-a:1"),
                Some("host-b:2"),
                Some("host-b:2")
            ]
        );
        assert_eq!(v[1].generation, Some(1));
        assert_eq!(v[0].at, "2025-12-01T14:40:00.000Z");
    }
}
