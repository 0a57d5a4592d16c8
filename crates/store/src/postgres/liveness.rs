//! Owner liveness on PostgreSQL: a session-level advisory lock on the hash of the owner id,
//! held by a dedicated connection (outside the pool, never inside a transaction) while the
//! owner lives, and a row in `owner_liveness` saying that the owner holds one.
//!
//! ## Guarantees
//! - The server releases the lock when the session ends: the process died, or its connection
//!   broke. A claim or acquire then takes the owner's runs at once: its `free` condition tries
//!   the lock (transaction-scoped, released with the claim's commit) and bumps the epoch in the
//!   same statement, so fencing is unchanged.
//! - The row is written after the lock is taken: an owner without a row (an older build,
//!   liveness switched off) is judged by its lease alone.
//! - A frozen owner (SIGSTOP) keeps its session and its lock: taken over at lease expiry only.
//!
//! ## Caveats
//! - A transaction-mode pooler (pgbouncer `pool_mode = transaction`) hands the session to
//!   other clients: session locks are then meaningless. Switch liveness off there
//!   (`liveness = false` / `TETHER_LIVENESS=off`); the lease then decides, as before.
//! - If the liveness connection breaks while the owner lives (a network cut to the server),
//!   others may take its runs before its lease expires; its next fenced write fails with
//!   `LeaseLost` and it stands down, as after any takeover.
use tether_core::{
    ids::OwnerId,
    store::{Liveness, StoreError},
};

use super::{pool::map_err, sql};

impl super::PgStore {
    pub(super) async fn hold_liveness_impl(
        &self,
        owner: &OwnerId,
    ) -> Result<Option<Liveness>, StoreError> {
        let op = "hold_liveness";
        let (client, timeout) = self.pool.dedicated(op).await?;
        let bounded = |what: &'static str| StoreError::Unavailable {
            op,
            message: format!("{what} took longer than {timeout:?}"),
        };
        let row = tokio::time::timeout(timeout, client.query_one(sql::LIVENESS_LOCK, &[&owner.0]))
            .await
            .map_err(|_| bounded("taking the owner's liveness lock"))?
            .map_err(|e| map_err(op, e))?;
        let held: bool = row.try_get(0).map_err(|e| super::decode_err(op, e))?;
        if !held {
            return Ok(None);
        }
        tokio::time::timeout(timeout, client.execute(sql::LIVENESS_REGISTER, &[&owner.0]))
            .await
            .map_err(|_| bounded("registering the owner's liveness"))?
            .map_err(|e| map_err(op, e))?;
        // Dropping the client closes the session, and the server releases the lock.
        Ok(Some(Liveness::new(client)))
    }
}
