//! The [`Store`] methods of [`MemoryStore`].
use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use tether_core::{
    ids::{ExternalId, Generation, OwnerId, RunKey, StoreId},
    journal::{Journal, Outcome, Phase, Submission},
    placement::Placement,
    store::{
        Acquire, ClaimFilter, Created, HistoryEntry, Lease, Liveness, NewRun, QuarantinedRun,
        Renewed, Rerun, RerunSpec, RunRecord, RunState, StoreError, SubmissionRecord,
    },
    Store,
};

use super::{entry, gone, lease_lost, not_found, ttl_ms, MemoryStore, Op, Row, State};

/// Takes the lease of a free row: new epoch, owner, expiry, and a history entry.
fn take(row: &mut Row, owner: &OwnerId, ttl: Duration, now: i64, decision: &str) -> Lease {
    // The SQL stores' words (tether-store's `takeover_reason`), checked by the conformance suite.
    let reason = match (&row.rec.owner, row.rec.lease_expires_at_ms) {
        (Some(prev), Some(exp)) if exp > now => {
            let left = (exp - now) as f64 / 1000.0;
            format!(
                "took over from {prev} (owner gone, lease had {left:.1}s left); new owner {owner}"
            )
        }
        (Some(prev), Some(exp)) => {
            let ago = (now - exp).max(0) as f64 / 1000.0;
            format!("took over from {prev} (lease expired {ago:.1}s ago); new owner {owner}")
        }
        (Some(prev), None) => {
            format!("took over from {prev} (lease had no expiry); new owner {owner}")
        }
        (None, _) => format!("lease was free; new owner {owner}"),
    };
    row.rec.epoch.0 += 1;
    row.rec.owner = Some(owner.clone());
    row.rec.lease_expires_at_ms = Some(now.saturating_add(ttl_ms(ttl)));
    row.rec.updated_at_ms = now;
    let e = entry(&row.rec, decision, reason);
    row.push(e, now);
    Lease {
        key: row.rec.key.clone(),
        owner: owner.clone(),
        epoch: row.rec.epoch,
    }
}

