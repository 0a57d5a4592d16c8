//! Recording intents, ids, outcomes and history: the fenced writes of an owner, one statement each.

use tether_core::{
    ids::{ExternalId, Generation},
    journal::{Outcome, Submission},
    placement::Placement,
    store::{HistoryEntry, Lease, StoreError},
};

use super::{decode_err, generation_param, lease_lost, sql};
use crate::record::{encode_outcome, encode_placement};

impl super::PgStore {
    pub(super) async fn record_intent_impl(
        &self,
        lease: &Lease,
        submission: &Submission,
        previous: Option<&Outcome>,
        placement: Option<&Placement>,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        let host = placement.map(|p| p.host.clone());
        let placement = placement
            .map(|p| encode_placement("record_intent", p))
            .transpose()?;
        let previous = previous
            .map(|o| encode_outcome("record_intent", o))
            .transpose()?;
        self.fenced(
            lease,
            "record_intent",
            sql::RECORD_INTENT,
            &[
                &lease.key.as_str(),
                &lease.epoch.0,
                &lease.owner.0,
                &i64::from(submission.generation.0),
                &submission.tag.as_str(),
                &submission.shape.as_str(),
                &entry.at_ms,
                &entry.epoch.0,
                &generation_param(entry),
                &entry.decision.as_str(),
                &entry.reason,
                &previous,
                &placement,
                &host,
            ],
        )
        .await
    }

    pub(super) async fn record_submitted_impl(
        &self,
        lease: &Lease,
        generation: Generation,
        external_id: &ExternalId,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        let op = "record_submitted";
        let n = self
            .pool
            .count(
                op,
                sql::RECORD_SUBMITTED,
                &[
                    &lease.key.as_str(),
                    &lease.epoch.0,
                    &lease.owner.0,
                    &i64::from(generation.0),
                    &external_id.0,
                    &entry.at_ms,
                    &entry.epoch.0,
                    &generation_param(entry),
                    &entry.decision.as_str(),
                    &entry.reason,
                ],
            )
            .await?;
        if n > 0 {
            return Ok(());
        }
        // Tell a lost lease (stand down) from a stale generation (a bug in the caller).
        let fence = self
            .pool
            .query_opt(
                op,
                sql::FENCE,
                &[&lease.key.as_str(), &lease.epoch.0, &lease.owner.0],
            )
            .await?;
        match fence {
            None => Err(lease_lost(lease)),
            Some(r) => {
                let current: Option<i64> = r.try_get(0).map_err(|e| decode_err(op, e))?;
                Err(crate::StaleGeneration::error(
                    op, &lease.key, generation, current,
                ))
            }
        }
    }

    pub(super) async fn record_finished_impl(
        &self,
        lease: &Lease,
        outcome: &Outcome,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        let outcome = encode_outcome("record_finished", outcome)?;
        self.fenced(
            lease,
            "record_finished",
            sql::RECORD_FINISHED,
            &[
                &lease.key.as_str(),
                &lease.epoch.0,
                &lease.owner.0,
                &outcome,
                &entry.at_ms,
                &entry.epoch.0,
                &generation_param(entry),
                &entry.decision.as_str(),
                &entry.reason,
            ],
        )
        .await
    }

    pub(super) async fn append_history_impl(
        &self,
        lease: &Lease,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        self.fenced(
            lease,
            "append_history",
            sql::APPEND_HISTORY,
            &[
                &lease.key.as_str(),
                &lease.epoch.0,
                &lease.owner.0,
                &entry.at_ms,
                &entry.epoch.0,
                &generation_param(entry),
                &entry.decision.as_str(),
                &entry.reason,
            ],
        )
        .await
    }
}
