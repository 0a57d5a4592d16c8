//! `tether run`: drive one run to the end from this process.
use std::{sync::Arc, time::Instant};

use tether_connectors::registry::Built;
use tether_core::{
    connector::{JobRef, SubmitRequest},
    engine::{EngineError, Finish},
    ids::{Generation, RunKey, StoreId, Tag},
    journal::{Outcome, Phase, Shape, Submission},
    observe::{FailureClass, JobStatus},
    store::{Created, RunRecord},
    Store,
};
use tether_fleet::{
    drive::{DriveError, Driven},
    view::RunView,
    Ctx,
};

use super::{interrupted, outcome_code, submit, CliError, Exit};
use crate::{args::RunArgs, output, progress::Progress};

pub async fn run(ctx: &Ctx, args: RunArgs) -> Result<Exit, CliError> {
    let (new, built) = submit::new_run(ctx, &args.spec, args.key.as_deref(), false)?;
    let key = new.key.clone();
    diag!("tether: run key {key}");
    if !built.durable {
        return ephemeral(&new.key, built).await;
    }
    let store = ctx.store().await?;
    if let Created::Existing(existing) = submit::create(store.as_ref(), &new).await? {
        if let Phase::Finished { outcome } = &existing.journal.phase {
            return replay(store.as_ref(), &existing, outcome, args.json).await;
        }
    }
    let resume = format!("tether run {} --key {key}", args.spec.display());
    let how = Drive {
        json: args.json,
        cancel_on_exit: args.cancel_on_exit,
        resume: &resume,
    };
    drive(ctx, store, &key, built, how).await
}

/// A finished key is not run again: say so, with when, which generation and which job, and
/// exit with the recorded outcome's code. Nothing is written.
async fn replay(
    store: &dyn Store,
    run: &RunRecord,
    outcome: &Outcome,
    json: bool,
) -> Result<Exit, CliError> {
    let generation = run
        .last_generation
        .map(|g| g.to_string())
        .unwrap_or_else(|| "-".into());
    let id = run
        .last_external_id
        .as_ref()
        .map(|i| i.to_string())
        .unwrap_or_else(|| "-".into());
    let verb = match outcome {
        Outcome::Succeeded { .. } => "succeeded".to_string(),
        Outcome::Failed { class, .. } => format!("failed ({})", class.as_str()),
        Outcome::Cancelled { .. } => "was cancelled".to_string(),
    };
    diag!(
        "tether: {}: already {verb} at {} (generation {generation}, id {id}); nothing was run. \
         To run it again: `tether rerun {}`",
        run.key,
        output::iso_time(run.updated_at_ms),
        run.key
    );
    diag!("tether: {}: {}", run.key, output::outcome_detail(outcome));
    if json {
        let subs = store.submissions(&run.key).await.map_err(CliError::store)?;
        let v = RunView::new(run, &subs).replayed(true);
        say!("{}", output::json_line(&v));
    } else {
        say!("{}\t{}", run.key, output::state(run));
    }
    Ok(outcome_code(outcome))
}

/// How to drive a run from this process.
pub struct Drive<'a> {
    pub json: bool,
    pub cancel_on_exit: bool,
    /// The command that resumes the run, for the interruption message.
    pub resume: &'a str,
}

