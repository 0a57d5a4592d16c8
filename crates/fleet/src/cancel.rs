//! Cancelling a run (`tether cancel`): ask for its job to be killed; act if nobody else is
//! alive to.
//!
//! ## Guarantees
//! - The request is durable before anything else: whoever drives the run (now or later) kills
//!   the job. With `wait`, a live owner is followed until it does; an orphaned run is taken
//!   over and its job killed from here.
use std::sync::Arc;

use tether_core::{
    engine::{Engine, EngineError, Finish, Observer},
    ids::RunKey,
    store::StoreError,
};

use crate::{
    context::{owner_id, BuildError, OpenError},
    trace::Traced,
    view::state,
    Ctx,
};

/// How a cancel ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Cancelled {
    /// The run had already finished: nothing to cancel. Its state word.
    AlreadyFinished(String),
    /// Requested, not waited for: its owner (or the next one) kills the job.
    Requested,
    /// Waited for: how the run ended (or why that could not be confirmed).
    Ended(Finish),
}

/// Why a cancel failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CancelError {
    /// The state store could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A store call failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No run has this key.
    #[error("no run with key {0}: see `tether ls`")]
    NoRun(RunKey),
    /// The run's spec cannot be built here (to kill its job).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Driving the run to its end failed (a lost lease: another owner took it over).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Requests the cancel of `key`; with `wait`, follows the run to its end (`observer` sees the
/// engine's events).
pub async fn cancel(
    ctx: &Ctx,
    key: &RunKey,
    wait: bool,
    observer: Arc<dyn Observer>,
) -> Result<Cancelled, CancelError> {
    let store = ctx.store().await?;
    let run = store
        .get_run(key)
        .await?
        .ok_or_else(|| CancelError::NoRun(key.clone()))?;
    if !store.request_cancel(key).await? {
        return Ok(Cancelled::AlreadyFinished(state(&run)));
    }
    tracing::info!(%key, "cancel requested");
    if !wait {
        return Ok(Cancelled::Requested);
    }
    // Follow the live owner (it sees the request at its next heartbeat), or take over an
    // orphaned run and kill the job ourselves.
    let built = ctx.connector_for(&run)?;
    let engine = Engine::new(
        store.clone(),
        built.connector,
        built.policy,
        ctx.config.leases,
        Arc::new(Traced::new(observer)),
    );
    let owner = owner_id("cancel");
    let _alive = ctx.hold_liveness(store.as_ref(), &owner).await;
    let span = crate::trace::run_span(key, run.epoch, &owner);
    let result = tracing::Instrument::instrument(engine.run(key, &owner), span).await;
    Ok(Cancelled::Ended(result?))
}
