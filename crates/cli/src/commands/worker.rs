//! `tether worker`: claims queued or orphaned runs and drives them concurrently.
//!
//! ## Guarantees
//! - Each claim bumps the run's epoch; the engine then applies the resume decision (reconnect,
//!   return, adopt, resubmit), never a blind resubmission.
//! - Leases are renewed for all runs of this worker in one statement per beat (TTL/3). A run
//!   missing from the renewed set was taken over: it is dropped silently, nothing is cancelled.
//!   Only runs claimed before the renewal started are judged by it (a claim committing while the
//!   renewal runs is not in its result, and must not be mistaken for a takeover).
//! - A run whose task panics is released at once (its lease, with a log line saying why), so
//!   another worker or `tether run` takes it over: a panic never leaves a run held but undriven.
//! - SIGTERM/Ctrl-C: stop claiming, release every lease at once (others take over without
//!   waiting for expiry), leave the external jobs running.
//! - While the database is unreachable the worker keeps polling its jobs; every write and every
//!   action on a job waits for a fenced write, so nothing is done to a run it may have lost.
//!   When the database is back the next renewal tells which leases survived.
//!
//! ## Caveats
//! - A run that only polls a remote backend costs one task and one timer. Local jobs are bounded
//!   by `--local-slots`; a local run in recovery mode takes all of them.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tether_core::{
    engine::{Engine, EngineError, Event, Finish, Observer, RunSignals},
    ids::{Epoch, OwnerId, RunKey},
    store::{ClaimFilter, Lease, RunRecord},
    Decision, Store,
};
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::Semaphore,
    task::JoinSet,
};

use super::{CliError, Exit};
use crate::{
    args::WorkerArgs,
    context::{owner_id, Ctx},
};

mod cache;
mod slots;

use cache::ConnectorCache;

/// Most runs a worker claims in one statement.
const CLAIM_BATCH: usize = 64;

/// A run this worker drives.
struct InFlight {
    epoch: Epoch,
    signals: Arc<RunSignals>,
    /// When it entered the table (after its claim committed): a renewal that started earlier
    /// cannot have seen the claim, so it says nothing about this run.
    since: Instant,
}

type Table = Arc<Mutex<HashMap<RunKey, InFlight>>>;

/// The driving tasks, and the lease each one holds (a panicked task returns nothing, so its
/// run is found by task id).
#[derive(Default)]
struct Tasks {
    set: JoinSet<(RunKey, Result<Finish, EngineError>)>,
    leases: HashMap<tokio::task::Id, Lease>,
}

pub async fn worker(ctx: &Ctx, args: WorkerArgs) -> Result<Exit, CliError> {
    if args.concurrency == 0 || args.local_slots == 0 {
        return Err(CliError::usage(
            "--concurrency and --local-slots must be at least 1",
        ));
    }
    let store = ctx.store().await?;
    let owner = owner_id("worker");
    let ttl = ctx.config.leases.ttl;
    diag!(
        "tether worker {owner}: state {}, concurrency {}, local slots {}, lease ttl {}ms",
        tether_store::redact(&ctx.config.state),
        args.concurrency,
        args.local_slots,
        ttl.as_millis()
    );
    let table: Table = Arc::default();
    let filter = claim_filter(ctx, &args)?;
    let slots = Arc::new(Semaphore::new(args.local_slots));
    let mut tasks = Tasks::default();
    let heart = tokio::spawn(heartbeat(store.clone(), owner.clone(), ttl, table.clone()));

    let mut term = signal(SignalKind::terminate())
        .map_err(|e| CliError::usage(format!("cannot watch SIGTERM: {e}")))?;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle_since: Option<Instant> = None;
    let mut connectors = ConnectorCache::default();
    let mut backlog = false;
    let code = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break Exit::Interrupted,
            _ = term.recv() => break Exit::Interrupted,
            Some(done) = tasks.set.join_next_with_id(), if !tasks.set.is_empty() => {
                match done {
                    Ok((id, (key, result))) => {
                        tasks.leases.remove(&id);
                        table.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                        report(&key, &result);
                    }
                    Err(e) => {
                        if let Some(lease) = tasks.leases.remove(&e.id()) {
                            table.lock().unwrap_or_else(|p| p.into_inner()).remove(&lease.key);
                            diag!(
                                "tether worker: {}: its task {}; releasing the run so another \
                                 owner takes it over (the job keeps running)",
                                lease.key,
                                if e.is_panic() { "panicked" } else { "was cancelled" }
                            );
                            if let Err(e) = store.release(&lease).await {
                                diag!("tether worker: {}: release failed ({e}); the heartbeat releases it", lease.key);
                            }
                        }
                    }
                }
                continue;
            }
            _ = tick.tick(), if !backlog => {}
            _ = std::future::ready(()), if backlog => {}
        }
        let free = args.concurrency.saturating_sub(tasks.set.len());
        backlog = false;
        if free > 0 {
            // Batches of at most CLAIM_BATCH let a fleet share a burst of queued runs; a full
            // batch means more may be waiting, so claim again at once instead of at the next tick.
            let batch = free.min(CLAIM_BATCH);
            match store.claim(&owner, ttl, batch, &filter).await {
                Ok(claimed) => {
                    backlog = claimed.len() == batch;
                    for (lease, record) in claimed {
                        start_run(
                            ctx,
                            &store,
                            &table,
                            &slots,
                            &mut connectors,
                            &mut tasks,
                            args.local_slots,
                            lease,
                            record,
                        );
                    }
                }
                Err(e) => diag!("tether worker: claiming failed (will retry): {e}"),
            }
        }
        if args.exit_when_idle {
            if tasks.set.is_empty() && nothing_left(store.as_ref(), &filter).await {
                let since = *idle_since.get_or_insert_with(Instant::now);
                // Runs of dead owners become claimable only when their lease expires.
                if since.elapsed() > ttl {
                    break Exit::Succeeded;
                }
            } else {
                idle_since = None;
            }
        }
    };
    heart.abort();
    if code == Exit::Interrupted {
        diag!(
            "tether worker: stopping: releasing {} runs, their jobs keep running",
            tasks.set.len()
        );
    }
    tasks.set.abort_all();
    while tasks.set.join_next().await.is_some() {}
    let held: Vec<(RunKey, Epoch)> = table
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, f)| (k.clone(), f.epoch))
        .collect();
    for (key, epoch) in held {
        let lease = Lease {
            key,
            owner: owner.clone(),
            epoch,
        };
        let _ = store.release(&lease).await;
    }
    Ok(code)
}

