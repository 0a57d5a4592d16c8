//! Driving one run to its end from this process, or following its live owner (`tether run`,
//! `tether rerun`), and making a fresh instance of a finished run (`tether rerun`).
//!
//! ## Guarantees
//! - When `stop` completes first, the job is left running and this process's lease released
//!   (another owner takes over without waiting), unless `cancel_on_exit`: then the cancel is
//!   requested and the run driven until its job is killed; a second interrupt within 2 s
//!   stops waiting (the cancel stays recorded, the lease is released).
//! - A rerun touches only a finished run with no live lease; the fresh instance continues the
//!   generation numbering, so a lookup by tag never adopts the earlier instance's job.
use std::{future::Future, sync::Arc, time::Duration};

use tether_connectors::registry::Built;
use tether_core::{
    engine::{Engine, EngineError, Finish, Observer},
    ids::{OwnerId, RunKey},
    spec::spec_hash,
    store::{Lease, Rerun, RerunSpec, RunRecord, StoreError},
    Store,
};

use crate::{
    context::{owner_id, BuildError, OpenError},
    trace::Traced,
    view::{iso_time, state, RunView},
    Ctx,
};

/// How driving a run ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Driven {
    /// The engine returned: the run's end, or why it stopped. `view` is the run afterwards.
    Ended {
        /// What the engine returned (a lost lease is an `Err(EngineError::LeaseLost)`).
        finish: Result<Finish, EngineError>,
        /// The run as stored afterwards (none if it vanished); not read after a lost lease.
        view: Option<Box<RunView>>,
    },
    /// `stop` came first: the job was left running and the lease released.
    Interrupted,
}

/// Why a run could not be driven.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriveError {
    /// A store call failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// This process as the owner of the run it drives: its id, and its liveness signal (if the
/// settings ask for one), held for as long as this value lives: if the process dies, a rerun
/// takes over at once.
pub struct Owner {
    id: OwnerId,
    _alive: Option<tether_core::store::Liveness>,
}

impl Owner {
    /// A new owner id with its liveness signal held. Take it before the run's lease, not beside
    /// it: an owner killed before its liveness row exists is judged by its lease alone (with
    /// the two overlapped, a bench round of reruns after a `kill -9` right after the submit
    /// waited out the 9 s lease on a loaded machine, most likely for that reason). Beside the
    /// run's creation is fine, and spares a durable `tether run` a round trip (on PostgreSQL,
    /// the liveness session's connection is opened meanwhile).
    pub async fn hold(ctx: &Ctx, store: &dyn Store) -> Owner {
        let id = owner_id("run");
        let alive = ctx.hold_liveness(store, &id).await;
        Owner { id, _alive: alive }
    }
}

/// Drives `key` to the end from this process as `owner` (or follows its live owner) until
/// `stop`.
#[allow(clippy::too_many_arguments)]
pub async fn drive(
    ctx: &Ctx,
    store: Arc<dyn Store>,
    key: &RunKey,
    built: Built,
    observer: Arc<dyn Observer>,
    owner: Owner,
    cancel_on_exit: bool,
    stop: impl Future<Output = ()>,
) -> Result<Driven, DriveError> {
    let key = key.clone();
    let Owner { id: owner, _alive } = owner;
    let engine = Engine::new(
        store.clone(),
        built.connector,
        built.policy,
        ctx.config.leases,
        Arc::new(Traced::new(observer)),
    );
    let span = crate::trace::run_span(&key, tether_core::ids::Epoch(0), &owner);
    let mut driving = Box::pin(tracing::Instrument::instrument(
        engine.run(&key, &owner),
        span,
    ));
    let result = tokio::select! {
        r = &mut driving => Some(r),
        () = stop => None,
    };
    let result = match result {
        Some(r) => r,
        None if cancel_on_exit => {
            tracing::info!(%key, "interrupted: cancel on exit");
            // Listen for the second interrupt before saying it may come: one sent right after
            // the message must not be missed.
            let second = listen();
            (ctx.notices)(
                "tether: interrupted: --cancel-on-exit: cancelling the job and waiting until it \
                 is killed; Ctrl-C again within 2 s to stop waiting (the cancel stays requested: \
                 whoever drives the run next kills the job)",
            );
            store.request_cancel(&key).await?;
            match again_within(Duration::from_secs(2), second, &mut driving, &*ctx.notices).await {
                Some(r) => r,
                None => {
                    drop(driving);
                    release_if_ours(store.as_ref(), &key, &owner).await;
                    tracing::info!(%key, "interrupted twice: stopped waiting for the cancel");
                    (ctx.notices)(&format!(
                        "tether: stopped waiting: the cancel of {key} is recorded and the lease \
                         released; the job runs until `tether cancel {key}`, `tether run` or a \
                         worker acts on it"
                    ));
                    return Ok(Driven::Interrupted);
                }
            }
        }
        None => {
            drop(driving);
            release_if_ours(store.as_ref(), &key, &owner).await;
            tracing::info!(%key, "interrupted: lease released, job left running");
            return Ok(Driven::Interrupted);
        }
    };
    if let Err(EngineError::LeaseLost { .. }) = &result {
        return Ok(Driven::Ended {
            finish: result,
            view: None,
        });
    }
    // Asked together: the store answers the second right after the first.
    let (run, subs) = tokio::join!(store.get_run(&key), store.submissions(&key));
    let view = match run? {
        Some(run) => Some(Box::new(RunView::new(&run, &subs?))),
        None => None,
    };
    Ok(Driven::Ended {
        finish: result,
        view,
    })
}

