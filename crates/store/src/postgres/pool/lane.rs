//! The renewal lane: one connection kept apart from the pool's slots for a worker's renewals.
//!
//! Statements on one connection run one after the other. A worker driving thousands of runs
//! keeps every slot's pipeline deep with the runs' own writes, so a renewal sent there waits
//! behind them, and `renew_all`, which is many short statements (see `leases.rs`), would pay
//! that wait once per statement and pass its bound or let leases expire. On the lane it waits
//! only for the server.
//!
//! ## Guarantees
//! - Opened on first use only (a process that never renews in bulk, such as `tether run`,
//!   never opens it), bounded by the connect timeout; a broken lane is replaced on next use.
//! - The same bounds and classification as the pool's statements (`Pool::settle`).
use std::sync::Arc;

use tether_core::store::StoreError;
use tokio_postgres::{types::ToSql, Row};

use super::{Conn, Pool};

impl Pool {
    /// Runs one statement on the renewal lane, bounded by `timeout` (at most the query
    /// timeout), and returns its rows.
    pub(crate) async fn query_lane_within(
        &self,
        op: &'static str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
        timeout: std::time::Duration,
    ) -> Result<Vec<Row>, StoreError> {
        let conn = self.lane_conn(op).await?;
        self.query_on(&conn, op, sql, params, timeout).await
    }

    async fn lane_conn(&self, op: &'static str) -> Result<Arc<Conn>, StoreError> {
        let mut lane = self.lane.lock().await;
        self.reuse_or_connect(&mut lane, op).await
    }
}
