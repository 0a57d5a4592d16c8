//! `tether run`: drive one run to the end from this process.
use std::{sync::Arc, time::Instant};

use tether_connectors::registry::Built;
use tether_core::{
    connector::{JobRef, SubmitRequest},
    engine::{Engine, EngineError, Finish},
    ids::{Generation, RunKey, StoreId, Tag},
    journal::{Outcome, Phase, Shape, Submission},
    observe::{FailureClass, JobStatus},
    store::{Created, Lease, RunRecord},
    Store,
};
use tokio::signal::unix::{signal, SignalKind};

use super::{outcome_code, submit, CliError, Exit};
use crate::{
    args::RunArgs,
    context::{owner_id, Ctx},
    output,
    progress::Progress,
};

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
        let mut v = output::run_json(run, &subs);
        v["replayed"] = true.into();
        say!("{v}");
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
    let owner = owner_id("run");
    let engine = Engine::new(
        store.clone(),
        built.connector,
        built.policy,
        ctx.config.leases,
        progress.clone(),
    );
    let mut driving = Box::pin(engine.run(&key, &owner));
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| CliError::usage(format!("cannot watch SIGTERM: {e}")))?;
    let result = tokio::select! {
        r = &mut driving => Some(r),
        _ = tokio::signal::ctrl_c() => None,
        _ = term.recv() => None,
    };
    let result = match result {
        Some(r) => r,
        None if how.cancel_on_exit => {
            progress.finish();
            diag!("tether: interrupted: --cancel-on-exit: cancelling the job");
            store.request_cancel(&key).await.map_err(CliError::store)?;
            driving.await
        }
        None => {
            drop(driving);
            progress.finish();
            release_if_ours(store.as_ref(), &key, &owner).await;
            diag!(
                "tether: interrupted: the job was left running and the lease released; resume with \
                 `{}` (or kill the job with `tether cancel {key}`)",
                how.resume
            );
            return Ok(Exit::Interrupted);
        }
    };
    progress.finish();
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
    let run = store.get_run(&key).await.map_err(CliError::store)?;
    if let Some(run) = run {
        let subs = store.submissions(&key).await.map_err(CliError::store)?;
        if how.json {
            let mut v = output::run_json(&run, &subs);
            v["replayed"] = false.into();
            say!("{v}");
        } else {
            say!("{}\t{}", run.key, output::state(&run));
        }
    }
    Ok(code)
}

async fn release_if_ours(
    store: &dyn Store,
    key: &tether_core::ids::RunKey,
    owner: &tether_core::ids::OwnerId,
) {
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
