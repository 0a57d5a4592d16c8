//! Taking, renewing, releasing and claiming leases: one statement each, times from the server.

use std::time::Duration;

use tether_core::{
    ids::{Epoch, OwnerId, RunKey},
    store::{Acquire, ClaimFilter, Lease, Renewed, RunRecord, StoreError},
};

use super::{decode_err, lease_lost, renewal_timeout, sql};
use crate::record::{self, ttl_ms};

impl super::PgStore {
    pub(super) async fn acquire_impl(
        &self,
        key: &RunKey,
        owner: &OwnerId,
        ttl: Duration,
    ) -> Result<Acquire, StoreError> {
        let op = "acquire";
        let row = self
            .pool
            .query_opt(op, sql::ACQUIRE, &[&key.as_str(), &owner.0, &ttl_ms(ttl)])
            .await?;
        match row {
            Some(r) => {
                let rec = self.run(&r)?;
                Ok(Acquire::Acquired(
                    Lease {
                        key: key.clone(),
                        owner: owner.clone(),
                        epoch: rec.epoch,
                    },
                    rec,
                ))
            }
            None => Ok(Acquire::Held(self.must_get(op, key).await?)),
        }
    }

    pub(super) async fn renew_impl(&self, lease: &Lease, ttl: Duration) -> Result<(), StoreError> {
        let n = self
            .pool
            .query_within(
                "renew",
                sql::RENEW,
                &[
                    &lease.key.as_str(),
                    &lease.epoch.0,
                    &lease.owner.0,
                    &ttl_ms(ttl),
                ],
                renewal_timeout(ttl),
            )
            .await?
            .len();
        if n == 0 {
            return Err(lease_lost(lease));
        }
        Ok(())
    }

    pub(super) async fn renew_all_impl(
        &self,
        owner: &OwnerId,
        ttl: Duration,
    ) -> Result<Vec<Renewed>, StoreError> {
        let op = "renew_all";
        let rows = self
            .pool
            .query_within(
                op,
                sql::RENEW_ALL,
                &[&owner.0, &ttl_ms(ttl)],
                renewal_timeout(ttl),
            )
            .await?;
        rows.iter()
            .map(|r| {
                let key: String = r.try_get(0).map_err(|e| decode_err(op, e))?;
                let epoch: i64 = r.try_get(1).map_err(|e| decode_err(op, e))?;
                let cancel_requested: bool = r.try_get(2).map_err(|e| decode_err(op, e))?;
                Ok(Renewed {
                    key: record::parse_key(self.loc(), key)?,
                    epoch: Epoch(epoch),
                    cancel_requested,
                })
            })
            .collect()
    }

    pub(super) async fn release_impl(&self, lease: &Lease) -> Result<(), StoreError> {
        self.fenced(
            lease,
            "release",
            sql::RELEASE,
            &[&lease.key.as_str(), &lease.epoch.0, &lease.owner.0],
        )
        .await
    }

    pub(super) async fn claim_impl(
        &self,
        owner: &OwnerId,
        ttl: Duration,
        limit: usize,
        filter: &ClaimFilter,
    ) -> Result<Vec<(Lease, RunRecord)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let op = "claim";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .pool
            .query(
                op,
                sql::CLAIM,
                &[&limit, &owner.0, &ttl_ms(ttl), &filter.host, &filter.kinds],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            match self.decode(r) {
                Ok(rec) => out.push((
                    Lease {
                        key: rec.key.clone(),
                        owner: owner.clone(),
                        epoch: rec.epoch,
                    },
                    rec,
                )),
                // Set aside (and give the lease back) so no claim takes it again: one row this
                // build cannot read must not stall the fleet or churn epochs forever.
                Err(q) => {
                    self.pool
                        .execute(op, sql::QUARANTINE, &[&q.key, &q.reason, &owner.0])
                        .await?;
                }
            }
        }
        Ok(out)
    }
}