/// The next interrupt (SIGINT, SIGTERM, SIGHUP), or None without signal handling.
type Interrupt = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

fn listen() -> Option<Interrupt> {
    crate::shutdown_signal()
        .ok()
        .map(|f| Box::pin(f) as Interrupt)
}

/// Drives on; None if a second interrupt comes within `window` of the previous one (a later
/// one only re-arms the window, with a reminder in the log).
async fn again_within<T>(
    window: Duration,
    mut signal: Option<Interrupt>,
    driving: &mut (impl Future<Output = T> + Unpin),
    say: &(dyn Fn(&str) + Send + Sync),
) -> Option<T> {
    let mut last = tokio::time::Instant::now();
    loop {
        // Without a signal handler (never on Unix) there is no second interrupt to wait for.
        let Some(next) = signal.take() else {
            return Some(driving.await);
        };
        tokio::select! {
            r = &mut *driving => return Some(r),
            () = next => {
                if last.elapsed() <= window {
                    return None;
                }
                signal = listen();
                say(&format!(
                    "tether: still cancelling; Ctrl-C again within {}s to stop waiting",
                    window.as_secs()
                ));
                last = tokio::time::Instant::now();
            }
        }
    }
}

async fn release_if_ours(store: &dyn Store, key: &RunKey, owner: &OwnerId) {
    if let Ok(Some(run)) = store.get_run(key).await {
        if run.owner.as_ref() == Some(owner) {
            let lease = Lease {
                key: key.clone(),
                owner: owner.clone(),
                epoch: run.epoch,
            };
            let _ = store.release(&lease).await;
        }
    }
}

/// Why a rerun was refused or failed. Nothing was changed unless the error says otherwise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RerunError {
    /// The new spec does not build.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The new spec has `durable = false`.
    #[error("{0}: durable = false: such a spec has no journal to rerun; use `tether run {0}`")]
    NotDurable(String),
    /// The state store could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A store call failed.
    #[error(transparent)]
    Store(StoreError),
    /// No run has this key.
    #[error("no run with key {0}: nothing to rerun (see `tether ls`; `tether run SPEC` starts a new one)")]
    NoRun(RunKey),
    /// The run is not finished (or its lease is alive).
    #[error(
        "run {key} is {} (generation {}, last change {}), not finished: nothing \
         was changed. Follow it with `tether status {key}`, or kill it with \
         `tether cancel {key}` and rerun it once it is cancelled",
        state(.run),
        .run.last_generation.map(|g| g.to_string()).unwrap_or_else(|| "-".into()),
        iso_time(.run.updated_at_ms),
        key = .run.key
    )]
    NotFinished {
        /// The run as found.
        run: Box<RunRecord>,
    },
    /// The store answered something this version does not know.
    #[error("run {0}: unexpected rerun answer")]
    Unexpected(RunKey),
}

/// A fresh instance of a finished run, ready to [`drive`].
#[non_exhaustive]
pub struct Fresh {
    /// The store it was made in.
    pub store: Arc<dyn Store>,
    /// The fresh instance.
    pub run: RunRecord,
    /// Its connector.
    pub built: Built,
}

/// A fresh instance of finished run `key`, with a new spec (file name, text) if given, and
/// its connector: drive it with [`drive`].
pub async fn rerun(
    ctx: &Ctx,
    key: &RunKey,
    spec: Option<(String, String)>,
) -> Result<Fresh, RerunError> {
    // Validate a new spec before touching the store: bad input writes nothing.
    let new_spec = match spec {
        Some((file, text)) => {
            let built = ctx.connector(&file, &text)?;
            if !built.durable {
                return Err(RerunError::NotDurable(file));
            }
            Some((
                RerunSpec {
                    kind: built.connector.kind().to_string(),
                    spec_hash: spec_hash(&text),
                    spec: text,
                    spec_name: file,
                },
                built,
            ))
        }
        None => None,
    };
    let store = ctx.store().await?;
    let fresh = match store.rerun(key, new_spec.as_ref().map(|(s, _)| s)).await {
        Ok(Rerun::Fresh(r)) => r,
        Ok(Rerun::NotFinished(r)) => return Err(RerunError::NotFinished { run: Box::new(r) }),
        Ok(_) => return Err(RerunError::Unexpected(key.clone())),
        Err(StoreError::NotFound { .. }) => return Err(RerunError::NoRun(key.clone())),
        Err(e) => return Err(RerunError::Store(e)),
    };
    let built = match new_spec {
        Some((_, built)) => built,
        None => ctx.connector_for(&fresh)?,
    };
    tracing::info!(%key, "fresh instance made");
    Ok(Fresh {
        store,
        run: fresh,
        built,
    })
}
