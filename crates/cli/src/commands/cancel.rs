//! `tether cancel`: ask for a run's job to be killed; act if nobody else is alive to.
use std::sync::Arc;

use tether_core::engine::{Engine, EngineError, Finish};

use super::{outcome_code, parse_key, CliError};
use crate::{
    args::CancelArgs,
    context::{owner_id, Ctx},
    output,
    progress::Progress,
};

pub async fn cancel(ctx: &Ctx, args: CancelArgs) -> Result<u8, CliError> {
    let key = parse_key(&args.key)?;
    let store = ctx.store().await?;
    let run = store
        .get_run(&key)
        .await
        .map_err(CliError::store)?
        .ok_or_else(|| CliError::usage(format!("no run with key {key}: see `tether ls`")))?;
    if !store.request_cancel(&key).await.map_err(CliError::store)? {
        eprintln!(
            "tether: run {key} already finished ({}): nothing to cancel",
            output::state(&run)
        );
        return Ok(0);
    }
    if args.no_wait {
        eprintln!(
            "tether: cancel of {key} requested; its owner (or the next one) will kill the job"
        );
        return Ok(0);
    }
    // Follow the live owner (it sees the request at its next heartbeat), or take over an
    // orphaned run and kill the job ourselves.
    let built = ctx.connector(&run.spec_name, &run.spec)?;
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
            println!("{key}\t{}", o.label());
            Ok(outcome_code(&o))
        }
        Ok(Finish::GaveUp { reason }) => {
            eprintln!("tether: cancel of {key} could not be confirmed: {reason}");
            Ok(4)
        }
        Ok(Finish::Elsewhere(e)) => {
            eprintln!(
                "tether: cancel of {key} is recorded; {e}: a worker or `tether run` there kills it \
                 (or `tether forget-host {}` if that host is gone)",
                e.placement.host
            );
            Ok(4)
        }
        Err(e @ EngineError::LeaseLost { .. }) => {
            eprintln!("tether: {e}");
            Ok(5)
        }
        Err(e) => Err(CliError {
            code: 4,
            message: e.to_string(),
        }),
    }
}
