//! `tether worker`: the library's worker (`tether_fleet::worker`), with its lines on stderr.
use std::sync::Arc;

use tether_core::{
    engine::{Event, Observer},
    ids::RunKey,
    Decision,
};
use tether_fleet::worker::{WorkerEnd, WorkerError, WorkerHooks, WorkerOptions};

use super::{interrupted, CliError, Exit};
use crate::args::WorkerArgs;
use tether_fleet::Ctx;

pub async fn worker(ctx: &Ctx, args: WorkerArgs) -> Result<Exit, CliError> {
    let mut options = WorkerOptions::new(args.concurrency, args.local_slots);
    options.kinds = args.kinds;
    options.exit_when_idle = args.exit_when_idle;
    let hooks = WorkerHooks {
        observer: Arc::new(WorkerLog),
        notices: ctx.notices.clone(),
    };
    match tether_fleet::worker::worker(ctx, options, hooks, interrupted()?).await {
        Ok(WorkerEnd::Stopped) => Ok(Exit::Interrupted),
        Ok(_) => Ok(Exit::Succeeded),
        Err(WorkerError::Open(e)) => Err(e.into()),
        Err(e) => Err(CliError::usage(e.to_string())),
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
