//! The fleet as the web UI shows it: every owner that holds (or last held) the lease of an
//! unfinished run, with the runs it holds, their lease expiry and the owner's heartbeat age.
//!
//! ## Guarantees
//! - One store statement ([`Store::list_summaries`] over queued and running runs, no spec
//!   body), whatever the number of runs: the same listing `tether ls` reads.
//!
//! ## Assumptions
//! - Every worker renews all its leases to `now + ttl` at each heartbeat, with the lease TTL
//!   given here (the fleet's `lease_ttl`). The last heartbeat is then `expiry - ttl`.
//!
//! ## Caveats
//! - There is no worker table: an owner that holds no unfinished run is not listed, and the
//!   heartbeat age is derived from lease expiries (an owner running with another TTL shows a
//!   skewed age). `now_ms` is the caller's clock, the expiries the store's.
use std::{collections::BTreeMap, time::Duration};

use serde::Serialize;
use tether_core::{
    ids::RunKey,
    store::{RunQuery, RunState, StoreError},
    Store,
};

use super::{iso_time, SCHEMA_VERSION};

/// One run an owner holds.
#[derive(Debug, Clone, Serialize)]
pub struct HeldRunView {
    /// The run key.
    pub key: RunKey,
    /// `queued` (claimed, no job yet) or `running`.
    pub state: &'static str,
    /// The backend kind.
    pub kind: String,
    /// When the lease expires, ms since the Unix epoch (store clock).
    pub lease_expires_at_ms: Option<i64>,
    /// The same, ISO 8601 UTC.
    pub lease_expires_at: Option<String>,
    /// Whether the lease is alive (store clock).
    pub lease_alive: bool,
}

/// One owner (a worker, or a `tether run` process) and the unfinished runs it holds.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerView {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The owner id (`host:pid:…`).
    pub owner: String,
    /// Time since its last lease renewal, in ms (see the module's assumptions); `null`
    /// when none of its runs has an expiry.
    pub heartbeat_age_ms: Option<i64>,
    /// Whether any of its leases is alive.
    pub alive: bool,
    /// Its runs, soonest lease expiry first.
    pub runs: Vec<HeldRunView>,
}

/// The owners of unfinished runs, live ones first, then by owner id.
pub async fn fleet(
    store: &dyn Store,
    ttl: Duration,
    now_ms: i64,
) -> Result<Vec<WorkerView>, StoreError> {
    let query = RunQuery::new()
        .states(vec![RunState::Queued, RunState::Running])
        .limit(0);
    let page = store.list_summaries(&query).await?;
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let mut owners: BTreeMap<String, Vec<HeldRunView>> = BTreeMap::new();
    for run in &page.runs {
        let Some(owner) = &run.owner else { continue };
        owners
            .entry(owner.to_string())
            .or_default()
            .push(HeldRunView {
                key: run.key.clone(),
                state: run.state.as_str(),
                kind: run.kind.clone(),
                lease_expires_at_ms: run.lease_expires_at_ms,
                lease_expires_at: run.lease_expires_at_ms.map(iso_time),
                lease_alive: run.lease_alive,
            });
    }
    let mut workers: Vec<WorkerView> = owners
        .into_iter()
        .map(|(owner, mut runs)| {
            runs.sort_by_key(|r| (r.lease_expires_at_ms, r.key.as_str().to_string()));
            let last_renewal = runs
                .iter()
                .filter_map(|r| r.lease_expires_at_ms)
                .max()
                .map(|e| e.saturating_sub(ttl_ms));
            WorkerView {
                schema_version: SCHEMA_VERSION,
                heartbeat_age_ms: last_renewal.map(|at| now_ms.saturating_sub(at).max(0)),
                alive: runs.iter().any(|r| r.lease_alive),
                owner,
                runs,
            }
        })
        .collect();
    workers.sort_by(|a, b| b.alive.cmp(&a.alive).then_with(|| a.owner.cmp(&b.owner)));
    Ok(workers)
}