/// Drives `key` to the end from this process (or follows its live owner) and prints the result.
pub async fn drive(
    ctx: &Ctx,
    store: Arc<dyn Store>,
    key: &RunKey,
    built: Built,
    how: Drive<'_>,
) -> Result<Exit, CliError> {
    let key = key.clone();
    let progress = Arc::new(Progress::new());
    let driven = tether_fleet::drive::drive(
        ctx,
        store,
        &key,
        built,
        progress.clone(),
        how.cancel_on_exit,
        interrupted()?,
    )
    .await;
    progress.finish();
    let (result, view) = match driven {
        Ok(Driven::Ended { finish, view }) => (finish, view),
        Ok(_) => {
            diag!(
                "tether: interrupted: the job was left running and the lease released; resume with \
                 `{}` (or kill the job with `tether cancel {key}`)",
                how.resume
            );
            return Ok(Exit::Interrupted);
        }
        Err(DriveError::Store(e)) => return Err(CliError::store(e)),
        Err(e) => return Err(CliError::usage(e.to_string())),
    };
    let code = match result {
        Ok(Finish::Outcome(outcome)) => {
            diag!("tether: {key}: {}", output::outcome_detail(&outcome));
            outcome_code(&outcome)
        }
        Ok(Finish::GaveUp { reason }) => {
            diag!("tether: {key}: status unknown: {reason}");
            Exit::Unknown
        }
        Ok(Finish::Elsewhere(e)) => {
            diag!(
                "tether: {key}: status unknown: {e}. Run it there (same command), let a worker on \
                 host {host} pick it up, or, if that host is gone for good, `tether forget-host {host}`",
                host = e.placement.host
            );
            Exit::Unknown
        }
        Err(e @ EngineError::LeaseLost { .. }) => {
            diag!("tether: {e}");
            return Ok(Exit::LeaseLost);
        }
        Err(e) => {
            diag!("tether: {key}: {e}; the run stays resumable");
            Exit::Unknown
        }
    };
    if let Some(view) = view {
        if how.json {
            say!("{}", output::json_line(&(*view).replayed(false)));
        } else {
            say!("{}\t{}", view.key, view.state);
        }
    }
    Ok(code)
}

/// `durable = false`: plain submit, poll, result. No journal, no lease, no resubmission.
async fn ephemeral(
    key: &tether_core::ids::RunKey,
    built: tether_connectors::registry::Built,
) -> Result<Exit, CliError> {
    diag!("tether: durable = false: no journal; a crash of this process loses track of the job");
    // No store: a fresh random scope, so this job's tag is never another run's.
    let mut scope = [0u8; 8];
    getrandom::fill(&mut scope).map_err(|e| CliError::usage(format!("no randomness: {e}")))?;
    let submission = Submission {
        generation: Generation::FIRST,
        tag: Tag::derive(&StoreId::from_random(scope), key, Generation::FIRST),
        shape: Shape::Normal,
    };
    // Nothing to fence: this process holds no lease.
    let request = SubmitRequest::new(
        key.clone(),
        submission.clone(),
        Arc::new(tether_core::connector::NoFence),
    );
    let external_id = built
        .connector
        .submit(&request)
        .await
        .map_err(|e| CliError {
            code: Exit::Failed,
            message: e.to_string(),
        })?;
    diag!("tether: submitted job {external_id}");
    let job = JobRef {
        external_id,
        submission,
    };
    let mut unknown_since: Option<Instant> = None;
    let outcome = loop {
        match built.connector.status(&job).await {
            JobStatus::Active { .. } => unknown_since = None,
            JobStatus::Succeeded { result } => break Outcome::Succeeded { result },
            JobStatus::Failed { class, message } => break Outcome::Failed { class, message },
            JobStatus::NotFound { detail } => {
                break Outcome::Failed {
                    class: FailureClass::Lost,
                    message: detail,
                }
            }
            JobStatus::Mismatch { found } => {
                break Outcome::Failed {
                    class: FailureClass::Lost,
                    message: found,
                }
            }
            JobStatus::Unknown { reason } => {
                if unknown_since.get_or_insert_with(Instant::now).elapsed()
                    >= built.policy.status_timeout
                {
                    diag!("tether: status unknown beyond status_timeout: {reason}");
                    return Ok(Exit::Unknown);
                }
            }
        }
        tokio::time::sleep(built.policy.poll_interval).await;
    };
    diag!("tether: {key}: {}", output::outcome_detail(&outcome));
    say!("{key}\t{}", outcome.label());
    Ok(outcome_code(&outcome))
}