#[allow(clippy::too_many_arguments)]
fn start_run(
    ctx: &Ctx,
    store: &Arc<dyn Store>,
    table: &Table,
    slots: &Arc<Semaphore>,
    connectors: &mut ConnectorCache,
    tasks: &mut Tasks,
    local_slots: usize,
    lease: Lease,
    record: RunRecord,
) {
    let key = lease.key.clone();
    let (connector, policy) = match connectors.get(&record, || {
        let built = ctx.connector_for(&record)?;
        Ok((built.connector, built.policy))
    }) {
        Ok(b) => b,
        Err(e) => {
            // A spec this worker cannot build (a bad spec: runs of kinds it does not know are
            // never claimed, see `claim_filter`): leave it to others.
            diag!("tether worker: {key}: cannot build its connector here: {e}; releasing it");
            let store = store.clone();
            tokio::spawn(async move {
                let _ = store.release(&lease).await;
            });
            return;
        }
    };
    let connector = slots::limit_local(connector, slots.clone(), local_slots);
    let signals = RunSignals::new();
    if record.journal.cancel_requested {
        signals.request_cancel();
    }
    table.lock().unwrap_or_else(|p| p.into_inner()).insert(
        key.clone(),
        InFlight {
            epoch: lease.epoch,
            signals: signals.clone(),
            since: Instant::now(),
        },
    );
    let engine = Engine::new(
        store.clone(),
        connector,
        policy,
        ctx.config.leases,
        Arc::new(WorkerLog),
    );
    let held = lease.clone();
    let handle = tasks.set.spawn(async move {
        let result = engine.drive(&lease, record, signals).await;
        if let Ok(Finish::GaveUp { .. } | Finish::Elsewhere(_)) = &result {
            let _ = engine.store().release(&lease).await;
        }
        (key, result)
    });
    tasks.leases.insert(handle.id(), held);
}

