//! Recording intents, ids, outcomes and history: the fenced writes of an owner.

use rusqlite::{params, OptionalExtension};
use tether_core::{
    ids::{ExternalId, Generation},
    journal::{Outcome, Submission},
    placement::Placement,
    store::{HistoryEntry, Lease, StoreError},
};

use super::{
    fenced::{fenced_execute, fenced_generation, insert_history, lease_lost},
    open::{map_err, now_ms},
    sql,
};
use crate::record::{encode_outcome, encode_placement};

impl super::SqliteStore {
    pub(super) async fn record_intent_impl(
        &self,
        lease: &Lease,
        submission: &Submission,
        previous: Option<&Outcome>,
        placement: Option<&Placement>,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        let (lease, sub, entry) = (lease.clone(), submission.clone(), entry.clone());
        let previous = previous
            .map(|o| encode_outcome("record_intent", o))
            .transpose()?;
        let host = placement.map(|p| p.host.clone());
        let placement = placement
            .map(|p| encode_placement("record_intent", p))
            .transpose()?;
        self.write("record_intent", move |tx, loc| {
            let op = "record_intent";
            let now = now_ms();
            let k = lease.key.as_str();
            let g = i64::from(sub.generation.0);
            fenced_execute(
                tx,
                op,
                loc,
                &lease,
                sql::RECORD_INTENT,
                params![
                    k,
                    lease.epoch.0,
                    lease.owner.0,
                    g,
                    sub.tag.as_str(),
                    sub.shape.as_str(),
                    now,
                    placement,
                    host
                ],
            )?;
            tx.prepare_cached(sql::UPSERT_SUBMISSION)
                .and_then(|mut s| {
                    s.execute(params![k, g, sub.tag.as_str(), sub.shape.as_str(), now])
                })
                .map_err(|e| map_err(op, loc, e))?;
            if let Some(previous) = &previous {
                tx.prepare_cached(sql::PREVIOUS_OUTCOME)
                    .and_then(|mut s| s.execute(params![k, g, previous, now]))
                    .map_err(|e| map_err(op, loc, e))?;
            }
            insert_history(tx, op, loc, k, &entry)
        })
        .await
    }

    pub(super) async fn record_submitted_impl(
        &self,
        lease: &Lease,
        generation: Generation,
        external_id: &ExternalId,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        let (lease, id, entry) = (lease.clone(), external_id.clone(), entry.clone());
        self.write("record_submitted", move |tx, loc| {
            let op = "record_submitted";
            let now = now_ms();
            let k = lease.key.as_str();
            let g = i64::from(generation.0);
            let n = tx
                .prepare_cached(sql::RECORD_SUBMITTED)
                .and_then(|mut s| s.execute(params![k, lease.epoch.0, lease.owner.0, g, id.0, now]))
                .map_err(|e| map_err(op, loc, e))?;
            if n == 0 {
                // Tell a lost lease (stand down) from a stale generation (a bug in the caller).
                let current: Option<Option<i64>> = tx
                    .prepare_cached(sql::FENCE)
                    .and_then(|mut s| {
                        s.query_row(params![k, lease.epoch.0, lease.owner.0], |r| r.get(0))
                            .optional()
                    })
                    .map_err(|e| map_err(op, loc, e))?;
                return Err(match current {
                    None => lease_lost(&lease),
                    Some(current) => {
                        crate::StaleGeneration::error(op, &lease.key, generation, current)
                    }
                });
            }
            tx.prepare_cached(sql::SUBMISSION_SUBMITTED)
                .and_then(|mut s| s.execute(params![k, g, id.0, now]))
                .map_err(|e| map_err(op, loc, e))?;
            insert_history(tx, op, loc, k, &entry)
        })
        .await
    }

    pub(super) async fn record_finished_impl(
        &self,
        lease: &Lease,
        outcome: &Outcome,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        let (lease, entry) = (lease.clone(), entry.clone());
        let outcome = encode_outcome("record_finished", outcome)?;
        self.write("record_finished", move |tx, loc| {
            let op = "record_finished";
            let now = now_ms();
            let k = lease.key.as_str();
            let generation = fenced_generation(
                tx,
                op,
                loc,
                &lease,
                sql::RECORD_FINISHED,
                params![k, lease.epoch.0, lease.owner.0, outcome, now],
            )?;
            if let Some(g) = generation {
                tx.prepare_cached(sql::SUBMISSION_FINISHED)
                    .and_then(|mut s| s.execute(params![k, g, outcome, now]))
                    .map_err(|e| map_err(op, loc, e))?;
            }
            insert_history(tx, op, loc, k, &entry)
        })
        .await
    }

    pub(super) async fn append_history_impl(
        &self,
        lease: &Lease,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        let (lease, entry) = (lease.clone(), entry.clone());
        self.write("append_history", move |tx, loc| {
            let op = "append_history";
            let k = lease.key.as_str();
            fenced_generation(
                tx,
                op,
                loc,
                &lease,
                sql::FENCE,
                params![k, lease.epoch.0, lease.owner.0],
            )?;
            insert_history(tx, op, loc, k, &entry)
        })
        .await
    }
}
