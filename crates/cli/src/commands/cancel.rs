//! `tether cancel`: the library's cancel (`tether_fleet::cancel`), with progress on stderr;
//! `--json` prints the run as it stands after the cancel (the `run` view of docs/json.md).
use std::sync::Arc;

use tether_core::{
    engine::{EngineError, Finish},
    ids::RunKey,
};
use tether_fleet::{
    cancel::{CancelError, Cancelled},
    view::RunView,
    Ctx,
};

use super::{parse_key, CliError, Exit};
use crate::{args::CancelArgs, output::json_line, progress::Progress};

pub async fn cancel(ctx: &Ctx, args: CancelArgs) -> Result<Exit, CliError> {
    let key = parse_key(&args.key)?;
    let json = args.json;
    let code = cancel_run(ctx, &key, args).await?;
    if json {
        // What a script reads after any cancel that did not fail: the run as it now stands.
        let store = ctx.store_existing().await?;
        let run = store
            .get_run(&key)
            .await
            .map_err(CliError::store)?
            .ok_or_else(|| super::no_run(&key))?;
        let subs = store.submissions(&key).await.map_err(CliError::store)?;
        say!("{}", json_line(&RunView::new(&run, &subs)));
    }
    Ok(code)
}

async fn cancel_run(ctx: &Ctx, key: &RunKey, args: CancelArgs) -> Result<Exit, CliError> {
    let key = key.clone();
    let progress = Arc::new(Progress::new());
    let result = tether_fleet::cancel::cancel(ctx, &key, !args.no_wait, progress.clone()).await;
    if !matches!(
        result,
        Ok(Cancelled::AlreadyFinished(_) | Cancelled::Requested)
    ) {
        progress.finish();
    }
    match result {
        Ok(Cancelled::AlreadyFinished(state)) => {
            diag!("tether: run {key} already finished ({state}): nothing to cancel");
            Ok(Exit::Succeeded)
        }
        Ok(Cancelled::Requested) => {
            let driven = match ctx.store_existing().await {
                Ok(store) => store
                    .get_run(&key)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|r| r.lease_alive),
                Err(_) => false,
            };
            if driven {
                diag!("tether: cancel of {key} requested; its owner kills the job at its next heartbeat");
            } else {
                // Say it plainly: a request alone kills nothing while nobody drives the run.
                diag!(
                    "tether: cancel of {key} recorded, but nobody drives the run now: nothing kills \
                     the job until a worker or `tether run` takes it up (or run `tether cancel {key}` \
                     without --no-wait to kill it now)"
                );
            }
            Ok(Exit::Succeeded)
        }
        Ok(Cancelled::Ended(Finish::Outcome(o))) => {
            // The cancel did what was asked: the run has ended (cancelled, or it finished on
            // its own first: the label says which). Exit 3 is for a *run* that was cancelled.
            if !args.json {
                say!("{key}\t{}", o.label());
            }
            Ok(Exit::Succeeded)
        }
        Ok(Cancelled::Ended(Finish::GaveUp { reason })) => {
            diag!("tether: cancel of {key} could not be confirmed: {reason}");
            Ok(Exit::Unknown)
        }
        Ok(Cancelled::Ended(Finish::Elsewhere(e))) => {
            diag!(
                "tether: cancel of {key} is recorded; {e}: a worker or `tether run` there kills it \
                 (or `tether forget-host {}` if that host is gone)",
                e.placement.host
            );
            Ok(Exit::Unknown)
        }
        Ok(_) => Ok(Exit::Unknown),
        Err(CancelError::Engine(e @ EngineError::LeaseLost { .. })) => {
            diag!("tether: {e}");
            Ok(Exit::LeaseLost)
        }
        Err(CancelError::Engine(e)) => Err(CliError {
            code: Exit::Unknown,
            message: e.to_string(),
        }),
        Err(CancelError::Open(e)) => Err(e.into()),
        Err(CancelError::Store(e)) => Err(CliError::store(e)),
        Err(e @ CancelError::NoRun(_)) => Err(CliError::not_found(e.to_string())),
        Err(e) => Err(CliError::usage(e.to_string())),
    }
}
