//! Taking, renewing, releasing and claiming leases: one statement each, times from the server.

use std::time::Duration;

use tether_core::{
    ids::{Epoch, OwnerId, RunKey},
    store::{Acquire, ClaimFilter, Lease, Renewed, RunRecord, StoreError},
};

use super::{decode_err, lease_lost, renewal_timeout, sql};
use crate::record::{self, ttl_ms};

/// The bound of each statement of `renew_all`. Looser than `renew`'s TTL/5, which guards an
/// action taken right after it: a chunk extends its leases from the time it starts, so an
/// answer that comes late (a worker process too busy to read it at once) is still good, and
/// failing it would drop the lane's connection and cost a reconnect on an overloaded machine.
/// Within one beat, so a hung statement is still cut off before the next.
fn bulk_renewal_timeout(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_millis(100))
}

/// Rows renewed per statement by `renew_all`: short enough that the row locks it holds delay a
/// run's own write by milliseconds, large enough that 10,000 leases take 20 statements.
pub const RENEW_CHUNK_ROWS: usize = 500;

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

    /// Renews in chunks of [`RENEW_CHUNK_ROWS`], one short statement each, the least time left
    /// first: one statement over every held row (10,000 at scale) held all their row locks for
    /// its whole run (~0.5 s idle, past its TTL/5 bound under load), stalling the runs' own
    /// writes and failing the renewal. Each chunk is bounded by TTL/3 on its own; a failed
    /// chunk fails the call, but the chunks before it stay renewed, and the next beat starts
    /// with the rows this one did not reach (they have the least time left). All on the
    /// renewal lane (`pool::lane`): never queued behind the runs' own writes.
    pub(super) async fn renew_all_impl(
        &self,
        owner: &OwnerId,
        ttl: Duration,
    ) -> Result<Vec<Renewed>, StoreError> {
        let op = "renew_all";
        let held = self
            .pool
            .query_lane_within(op, sql::HELD, &[&owner.0], bulk_renewal_timeout(ttl))
            .await?;
        let keys = held
            .iter()
            .map(|r| r.try_get::<_, String>(0).map_err(|e| decode_err(op, e)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(RENEW_CHUNK_ROWS) {
            let rows = self
                .pool
                .query_lane_within(
                    op,
                    sql::RENEW_CHUNK,
                    &[&owner.0, &ttl_ms(ttl), &chunk],
                    bulk_renewal_timeout(ttl),
                )
                .await?;
            for r in &rows {
                let key: String = r.try_get(0).map_err(|e| decode_err(op, e))?;
                let epoch: i64 = r.try_get(1).map_err(|e| decode_err(op, e))?;
                let cancel_requested: bool = r.try_get(2).map_err(|e| decode_err(op, e))?;
                out.push(Renewed {
                    key: record::parse_key(self.loc(), key)?,
                    epoch: Epoch(epoch),
                    cancel_requested,
                });
            }
        }
        Ok(out)
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