/// The row `lease` may write to: same epoch and owner (and unfinished if `open`).
fn fenced<'s>(state: &'s mut State, lease: &Lease, open: bool) -> Result<&'s mut Row, StoreError> {
    match state.runs.get_mut(lease.key.as_str()) {
        Some(row)
            if row.rec.epoch == lease.epoch
                && row.rec.owner.as_ref() == Some(&lease.owner)
                && !(open && row.finished()) =>
        {
            Ok(row)
        }
        _ => Err(lease_lost(lease)),
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn hold_liveness(&self, owner: &OwnerId) -> Result<Option<Liveness>, StoreError> {
        let token = std::sync::Arc::new(());
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .live
            .insert(owner.0.clone(), std::sync::Arc::downgrade(&token));
        Ok(Some(Liveness::new(token)))
    }

    async fn worker_beat(&self, b: &tether_core::store::WorkerBeat) -> Result<(), StoreError> {
        let (mut s, now) = self.state();
        super::workers::beat(&mut s, b, now);
        Ok(())
    }

    async fn remove_worker(&self, owner: &OwnerId) -> Result<(), StoreError> {
        self.state().0.workers.remove(&owner.0);
        Ok(())
    }

    async fn list_workers(&self) -> Result<Vec<tether_core::store::WorkerRecord>, StoreError> {
        let (s, now) = self.state();
        Ok(super::workers::list(&s, now))
    }

    async fn prune_workers(
        &self,
        older: Duration,
        dry_run: bool,
    ) -> Result<Vec<tether_core::store::WorkerRecord>, StoreError> {
        let (mut s, now) = self.state();
        Ok(super::workers::prune(&mut s, older, dry_run, now))
    }

    async fn create_run(&self, new: &NewRun) -> Result<Created, StoreError> {
        let store = self.id.clone();
        self.with(Op::CreateRun, |s, now| {
            if let Some(row) = s.runs.get(new.key.as_str()) {
                return Ok(Created::Existing(row.read(now)));
            }
            let rec = RunRecord {
                key: new.key.clone(),
                kind: new.kind.clone(),
                spec: new.spec.clone(),
                spec_name: new.spec_name.clone(),
                spec_hash: new.spec_hash.clone(),
                journal: Journal::empty(store, new.key.clone()),
                epoch: tether_core::ids::Epoch(0),
                owner: None,
                lease_expires_at_ms: None,
                lease_alive: false,
                last_generation: None,
                last_external_id: None,
                placement: None,
                queued: new.queued,
                base_dir: new.base_dir.clone(),
                created_at_ms: now,
                updated_at_ms: now,
            };
            s.next_seq += 1;
            let row = Row {
                rec: rec.clone(),
                seq: s.next_seq,
                submissions: Default::default(),
                history: Vec::new(),
            };
            s.runs.insert(new.key.as_str().to_string(), row);
            Ok(Created::New(rec))
        })
    }

    async fn get_run(&self, key: &RunKey) -> Result<Option<RunRecord>, StoreError> {
        self.with(Op::GetRun, |s, now| {
            Ok(s.runs.get(key.as_str()).map(|r| r.read(now)))
        })
    }

    async fn list_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.with(Op::ListRuns, |s, now| {
            let mut rows: Vec<&Row> = s.runs.values().collect();
            rows.sort_by_key(|r| std::cmp::Reverse((r.rec.created_at_ms, r.seq)));
            Ok(rows
                .into_iter()
                .map(|r| RunRecord {
                    spec: String::new(),
                    ..r.read(now)
                })
                .collect())
        })
    }

    async fn count_runs(&self) -> Result<Vec<(RunState, String, u64)>, StoreError> {
        self.with(Op::CountRuns, |s, _| {
            let mut counts = BTreeMap::<(&'static str, String), (RunState, u64)>::new();
            for row in s.runs.values() {
                let state = RunState::of(&row.rec.journal.phase);
                let at = (state.as_str(), row.rec.kind.clone());
                counts.entry(at).or_insert((state, 0)).1 += 1;
            }
            Ok(counts
                .into_iter()
                .map(|((_, kind), (state, n))| (state, kind, n))
                .collect())
        })
    }

    async fn any_unfinished(&self, filter: &ClaimFilter) -> Result<bool, StoreError> {
        self.with(Op::AnyUnfinished, |s, _| {
            Ok(s.runs.values().any(|row| {
                filter.admits(&row.rec.kind, row.rec.placement.as_ref())
                    && !RunState::of(&row.rec.journal.phase).is_finished()
            }))
        })
    }

    async fn quarantined(&self) -> Result<Vec<QuarantinedRun>, StoreError> {
        self.with(Op::Quarantined, |_, _| Ok(Vec::new()))
    }

    async fn history(&self, key: &RunKey) -> Result<Vec<HistoryEntry>, StoreError> {
        self.with(Op::History, |s, _| {
            Ok(s.runs
                .get(key.as_str())
                .map(|r| r.history.clone())
                .unwrap_or_default())
        })
    }

    async fn submissions(&self, key: &RunKey) -> Result<Vec<SubmissionRecord>, StoreError> {
        self.with(Op::Submissions, |s, _| {
            Ok(s.runs
                .get(key.as_str())
                .map(|r| r.submissions.values().cloned().collect())
                .unwrap_or_default())
        })
    }

    async fn acquire(
        &self,
        key: &RunKey,
        owner: &OwnerId,
        ttl: Duration,
    ) -> Result<Acquire, StoreError> {
        self.with(Op::Acquire, |s, now| {
            let row = s.runs.get_mut(key.as_str()).ok_or_else(|| not_found(key))?;
            if row.finished() || !(row.free(now) || gone(&s.live, row.rec.owner.as_ref())) {
                return Ok(Acquire::Held(row.read(now)));
            }
            let lease = take(row, owner, ttl, now, "lease-acquired");
            Ok(Acquire::Acquired(lease, row.read(now)))
        })
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<(), StoreError> {
        self.with(Op::Renew, |s, now| {
            fenced(s, lease, true)?.rec.lease_expires_at_ms = Some(now.saturating_add(ttl_ms(ttl)));
            Ok(())
        })
    }

    async fn renew_all(&self, owner: &OwnerId, ttl: Duration) -> Result<Vec<Renewed>, StoreError> {
        self.with(Op::RenewAll, |s, now| {
            let mut held = Vec::new();
            for row in s.runs.values_mut() {
                if row.rec.owner.as_ref() == Some(owner) && !row.finished() {
                    row.rec.lease_expires_at_ms = Some(now.saturating_add(ttl_ms(ttl)));
                    held.push(Renewed {
                        key: row.rec.key.clone(),
                        epoch: row.rec.epoch,
                        cancel_requested: row.rec.journal.cancel_requested,
                    });
                }
            }
            held.sort();
            Ok(held)
        })
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        self.with(Op::Release, |s, now| {
            let row = fenced(s, lease, false)?;
            row.rec.owner = None;
            row.rec.lease_expires_at_ms = None;
            row.rec.updated_at_ms = now;
            let e = entry(
                &row.rec,
                "released",
                format!("lease released by {}", lease.owner),
            );
            row.push(
                HistoryEntry {
                    epoch: lease.epoch,
                    ..e
                },
                now,
            );
            Ok(())
        })
    }

    async fn claim(
        &self,
        owner: &OwnerId,
        ttl: Duration,
        limit: usize,
        filter: &ClaimFilter,
    ) -> Result<Vec<(Lease, RunRecord)>, StoreError> {
        self.with(Op::Claim, |s, now| {
            let live = &s.live;
            let mut candidates: Vec<&mut Row> = s
                .runs
                .values_mut()
                .filter(|r| !r.finished() && (r.free(now) || gone(live, r.rec.owner.as_ref())))
                .filter(|r| filter.admits(&r.rec.kind, r.rec.placement.as_ref()))
                .collect();
            candidates.sort_by_key(|r| (!r.rec.queued, r.rec.created_at_ms, r.seq));
            Ok(candidates
                .into_iter()
                .take(limit)
                .map(|row| {
                    let lease = take(row, owner, ttl, now, "claimed");
                    (lease, row.read(now))
                })
                .collect())
        })
    }

    async fn record_intent(
        &self,
        lease: &Lease,
        submission: &Submission,
        previous: Option<&Outcome>,
        placement: Option<&Placement>,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        self.with(Op::RecordIntent, |s, now| {
            let row = fenced(s, lease, true)?;
            let g = submission.generation;
            row.rec.journal.phase = Phase::Intent {
                submission: submission.clone(),
            };
            row.rec.last_generation = Some(g);
            row.rec.last_external_id = None;
            if row.rec.placement.is_none() {
                row.rec.placement = placement.cloned();
            }
            row.rec.updated_at_ms = now;
            row.submissions.insert(
                g.0,
                SubmissionRecord {
                    submission: submission.clone(),
                    external_id: None,
                    outcome: None,
                    intent_at_ms: now,
                },
            );
            if let (Some(previous), Some(before)) = (previous, g.0.checked_sub(1)) {
                if let Some(sub) = row.submissions.get_mut(&before) {
                    sub.outcome.get_or_insert_with(|| previous.clone());
                }
            }
            row.push(entry.clone(), now);
            Ok(())
        })
    }

    async fn record_submitted(
        &self,
        lease: &Lease,
        generation: Generation,
        external_id: &ExternalId,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        self.with(Op::RecordSubmitted, |s, now| {
            let row = fenced(s, lease, false)?;
            let submission = match &row.rec.journal.phase {
                Phase::Intent { submission } | Phase::Submitted { submission, .. }
                    if submission.generation == generation =>
                {
                    submission.clone()
                }
                _ => {
                    return Err(StoreError::Query {
                        op: "record_submitted",
                        source: format!(
                            "run {} is not at an intent of generation {generation} (a bug in the caller)",
                            lease.key
                        )
                        .into(),
                    })
                }
            };
            row.rec.journal.phase = Phase::Submitted {
                submission,
                external_id: external_id.clone(),
            };
            row.rec.last_external_id = Some(external_id.clone());
            row.rec.updated_at_ms = now;
            if let Some(sub) = row.submissions.get_mut(&generation.0) {
                sub.external_id = Some(external_id.clone());
            }
            row.push(entry.clone(), now);
            Ok(())
        })
    }

    async fn record_finished(
        &self,
        lease: &Lease,
        outcome: &Outcome,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        self.with(Op::RecordFinished, |s, now| {
            let row = fenced(s, lease, true)?;
            row.rec.journal.phase = Phase::Finished {
                outcome: outcome.clone(),
            };
            row.rec.owner = None;
            row.rec.lease_expires_at_ms = None;
            row.rec.updated_at_ms = now;
            if let Some(g) = row.rec.last_generation {
                if let Some(sub) = row.submissions.get_mut(&g.0) {
                    sub.outcome = Some(outcome.clone());
                }
            }
            row.push(entry.clone(), now);
            Ok(())
        })
    }

    async fn append_history(&self, lease: &Lease, entry: &HistoryEntry) -> Result<(), StoreError> {
        self.with(Op::AppendHistory, |s, now| {
            fenced(s, lease, false)?.push(entry.clone(), now);
            Ok(())
        })
    }

    async fn request_cancel(&self, key: &RunKey) -> Result<bool, StoreError> {
        self.with(Op::RequestCancel, |s, now| {
            let row = s.runs.get_mut(key.as_str()).ok_or_else(|| not_found(key))?;
            if row.finished() {
                return Ok(false);
            }
            row.rec.journal.cancel_requested = true;
            row.rec.updated_at_ms = now;
            Ok(true)
        })
    }

    async fn forget_host(&self, host: &str, reason: &str) -> Result<Vec<RunKey>, StoreError> {
        self.with(Op::ForgetHost, |s, now| {
            let mut keys = Vec::new();
            for row in s.runs.values_mut() {
                let placed_here = row.rec.placement.as_ref().is_some_and(|p| p.host == host);
                if placed_here && !row.finished() {
                    row.rec.placement = None;
                    row.rec.owner = None;
                    row.rec.lease_expires_at_ms = None;
                    row.rec.updated_at_ms = now;
                    let e = entry(&row.rec, "host-forgotten", reason.to_string());
                    row.push(e, now);
                    keys.push(row.rec.key.clone());
                }
            }
            Ok(keys)
        })
    }

    fn store_id(&self) -> &StoreId {
        &self.id
    }

    async fn remove_run(&self, key: &RunKey) -> Result<tether_core::store::Remove, StoreError> {
        self.with(Op::RemoveRun, |s, now| {
            super::remove::remove_run(s, key, now)
        })
    }

    async fn prune(
        &self,
        before_ms: i64,
        dry_run: bool,
    ) -> Result<Vec<tether_core::store::RemovedRun>, StoreError> {
        self.with(Op::Prune, |s, now| {
            Ok(super::remove::prune(s, before_ms, dry_run, now))
        })
    }

    async fn rerun(&self, key: &RunKey, spec: Option<&RerunSpec>) -> Result<Rerun, StoreError> {
        self.with(Op::Rerun, |s, now| {
            let row = s.runs.get_mut(key.as_str()).ok_or_else(|| not_found(key))?;
            let previous = match &row.rec.journal.phase {
                Phase::Finished { outcome } if row.free(now) => outcome.label(),
                _ => return Ok(Rerun::NotFinished(row.read(now))),
            };
            let rec = &mut row.rec;
            rec.journal.phase = Phase::Empty;
            rec.journal.cancel_requested = false;
            rec.journal.after_generation = rec.last_generation;
            rec.owner = None;
            rec.lease_expires_at_ms = None;
            rec.placement = None;
            rec.updated_at_ms = now;
            if let Some(spec) = spec {
                rec.kind = spec.kind.clone();
                rec.spec = spec.spec.clone();
                rec.spec_name = spec.spec_name.clone();
                rec.spec_hash = spec.spec_hash.clone();
            }
            let with = spec
                .map(|s| format!(", with the spec from {}", s.spec_name))
                .unwrap_or_default();
            let reason = format!(
                "fresh instance after the earlier one {previous}{with}; its submissions and history are kept"
            );
            let e = entry(&row.rec, "rerun", reason);
            row.push(e, now);
            Ok(Rerun::Fresh(row.read(now)))
        })
    }
}
