//! The worker (`tether worker`): claims queued or orphaned runs and drives them concurrently.
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
//! - When the `stop` future given to [`worker`] completes (the CLI: SIGTERM/Ctrl-C): stop
//!   claiming, release every lease at once (others take over without waiting for expiry), leave
//!   the external jobs running.
//! - While the database is unreachable the worker keeps polling its jobs; every write and every
//!   action on a job waits for a fenced write, so nothing is done to a run it may have lost.
//!   When the database is back the next renewal tells which leases survived.
//!
//! - The status requests of all runs on one endpoint whose connector offers bulk status go out
//!   as one request per tick ([`crate::bulk`]); each run still decides on its own status.
//! - A run that only waits for the next status of a remote backend is parked: no task, no
//!   timer ([`parking`]); it is resumed with its status when due, or at once when cancelled or
//!   its lease is lost.
//!
//! ## Caveats
//! - Local jobs are bounded by `--local-slots`; a local run in recovery mode takes all of them.
use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tether_core::{
    engine::{Engine, EngineError, Finish, Observer, RunSignals},
    ids::{Epoch, OwnerId, RunKey},
    store::{ClaimFilter, Lease, RunRecord},
    Store,
};
use tokio::{sync::Semaphore, task::JoinSet};
use tracing::Instrument;

use crate::{
    bulk::Observers,
    context::{owner_id, Notices, OpenError},
    metrics::{Counted, Metrics},
    trace::Traced,
    Ctx,
};

mod cache;
#[cfg(test)]
mod claim_batch_tests;
mod heartbeat;
mod launch;
mod parking;
mod registry;
mod report;
mod slots;
mod starting;
#[cfg(test)]
mod store_calls_tests;

use cache::ConnectorCache;
use heartbeat::heartbeat;
use launch::Launch;
use report::report;

/// Resumed runs driven at once. A bulk tick answers a whole cohort of parked runs at once (all
/// of a worker's runs, at worst), and resuming them all at once held a task and a span each
/// for a moment: a burst of ~1 KiB per run. The others wait in the answers' channel.
const RESUMING: usize = 512;

/// Runs a worker claims in one statement at first.
const CLAIM_BATCH: usize = 64;
/// Most runs a worker claims in one statement: the batch doubles from [`CLAIM_BATCH`] up to
/// this while every claim comes back full (a backlog of thousands), and falls back after the
/// first claim that is not.
const MAX_CLAIM_BATCH: usize = 1024;

/// A run this worker drives.
struct InFlight {
    epoch: Epoch,
    signals: Arc<RunSignals>,
    /// When it entered the table (after its claim committed): a renewal that started earlier
    /// cannot have seen the claim, so it says nothing about this run.
    since: Instant,
    /// Its place among the runs being started ([`starting`]), until it has started.
    starting: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Its driving task (set once spawned): a task that panics returns no key, so its run is
    /// found by this. Kept here rather than in a map of its own: one entry per run in flight.
    task: Option<tokio::task::Id>,
    /// That task drives the run resumed from parking (it counts against [`RESUMING`]).
    resumed: bool,
}

type Table = Arc<Mutex<HashMap<RunKey, InFlight>>>;

/// The driving tasks (a panicked task returns nothing: its run is found by
/// [`InFlight::task`]).
#[derive(Default)]
struct Tasks {
    /// How each ended (whether it drove a resumed run is in its table entry).
    set: JoinSet<launch::Ended>,
}

/// How a worker works.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerOptions {
    /// Most runs driven at once.
    pub concurrency: usize,
    /// Local jobs running at once (a local run in recovery mode takes all of them).
    pub local_slots: usize,
    /// Only runs of these kinds are claimed (default: every kind the registry builds).
    pub kinds: Option<Vec<String>>,
    /// Stop once no run is left that this worker could claim (after a lease TTL of quiet, so
    /// runs of dead owners are taken over first).
    pub exit_when_idle: bool,
    /// Where the worker counts what it does (a new, private set by default).
    pub metrics: Metrics,
    /// How often the worker looks for claimable runs without being woken (default 0.5 s). The
    /// store's wake-ups (PostgreSQL `NOTIFY`) bring new and released runs sooner; runs of dead
    /// or expired owners are found by this poll.
    pub claim_interval: Duration,
}