/// Renews every lease of this worker in one statement per beat and tells the drivers what
/// changed: a run missing from the answer was taken over (stand down), a flagged one is cancelled.
async fn heartbeat(store: Arc<dyn Store>, owner: OwnerId, ttl: Duration, table: Table) {
    let mut beat = tokio::time::interval(ttl / 3);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut down_since: Option<Instant> = None;
    // Runs the store says we hold but that we no longer drive (a release that failed while the
    // store was down, a driver that stopped on an error). Renewing them forever would keep every
    // other worker away, so a run seen so in two beats in a row is released.
    let mut undriven: HashMap<RunKey, Epoch> = HashMap::new();
    loop {
        beat.tick().await;
        let asked = Instant::now();
        match store.renew_all(&owner, ttl).await {
            Ok(held) => {
                if let Some(since) = down_since.take() {
                    diag!(
                        "tether worker: state store back after {:.1}s; re-validated leases",
                        since.elapsed().as_secs_f32()
                    );
                }
                let held: HashMap<RunKey, (Epoch, bool)> = held
                    .into_iter()
                    .map(|r| (r.key, (r.epoch, r.cancel_requested)))
                    .collect();
                let mut release = Vec::new();
                {
                    let table = table.lock().unwrap_or_else(|p| p.into_inner());
                    let now_undriven: HashMap<RunKey, Epoch> = held
                        .iter()
                        .filter(|(k, _)| !table.contains_key(*k))
                        .map(|(k, (e, _))| (k.clone(), *e))
                        .collect();
                    for (k, e) in &now_undriven {
                        if undriven.get(k) == Some(e) {
                            release.push(Lease {
                                key: k.clone(),
                                owner: owner.clone(),
                                epoch: *e,
                            });
                        }
                    }
                    undriven = now_undriven;
                }
                for lease in release {
                    diag!(
                        "tether worker: {}: held but not driven: releasing it",
                        lease.key
                    );
                    let _ = store.release(&lease).await;
                }
                let table = table.lock().unwrap_or_else(|p| p.into_inner());
                // Runs claimed while the renewal was in flight are judged at the next beat: on
                // PostgreSQL the renewal's snapshot may predate their claim's commit.
                for (key, run) in table.iter().filter(|(_, run)| run.since < asked) {
                    match held.get(key) {
                        Some((epoch, cancel)) if *epoch == run.epoch => {
                            if *cancel {
                                run.signals.request_cancel();
                            }
                        }
                        // Not renewed: another owner has it (or it just finished). Drop it silently.
                        _ => run.signals.mark_lost(),
                    }
                }
            }
            Err(e) => {
                if down_since.is_none() {
                    diag!("tether worker: cannot renew leases ({e}); polling goes on, writes wait");
                    down_since = Some(Instant::now());
                }
            }
        }
    }
}

/// No run is left that this worker could ever claim: every run is finished, of a kind it does
/// not build, or bound to another host (those wait for other workers; waiting for them here
/// would keep `--exit-when-idle` from ever exiting).
async fn nothing_left(store: &dyn Store, filter: &ClaimFilter) -> bool {
    match store.list_runs().await {
        Ok(runs) => runs.iter().all(|r| {
            !filter.admits(&r.kind, r.placement.as_ref())
                || matches!(
                    r.journal.phase,
                    tether_core::journal::Phase::Finished { .. }
                )
        }),
        Err(_) => false,
    }
}

/// Runs this worker may claim: those not placed on another host, of the kinds it can build
/// (its registry's, narrowed by `--kinds`). A kind it cannot build is never claimed: claiming it
/// would only bump its epoch and release it, again at every tick.
fn claim_filter(ctx: &Ctx, args: &WorkerArgs) -> Result<ClaimFilter, CliError> {
    let known = ctx.registry.kinds();
    let kinds: Vec<String> = match &args.kinds {
        None => known.iter().map(|k| k.to_string()).collect(),
        Some(kinds) => {
            if let Some(bad) = kinds.iter().find(|k| !known.contains(&k.as_str())) {
                return Err(CliError::usage(format!(
                    "--kinds: unknown kind {bad:?}; this build knows {}",
                    known.join(", ")
                )));
            }
            kinds.clone()
        }
    };
    Ok(ClaimFilter {
        host: Some(tether_connectors::local::placement::this_host().host),
        kinds: Some(kinds),
    })
}

fn report(key: &RunKey, result: &Result<Finish, EngineError>) {
    match result {
        Ok(Finish::Outcome(o)) => diag!("tether worker: {key}: {}", o.label()),
        Ok(Finish::GaveUp { reason }) => {
            diag!("tether worker: {key}: status unknown, released: {reason}")
        }
        Ok(Finish::Elsewhere(e)) => diag!("tether worker: {key}: released: {e}"),
        Err(EngineError::LeaseLost { .. }) => {
            diag!("tether worker: {key}: lease lost, dropped (another owner has it)")
        }
        Err(e) => diag!("tether worker: {key}: {e}"),
    }
}

/// Worker log: one line per decision that changes something (not every poll).
struct WorkerLog;

impl Observer for WorkerLog {
    fn event(&self, key: &RunKey, event: &Event) {
        if let Event::Decided {
            generation,
            external_id,
            decision,
            reason,
        } = event
        {
            if matches!(
                **decision,
                Decision::Poll { .. } | Decision::Observe | Decision::AskAgain { .. }
            ) {
                return;
            }
            let g = generation
                .map(|g| g.to_string())
                .unwrap_or_else(|| "-".into());
            let id = external_id
                .as_ref()
                .map(|i| i.to_string())
                .unwrap_or_else(|| "-".into());
            diag!(
                "tether worker: {key} gen {g} id {id}: {}: {reason}",
                decision.name()
            );
        }
    }
    fn checkpoint(&self, key: &RunKey, point: tether_core::engine::Checkpoint) {
        crate::fault::maybe_crash(key, point);
    }
}
