//! Taking, renewing, releasing and claiming leases.

use std::time::Duration;

use rusqlite::{params, OptionalExtension};
use tether_core::{
    ids::{Epoch, OwnerId, RunKey},
    store::{Acquire, ClaimFilter, Lease, Renewed, RunRecord, StoreError},
};

use super::{
    fenced::{entry, fenced_execute, fenced_generation, insert_history, must_get_run, take_lease},
    liveness,
    open::{map_err, now_ms},
    rows::{read_run, Decoded},
    sql,
};
use crate::record::{self, ttl_ms};

impl super::SqliteStore {
    pub(super) async fn acquire_impl(
        &self,
        key: &RunKey,
        owner: &OwnerId,
        ttl: Duration,
    ) -> Result<Acquire, StoreError> {
        let (key, owner) = (key.clone(), owner.clone());
        let dir = self.owners_dir();
        let register = self.unregistered(&owner);
        let who = owner.clone();
        let acquired = self
            .write("acquire", move |tx, loc| {
                if register {
                    liveness::register(tx, loc, &dir, &owner)?;
                }
                type State = (Option<String>, Option<i64>, String, i64, Option<i64>);
                let state: Option<State> = tx
                    .prepare_cached(sql::LEASE_STATE)
                    .and_then(|mut s| {
                        s.query_row([key.as_str()], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                        })
                        .optional()
                    })
                    .map_err(|e| map_err("acquire", loc, e))?;
                let (prev_owner, prev_exp, phase, epoch, generation) =
                    state.ok_or_else(|| StoreError::NotFound { key: key.clone() })?;
                let free = prev_owner.is_none()
                    || prev_exp.is_none_or(|e| e <= now_ms())
                    || liveness::owner_gone(tx, loc, &dir, prev_owner.as_deref())?;
                if phase == record::PHASE_FINISHED || !free {
                    return Ok(Acquire::Held(must_get_run(tx, "acquire", loc, &key)?));
                }
                let epoch = take_lease(
                    tx,
                    "acquire",
                    loc,
                    key.as_str(),
                    epoch,
                    prev_owner.as_deref(),
                    prev_exp,
                    generation,
                    &owner,
                    ttl,
                    "lease-acquired",
                )?;
                let rec = must_get_run(tx, "acquire", loc, &key)?;
                Ok(Acquire::Acquired(
                    Lease {
                        key: key.clone(),
                        owner: owner.clone(),
                        epoch,
                    },
                    rec,
                ))
            })
            .await?;
        if register {
            self.registered(&who);
        }
        Ok(acquired)
    }

    pub(super) async fn renew_impl(&self, lease: &Lease, ttl: Duration) -> Result<(), StoreError> {
        let lease = lease.clone();
        self.write("renew", move |tx, loc| {
            let exp = now_ms().saturating_add(ttl_ms(ttl));
            fenced_execute(
                tx,
                "renew",
                loc,
                &lease,
                sql::RENEW,
                params![lease.key.as_str(), lease.epoch.0, lease.owner.0, exp],
            )
        })
        .await
    }

    pub(super) async fn renew_all_impl(
        &self,
        owner: &OwnerId,
        ttl: Duration,
    ) -> Result<Vec<Renewed>, StoreError> {
        let owner = owner.clone();
        self.write("renew_all", move |tx, loc| {
            let exp = now_ms().saturating_add(ttl_ms(ttl));
            let rows: Vec<(String, i64, bool)> = tx
                .prepare_cached(sql::RENEW_ALL)
                .and_then(|mut s| {
                    s.query_map(params![owner.0, exp], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?
                    .collect()
                })
                .map_err(|e| map_err("renew_all", loc, e))?;
            rows.into_iter()
                .map(|(k, e, c)| {
                    Ok(Renewed {
                        key: record::parse_key(loc, k)?,
                        epoch: Epoch(e),
                        cancel_requested: c,
                    })
                })
                .collect()
        })
        .await
    }

    pub(super) async fn release_impl(&self, lease: &Lease) -> Result<(), StoreError> {
        let lease = lease.clone();
        self.write("release", move |tx, loc| {
            let generation = fenced_generation(
                tx,
                "release",
                loc,
                &lease,
                sql::RELEASE,
                params![lease.key.as_str(), lease.epoch.0, lease.owner.0, now_ms()],
            )?;
            let reason = format!("lease released by {}", lease.owner);
            insert_history(
                tx,
                "release",
                loc,
                lease.key.as_str(),
                &entry(lease.epoch, generation, "released", reason),
            )
        })
        .await
    }

    pub(super) async fn claim_impl(
        &self,
        owner: &OwnerId,
        ttl: Duration,
        limit: usize,
        filter: &ClaimFilter,
    ) -> Result<Vec<(Lease, RunRecord)>, StoreError> {
        let owner = owner.clone();
        let host = filter.host.clone();
        let kinds = filter
            .kinds
            .as_ref()
            .map(|k| serde_json::Value::from(k.clone()).to_string());
        if limit == 0 {
            return Ok(Vec::new());
        }
        let dir = self.owners_dir();
        let register = self.unregistered(&owner);
        let who = owner.clone();
        let claimed = self
            .write("claim", move |tx, loc| {
                if register {
                    liveness::register(tx, loc, &dir, &owner)?;
                }
                let gone = liveness::gone_owners(tx, loc, &dir)?;
                type Cand = (String, Option<String>, Option<i64>, i64, Option<i64>);
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let cands: Vec<Cand> = tx
                    .prepare_cached(sql::CLAIM_CANDIDATES)
                    .and_then(|mut s| {
                        s.query_map(params![now_ms(), limit, host, kinds, gone], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                        })?
                        .collect()
                    })
                    .map_err(|e| map_err("claim", loc, e))?;
                let mut out = Vec::with_capacity(cands.len());
                for (key, prev_owner, prev_exp, epoch, generation) in cands {
                    // Decode before taking: a row this build cannot read is set aside (and
                    // committed with this claim) instead of failing the claim for every run.
                    if let Some(Decoded::Quarantined(q)) = read_run(tx, "claim", loc, &key)? {
                        tx.prepare_cached(sql::QUARANTINE)
                            .and_then(|mut s| s.execute(params![key, q.reason, now_ms()]))
                            .map_err(|e| map_err("claim", loc, e))?;
                        continue;
                    }
                    let epoch = take_lease(
                        tx,
                        "claim",
                        loc,
                        &key,
                        epoch,
                        prev_owner.as_deref(),
                        prev_exp,
                        generation,
                        &owner,
                        ttl,
                        "claimed",
                    )?;
                    let key = record::parse_key(loc, key)?;
                    let rec = must_get_run(tx, "claim", loc, &key)?;
                    out.push((
                        Lease {
                            key,
                            owner: owner.clone(),
                            epoch,
                        },
                        rec,
                    ));
                }
                Ok(out)
            })
            .await?;
        if register {
            self.registered(&who);
        }
        Ok(claimed)
    }
}
