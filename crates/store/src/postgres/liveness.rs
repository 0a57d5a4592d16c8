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
//! - A session that ends while the owner lives (backend terminated, server restarted, network
//!   cut) is reopened and the lock taken again by a task of the guard: at once, then with a
//!   pause doubling up to 5 s while the server is unreachable. Dropping the guard stops it and
//!   closes the session.
//!
//! ## Caveats
//! - A transaction-mode pooler (pgbouncer `pool_mode = transaction`) hands the session to
//!   other clients: session locks are then meaningless. Switch liveness off there
//!   (`liveness = false` / `TETHER_LIVENESS=off`); the lease then decides, as before.
//! - Between the loss of the session and the lock taken again, the owner looks dead: a claimer
//!   or a rerun may take its runs before their lease expires. The owner notices nothing until
//!   its next fenced write (a renewal within TTL/3 at the latest), which fails with
//!   `LeaseLost`: it stands down without touching the job, as after any takeover. Runs nobody
//!   took in that window stay its own; once the lock is held again they are protected by it
//!   as before.
use std::time::Duration;

use tether_core::{
    ids::OwnerId,
    store::{Liveness, StoreError},
};
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use super::{
    pool::{connect_error, map_err, Listener},
    sql,
};

/// The longest pause between two attempts to take a lost liveness lock again.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Stops the keeping task (and so closes the session, releasing the lock) when dropped.
struct Keeping(JoinHandle<()>);

impl Drop for Keeping {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A session holding the lock, and its connection task (ends with the session).
type Session = (Client, JoinHandle<()>);

impl super::PgStore {
    pub(super) async fn hold_liveness_impl(
        &self,
        owner: &OwnerId,
    ) -> Result<Option<Liveness>, StoreError> {
        let dialer = self.pool.listener();
        let Some(first) = take(&dialer, owner).await? else {
            return Ok(None);
        };
        let owner = owner.clone();
        let task = tokio::spawn(async move {
            let mut session = first;
            loop {
                // The client is kept until its session ends: dropping it would end the session.
                let (_client, ended) = session;
                let _ = ended.await;
                let mut pause = Duration::from_millis(100);
                session = loop {
                    // Else held by a claimer's transaction for a moment, or the server is away.
                    if let Ok(Some(s)) = take(&dialer, &owner).await {
                        break s;
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                };
            }
        });
        Ok(Some(Liveness::new(Keeping(task))))
    }
}

/// Opens a session, takes `owner`'s lock on it and registers the owner; None if the lock is
/// held elsewhere.
async fn take(dialer: &Listener, owner: &OwnerId) -> Result<Option<Session>, StoreError> {
    let op = "hold_liveness";
    let timeout = dialer.timeout;
    let (client, ended) =
        match tokio::time::timeout(timeout, dialer.config.connect(dialer.tls.clone())).await {
            Err(_) => {
                return Err(StoreError::Unavailable {
                    op,
                    message: format!(
                        "connecting to {} timed out after {timeout:?}",
                        dialer.location
                    ),
                })
            }
            Ok(Err(e)) => return Err(connect_error(op, &dialer.location, e)),
            Ok(Ok((client, connection))) => (
                client,
                tokio::spawn(async move {
                    let _ = connection.await;
                }),
            ),
        };
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
    Ok(Some((client, ended)))
}
