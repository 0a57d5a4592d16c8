//! `tether cancel`: ask for a run's job to be killed; act if nobody else is alive to.
use std::sync::Arc;

use tether_core::engine::{Engine, EngineError, Finish};

use super::{outcome_code, parse_key, CliError, Exit};
use crate::{
    args::CancelArgs,
    context::{owner_id, Ctx},
    output,
    progress::Progress,
};

pub async fn cancel(ctx: &Ctx, args: CancelArgs) -> Result<Exit, CliError> {
    let key = parse_key(&args.key)?;
    let store = ctx.store().await?;
    let run = store
        .get_run(&key)
        .await
        .map_err(CliError::store)?
        .ok_or_else(|| CliError::usage(format!("no run with key {key}: see `tether ls`")))?;
    if !store.request_cancel(&key).await.map_err(CliError::store)? {
        diag!(
            "tether: run {key} already finished ({}): nothing to cancel",
            output::state(&run)
        );
        return Ok(Exit::Succeeded);
    }
    if args.no_wait {
        diag!("tether: cancel of {key} requested; its owner (or the next one) will kill the job");
        return Ok(Exit::Succeeded);
    }
    // Follow the live owner (it sees the request at its next heartbeat), or take over an
    // orphaned run and kill the job ourselves.
    let built = ctx.connector_for(&run)?;
    let progress = Arc::new(Progress::new());
    let engine = Engine::new(
        store.clone(),
        built.connector,
        built.policy,
        ctx.config.leases,
        progress.clone(),
    );
    let result = engine.run(&key, &owner_id("cancel")).await;
    progress.finish();
    match result {
        Ok(Finish::Outcome(o)) => {
            say!("{key}\t{}", o.label());
            Ok(outcome_code(&o))
        }
        Ok(Finish::GaveUp { reason }) => {
            diag!("tether: cancel of {key} could not be confirmed: {reason}");
            Ok(Exit::Unknown)
        }
        Ok(Finish::Elsewhere(e)) => {
            diag!(
                "tether: cancel of {key} is recorded; {e}: a worker or `tether run` there kills it \
                 (or `tether forget-host {}` if that host is gone)",
                e.placement.host
            );
            Ok(Exit::Unknown)
        }
        Err(e @ EngineError::LeaseLost { .. }) => {
            diag!("tether: {e}");
            Ok(Exit::LeaseLost)
        }
        Err(e) => Err(CliError {
            code: Exit::Unknown,
            message: e.to_string(),
        }),
    }
}
