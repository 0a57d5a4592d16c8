//! `tether worker`: the library's worker (`tether_fleet::worker`), its log through `tracing`.
use std::sync::Arc;

use tether_core::{engine::Observer, ids::RunKey};
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
        // Every notice of the worker is also a tracing event: printing both doubled each line.
        notices: Arc::new(|_: &str| {}),
    };
    match tether_fleet::worker::worker(ctx, options, hooks, interrupted()?).await {
        Ok(WorkerEnd::Stopped) => Ok(Exit::Interrupted),
        Ok(_) => Ok(Exit::Succeeded),
        Err(WorkerError::Open(e)) => Err(e.into()),
        Err(e) => Err(CliError::usage(e.to_string())),
    }
}

/// The worker's log is the library's `tracing` events (see `crate::logging`): this observer
/// only keeps the crash-test hook, so no decision is printed twice.
struct WorkerLog;

impl Observer for WorkerLog {
    fn checkpoint(&self, key: &RunKey, point: tether_core::engine::Checkpoint) {
        crate::fault::maybe_crash(key, point);
    }
}