impl WorkerOptions {
    /// `concurrency` runs at once, `local_slots` local jobs at once, every kind, no idle exit.
    pub fn new(concurrency: usize, local_slots: usize) -> WorkerOptions {
        WorkerOptions {
            concurrency,
            local_slots,
            kinds: None,
            exit_when_idle: false,
            metrics: Metrics::new(),
            claim_interval: Duration::from_millis(500),
        }
    }
}

/// Why a worker stopped (it released every lease it held first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerEnd {
    /// `exit_when_idle` and nothing was left to claim.
    Idle,
    /// The `stop` future completed.
    Stopped,
}

/// A worker could not start. Once started, a worker only stops when asked or idle: store
/// outages and failed runs are reported through the notices and retried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The options are unusable (nothing was claimed).
    #[error("{0}")]
    Options(String),
    /// The state store could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
}

/// What the worker tells its front end besides the engine's events.
pub struct WorkerHooks {
    /// Sees every run's engine events and checkpoints (the CLI prints decisions and obeys
    /// `TETHER_FAULT` there). The worker adds tracing events of its own around it.
    pub observer: Arc<dyn Observer>,
    /// Lines for the operator (`tether worker: KEY: succeeded`, releases, store outages).
    pub notices: Notices,
}

/// Runs a worker until `stop` completes (or, with `exit_when_idle`, until nothing is left).
pub async fn worker(
    ctx: &Ctx,
    args: WorkerOptions,
    hooks: WorkerHooks,
    stop: impl Future<Output = ()>,
) -> Result<WorkerEnd, WorkerError> {
    if args.claim_interval.is_zero() {
        return Err(WorkerError::Options(
            "the claim interval must be longer than zero".into(),
        ));
    }
    if args.concurrency == 0 || args.local_slots == 0 {
        return Err(WorkerError::Options(
            "--concurrency and --local-slots must be at least 1".into(),
        ));
    }
    let bulk = Observers::from_env().map_err(WorkerError::Options)?;
    let store = ctx.store().await?;
    let owner = owner_id("worker");
    // Held until the worker returns: if it dies, another worker takes its runs at once.
    let _alive = ctx.hold_liveness(store.as_ref(), &owner).await;
    let ttl = ctx.config.leases.ttl;
    let say = hooks.notices.clone();
    tracing::info!(%owner, state = %tether_store::redact(&ctx.config.state), concurrency = args.concurrency, local_slots = args.local_slots, lease_ttl_ms = ttl.as_millis() as u64, "worker started");
    say(&format!(
        "tether worker {owner}: state {}, concurrency {}, local slots {}, lease ttl {}ms",
        tether_store::redact(&ctx.config.state),
        args.concurrency,
        args.local_slots,
        ttl.as_millis()
    ));
    let table: Table = Arc::default();
    let filter = claim_filter(ctx, &args)?;
    let slots = Arc::new(Semaphore::new(args.local_slots));
    let metrics = args.metrics.clone();
    metrics.watch_slots(&slots, args.local_slots);
    metrics.attach_store(store.clone());
    let mut tasks = Tasks::default();
    let heart = tokio::spawn(
        heartbeat(
            store.clone(),
            owner.clone(),
            ttl,
            table.clone(),
            say.clone(),
            metrics.clone(),
        )
        .instrument(tracing::info_span!("heartbeat", %owner)),
    );
    let registry = tokio::spawn(registry::beat(
        store.clone(),
        registry::beat_of(&owner, args.concurrency),
        ttl,
    ));
    // Counted per run (`Launch::start`), where the run's kind is known.
    let traced: Arc<dyn Observer> = Arc::new(Traced::new(hooks.observer.clone()));
    let starting = starting::Starting::new(starting::STARTING, table.clone(), traced);
    let observer: Arc<dyn Observer> = starting.clone();
    let run = Launch {
        ctx,
        store: &store,
        owner: &owner,
        table: &table,
        slots: &slots,
        local_slots: args.local_slots,
        observer: &observer,
        starting: &starting,
        say: &say,
        bulk: &bulk,
        metrics: &metrics,
    };

    tokio::pin!(stop);
    // Woken when a run becomes claimable (a best effort: the tick stays the fallback). Set up
    // beside the first claims, not before them: its session costs a connection (and a TLS
    // handshake), which would delay the takeover of a dead owner's runs.
    let woken = Arc::new(tokio::sync::Notify::new());
    let listening = tokio::spawn(listen(store.clone(), woken.clone()));
    let mut tick = tokio::time::interval(args.claim_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle_since: Option<Instant> = None;
    let mut connectors = ConnectorCache::default();
    let mut backlog = false;
    let mut claim_batch = CLAIM_BATCH;
    let mut parking = parking::Parking::default();
    // Statuses asked for due parked runs (their bulk observer answers without a task).
    let (answered, mut answers) =
        tokio::sync::mpsc::unbounded_channel::<(parking::Entry, tether_core::observe::JobStatus)>();
    let mut asking = 0usize;
    let mut resuming = 0usize;
    let wake = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(wake);
    let code = loop {
        if let Some(at) = parking.next_wake(tokio::time::Instant::now()) {
            if wake.deadline() != at {
                wake.as_mut().reset(at);
            }
        }
        tokio::select! {
            () = &mut stop => break WorkerEnd::Stopped,
            () = &mut wake, if !parking.is_empty() => {
                for entry in parking.take_ready(tokio::time::Instant::now()) {
                    match parking::ask_for(entry, &answered) {
                        None => asking += 1,
                        Some(entry) => {
                            resuming += 1;
                            run.resume(&mut tasks, entry, None);
                        }
                    }
                }
                continue;
            }
            Some((entry, status)) = answers.recv(), if resuming < RESUMING => {
                asking -= 1;
                resuming += 1;
                run.resume(&mut tasks, entry, Some(status));
                continue;
            }
            Some(done) = tasks.set.join_next_with_id(), if !tasks.set.is_empty() => {
                match done {
                    Ok((_, launch::Ended::Parked(entry))) => {
                        let table = table.lock().unwrap_or_else(|p| p.into_inner());
                        resuming -= usize::from(table.get(&entry.lease.key).is_some_and(|f| f.resumed));
                        drop(table);
                        parking.park(entry);
                    }
                    Ok((_, launch::Ended::Done(key, result))) => {
                        let run = table.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                        resuming -= usize::from(run.is_some_and(|f| f.resumed));
                        if let Err(EngineError::LeaseLost { .. }) = &result {
                            metrics.lease_lost();
                        }
                        report(&key, &result, &say);
                    }
                    Err(e) => {
                        if let Some((lease, resumed)) = abandoned(&table, e.id(), &owner) {
                            resuming -= usize::from(resumed);
                            tracing::error!(key = %lease.key, epoch = %lease.epoch, panicked = e.is_panic(), "run task ended abnormally; releasing");
                            say(&format!(
                                "tether worker: {}: its task {}; releasing the run so another \
                                 owner takes it over (the job keeps running)",
                                lease.key,
                                if e.is_panic() { "panicked" } else { "was cancelled" }
                            ));
                            if let Err(e) = store.release(&lease).await {
                                tracing::warn!(key = %lease.key, error = %e, "release failed; the heartbeat releases it");
                                say(&format!("tether worker: {}: release failed ({e}); the heartbeat releases it", lease.key));
                            }
                        }
                    }
                }
                continue;
            }
            _ = tick.tick(), if !backlog => {}
            () = woken.notified(), if !backlog => {}
            () = starting.freed.notified(), if !backlog => {}
            _ = std::future::ready(()), if backlog => {}
        }
        let free = args
            .concurrency
            .saturating_sub(tasks.set.len() + parking.len() + asking)
            .min(starting.claimable(CLAIM_BATCH));
        backlog = false;
        if free > 0 {
            // Small batches let a fleet share a burst of queued runs; a full batch means more
            // may be waiting, so claim again at once instead of at the next tick, and a larger
            // batch: one claim per 64 runs made a 10,000-run backlog wait for ~150 claims in
            // a row, each behind a commit of the store.
            let batch = free.min(claim_batch);
            match store.claim(&owner, ttl, batch, &filter).await {
                Ok(claimed) => {
                    backlog = claimed.len() == batch;
                    claim_batch = next_claim_batch(claim_batch, backlog);
                    for (lease, record) in claimed {
                        tracing::info!(key = %lease.key, epoch = %lease.epoch, %owner, "claimed");
                        // Epoch 1 is a run's first lease: a higher one was held before.
                        if lease.epoch.0 > 1 {
                            metrics.takeover();
                        }
                        run.start(&mut connectors, &mut tasks, lease, record);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming failed");
                    say(&format!("tether worker: claiming failed (will retry): {e}"))
                }
            }
        }
        if args.exit_when_idle {
            if tasks.set.is_empty()
                && parking.is_empty()
                && asking == 0
                && nothing_left(store.as_ref(), &filter).await
            {
                let since = *idle_since.get_or_insert_with(Instant::now);
                // Runs of dead owners become claimable only when their lease expires.
                if since.elapsed() > ttl {
                    break WorkerEnd::Idle;
                }
            } else {
                idle_since = None;
            }
        }
    };
    heart.abort();
    listening.abort();
    if code == WorkerEnd::Stopped {
        let runs = tasks.set.len() + parking.len() + asking;
        tracing::info!(runs, "worker stopping; releasing its runs");
        say(&format!(
            "tether worker: stopping: releasing {runs} runs, their jobs keep running"
        ));
    }
    drop(parking);
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
    registry.abort();
    registry::leave(store.as_ref(), &owner).await;
    Ok(code)
}

/// The lease of the run whose task `task` ended without an answer (panicked or cancelled),
/// taken out of the table, and whether that task drove it resumed. A search of the whole table:
/// only for a task that panicked.
fn abandoned(table: &Table, task: tokio::task::Id, owner: &OwnerId) -> Option<(Lease, bool)> {
    let mut table = table.lock().unwrap_or_else(|p| p.into_inner());
    let key = table
        .iter()
        .find(|(_, f)| f.task == Some(task))
        .map(|(k, _)| k.clone())?;
    let run = table.remove(&key)?;
    let lease = Lease {
        key,
        owner: owner.clone(),
        epoch: run.epoch,
    };
    Some((lease, run.resumed))
}

/// Hands the store's claim wake-ups on to `woken` (nothing for a store without them).
async fn listen(store: Arc<dyn Store>, woken: Arc<tokio::sync::Notify>) {
    match store.claim_wakeups().await {
        Ok(Some(wakeups)) => loop {
            wakeups.notify.notified().await;
            woken.notify_one();
        },
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "no claim wake-ups; claiming on the interval only"),
    }
}

/// The claim batch after a claim: doubled (up to [`MAX_CLAIM_BATCH`]) after a full one, back
/// to [`CLAIM_BATCH`] otherwise.
fn next_claim_batch(batch: usize, full: bool) -> usize {
    if full {
        (batch * 2).min(MAX_CLAIM_BATCH)
    } else {
        CLAIM_BATCH
    }
}

/// No run is left that this worker could ever claim: every run is finished, of a kind it does
/// not build, or bound to another host (those wait for other workers; waiting for them here
/// would keep `--exit-when-idle` from ever exiting).
async fn nothing_left(store: &dyn Store, filter: &ClaimFilter) -> bool {
    // One bounded query (it stops at the first such run), not every run at every tick.
    matches!(store.any_unfinished(filter).await, Ok(false))
}

/// Runs this worker may claim: those not placed on another host, of the kinds it can build
/// (its registry's, narrowed by `--kinds`). A kind it cannot build is never claimed: claiming it
/// would only bump its epoch and release it, again at every tick.
fn claim_filter(ctx: &Ctx, args: &WorkerOptions) -> Result<ClaimFilter, WorkerError> {
    let known = ctx.registry.kinds();
    let kinds: Vec<String> = match &args.kinds {
        None => known.iter().map(|k| k.to_string()).collect(),
        Some(kinds) => {
            if let Some(bad) = kinds.iter().find(|k| !known.contains(&k.as_str())) {
                return Err(WorkerError::Options(format!(
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
