//! Claim wake-ups on PostgreSQL: a session of its own that `LISTEN`s on `tether_claimable`,
//! which triggers on `runs` notify at the commit of a queued run's creation, of a release and
//! of a rerun (`sql::INSTALL_CLAIMABLE_TRIGGERS`, installed here when missing).
//!
//! ## Guarantees
//! - Best effort only: the worker keeps its claim poll. A lost notification, a broken session
//!   or a server that never notifies costs at most the poll interval, never a run.
//! - A broken session is reopened (after 1 s, then up to every 30 s); each reopening wakes the
//!   claimer once, for what may have been notified while nobody listened.
//!
//! ## Caveats
//! - A dead owner cannot notify (PostgreSQL runs nothing when a session ends): its runs are
//!   found by the claimers' poll, through its released liveness lock.
//! - Behind a transaction-mode pooler (pgbouncer `pool_mode = transaction`) `LISTEN` is lost
//!   with the server session it ran on: no wake-up arrives and the poll takes over, as before.
//!   Session mode, or a direct connection for the workers, keeps the wake-ups.
use std::{sync::Arc, time::Duration};

use tether_core::store::{ClaimWakeups, StoreError};
use tokio::sync::Notify;

use super::{
    pool::{map_err, Listener},
    sql,
};

/// Aborts the listening task (and so closes its session) when the wake-ups are dropped.
struct Listening(tokio::task::JoinHandle<()>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl super::PgStore {
    pub(super) async fn claim_wakeups_impl(&self) -> Result<Option<ClaimWakeups>, StoreError> {
        let notify = Arc::new(Notify::new());
        let pool = self.pool.listener();
        // The first session is opened here, so a store that cannot listen says so at once.
        let (mut client, task) = open(&pool, &notify).await?;
        if let Err(e) = install_triggers(&mut client).await {
            task.abort();
            return Err(e);
        }
        let first = (client, task);
        let wake = notify.clone();
        let task = tokio::spawn(async move {
            let mut session = first;
            let mut pause = Duration::from_secs(1);
            loop {
                // The client is kept until its session ends: dropping it would end the session.
                let (_client, task) = session;
                let _ = task.await;
                session = loop {
                    tokio::time::sleep(pause).await;
                    match open(&pool, &wake).await {
                        Ok(s) => break s,
                        // The store is down: the claims fail and say so; nothing to add here.
                        Err(_) => pause = (pause * 2).min(Duration::from_secs(30)),
                    }
                };
                pause = Duration::from_secs(1);
                wake.notify_one();
            }
        });
        Ok(Some(ClaimWakeups::new(notify, Listening(task))))
    }
}

async fn open(
    pool: &Listener,
    notify: &Arc<Notify>,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), StoreError> {
    let notify = notify.clone();
    pool.listen("claim_wakeups", sql::CLAIMABLE_CHANNEL, move || {
        notify.notify_one()
    })
    .await
}

/// Creates the notifying triggers if they are missing, under the migration lock (two workers
/// starting at once would otherwise both create them, and one would fail).
async fn install_triggers(client: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    let op = "claim_wakeups";
    let tx = client.transaction().await.map_err(|e| map_err(op, e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&sql::MIGRATION_LOCK])
        .await
        .map_err(|e| map_err(op, e))?;
    tx.batch_execute(sql::INSTALL_CLAIMABLE_TRIGGERS)
        .await
        .map_err(|e| map_err(op, e))?;
    tx.commit().await.map_err(|e| map_err(op, e))
}
