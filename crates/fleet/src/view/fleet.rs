//! The fleet as the web UI and `/api/v1/fleet` show it: every registered worker, idle or not,
//! and every other owner that holds (or last held) the lease of an unfinished run, with the
//! runs each holds, their lease expiry and the owner's heartbeat age.
//!
//! ## Guarantees
//! - Two store statements whatever the number of runs and workers: the worker registry
//!   ([`Store::list_workers`]) and [`Store::list_summaries`] over queued and running runs (no
//!   spec body), the listing `tether ls` reads.
//! - A registered worker's heartbeat age is its registry row's, by the store's clock; it is
//!   `gone` once that age passes [`GONE_AFTER_TTLS`] lease TTLs (killed, frozen or cut off).
//!
//! ## Assumptions
//! - An unregistered owner (`tether run`, an older worker) renews its leases to `now + ttl`
//!   with the lease TTL given here: its last renewal is then `expiry - ttl`.
//!
//! ## Caveats
//! - An unregistered owner's age is derived from lease expiries (another TTL skews it), with
//!   `now_ms` the caller's clock and the expiries the store's; it is `gone` when no lease of
//!   it is alive.
use std::{collections::BTreeMap, time::Duration};

use serde::Serialize;
use tether_core::{
    ids::RunKey,
    store::{RunQuery, RunState, StoreError, WorkerRecord},
    Store,
};

use super::{iso_time, SCHEMA_VERSION};

/// A registered worker whose heartbeat is older than this many lease TTLs is `gone` (its
/// leases expired one TTL ago at the latest), and `tether prune` removes its row.
pub const GONE_AFTER_TTLS: u32 = 3;

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

/// One owner (a registered worker, or a `tether run` process) and the unfinished runs it holds.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerView {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The owner id (`host:pid:…`).
    pub owner: String,
    /// Whether it is in the worker registry (a `tether worker`); `false` for other owners.
    pub registered: bool,
    /// Its host, pid, concurrency and version (registered workers only, else `null`).
    pub host: Option<String>,
    /// Its process id.
    pub pid: Option<u32>,
    /// How many runs it drives at most.
    pub concurrency: Option<u32>,
    /// The tether version it runs.
    pub version: Option<String>,
    /// Its first heartbeat, ISO 8601 UTC (registered workers only).
    pub started_at: Option<String>,
    /// Time since its last heartbeat, in ms (see the module's guarantees); `null` for an
    /// unregistered owner none of whose runs has an expiry.
    pub heartbeat_age_ms: Option<i64>,
    /// Whether it is alive: a registered worker heard from within [`GONE_AFTER_TTLS`] TTLs,
    /// another owner with a live lease.
    pub alive: bool,
    /// `!alive`: killed, frozen or cut off (a registered worker's row waits for `tether prune`).
    pub gone: bool,
    /// Its runs, soonest lease expiry first.
    pub runs: Vec<HeldRunView>,
}

impl WorkerView {
    fn of(
        owner: String,
        registered: Option<&WorkerRecord>,
        mut runs: Vec<HeldRunView>,
        ttl_ms: i64,
        now_ms: i64,
    ) -> WorkerView {
        runs.sort_by_key(|r| (r.lease_expires_at_ms, r.key.as_str().to_string()));
        let (heartbeat_age_ms, alive) = match registered {
            Some(w) => {
                let gone_after = ttl_ms.saturating_mul(i64::from(GONE_AFTER_TTLS));
                (Some(w.heartbeat_age_ms), w.heartbeat_age_ms <= gone_after)
            }
            None => {
                let last_renewal = runs
                    .iter()
                    .filter_map(|r| r.lease_expires_at_ms)
                    .max()
                    .map(|e| e.saturating_sub(ttl_ms));
                (
                    last_renewal.map(|at| now_ms.saturating_sub(at).max(0)),
                    runs.iter().any(|r| r.lease_alive),
                )
            }
        };
        WorkerView {
            schema_version: SCHEMA_VERSION,
            owner,
            registered: registered.is_some(),
            host: registered.map(|w| w.beat.host.clone()),
            pid: registered.map(|w| w.beat.pid),
            concurrency: registered.map(|w| w.beat.concurrency),
            version: registered.map(|w| w.beat.version.clone()),
            started_at: registered.map(|w| iso_time(w.started_at_ms)),
            heartbeat_age_ms,
            alive,
            gone: !alive,
            runs,
        }
    }
}

/// The registered workers and the owners of unfinished runs, live ones first, then by owner id.
pub async fn fleet(
    store: &dyn Store,
    ttl: Duration,
    now_ms: i64,
) -> Result<Vec<WorkerView>, StoreError> {
    let registry: BTreeMap<String, WorkerRecord> = store
        .list_workers()
        .await?
        .into_iter()
        .map(|w| (w.beat.owner.0.clone(), w))
        .collect();
    let query = RunQuery::new()
        .states(vec![RunState::Queued, RunState::Running])
        .limit(0);
    let page = store.list_summaries(&query).await?;
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let mut owners: BTreeMap<String, Vec<HeldRunView>> =
        registry.keys().map(|o| (o.clone(), Vec::new())).collect();
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
        .map(|(owner, runs)| {
            let registered = registry.get(&owner);
            WorkerView::of(owner, registered, runs, ttl_ms, now_ms)
        })
        .collect();
    workers.sort_by(|a, b| b.alive.cmp(&a.alive).then_with(|| a.owner.cmp(&b.owner)));
    Ok(workers)
}
