//! `tether wait KEY [--timeout]`: block until a run ends, its outcome as the exit code.
//!
//! ## Guarantees
//! - Read only: it never takes the lease, so it never drives, kills or resubmits the job
//!   (that is for the worker or the `tether run` driving it); any number may wait at once.
//! - Exit code: the run's outcome (0 succeeded, 1 failed, 3 cancelled); 6 if no run has the
//!   key; 7 when `--timeout` passes first (the run goes on).
use std::time::{Duration, Instant};

use tether_core::journal::Phase;
use tether_fleet::{view::RunView, Ctx};

use super::{no_run, outcome_code, parse_key, CliError, Exit};
use crate::{args::WaitArgs, output};

/// How often the store is asked (one cheap read of one row).
const POLL: Duration = Duration::from_millis(500);

pub async fn wait(ctx: &Ctx, args: WaitArgs) -> Result<Exit, CliError> {
    let key = parse_key(&args.key)?;
    let store = ctx.store_existing().await?;
    let deadline = args.timeout.map(|t| Instant::now() + t);
    let mut said_unattended = false;
    loop {
        let run = store
            .get_run(&key)
            .await
            .map_err(CliError::store)?
            .ok_or_else(|| no_run(&key))?;
        if let Phase::Finished { outcome } = &run.journal.phase {
            if args.json {
                let subs = store.submissions(&key).await.map_err(CliError::store)?;
                say!("{}", output::json_line(&RunView::new(&run, &subs)));
            } else {
                say!("{key}\t{}", outcome.label());
            }
            return Ok(outcome_code(outcome));
        }
        if !run.lease_alive && !said_unattended {
            // Say it once: waiting is right (a worker may claim it), but a person should know.
            diag!(
                "tether: run {key} is {} and nobody drives it now: waiting for a worker or \
                 `tether run` to take it",
                tether_fleet::view::state(&run)
            );
            said_unattended = true;
        }
        if deadline.is_some_and(|d| Instant::now() + POLL > d) {
            let view = RunView::new(&run, &[]);
            return Err(CliError {
                code: Exit::Timeout,
                message: format!(
                    "run {key} is still {} after {}: it goes on (wait again, or `tether cancel {key}`)",
                    view.state,
                    humantime::format_duration(args.timeout.unwrap_or_default())
                ),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}
