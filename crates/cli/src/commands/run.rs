//! `tether run`: drive one run to the end from this process.
use std::{sync::Arc, time::Instant};

use tether_core::{
    connector::{JobRef, SubmitRequest},
    engine::{Engine, EngineError, Finish},
    ids::{Generation, StoreId, Tag},
    journal::{Outcome, Shape, Submission},
    observe::{FailureClass, JobStatus},
    store::Lease,
    Store,
};
use tokio::signal::unix::{signal, SignalKind};

use super::{outcome_code, submit, CliError};
use crate::{
    args::RunArgs,
    context::{owner_id, Ctx},
    output,
    progress::Progress,
};

pub async fn run(ctx: &Ctx, args: RunArgs) -> Result<u8, CliError> {
    let (new, built) = submit::new_run(ctx, &args.spec, args.key.as_deref(), false)?;
    let key = new.key.clone();
    eprintln!("tether: run key {key}");
    if !built.durable {
        return ephemeral(&new.key, built).await;
    }
    let store = ctx.store().await?;
    submit::create(store.as_ref(), &new).await?;

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
        None if args.cancel_on_exit => {
            progress.finish();
            eprintln!("tether: interrupted: --cancel-on-exit: cancelling the job");
            store.request_cancel(&key).await.map_err(CliError::store)?;
            driving.await
        }
        None => {
            drop(driving);
            progress.finish();
            release_if_ours(store.as_ref(), &key, &owner).await;
            eprintln!(
                "tether: interrupted: the job was left running and the lease released; resume with \
                 `tether run {} --key {key}` (or kill the job with `tether cancel {key}`)",
                args.spec.display()
            );
            return Ok(130);
        }
    };
    progress.finish();
    let code = match result {
        Ok(Finish::Outcome(outcome)) => {
            eprintln!("tether: {key}: {}", output::outcome_detail(&outcome));
            outcome_code(&outcome)
        }
        Ok(Finish::GaveUp { reason }) => {
            eprintln!("tether: {key}: status unknown: {reason}");
            4
        }
        Ok(Finish::Elsewhere(e)) => {
            eprintln!(
                "tether: {key}: status unknown: {e}. Run it there (same command), let a worker on \
                 host {host} pick it up, or, if that host is gone for good, `tether forget-host {host}`",
                host = e.placement.host
            );
            4
        }
        Err(e @ EngineError::LeaseLost { .. }) => {
            eprintln!("tether: {e}");
            return Ok(5);
        }
        Err(e) => {
            eprintln!("tether: {key}: {e}; the run stays resumable");
            4
        }
    };
    let run = store.get_run(&key).await.map_err(CliError::store)?;
    if let Some(run) = run {
        let subs = store.submissions(&key).await.map_err(CliError::store)?;
        if args.json {
            println!("{}", output::run_json(&run, &subs));
        } else {
            println!("{}\t{}", run.key, output::state(&run));
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
) -> Result<u8, CliError> {
    eprintln!(
        "tether: durable = false: no journal; a crash of this process loses track of the job"
    );
    // No store: a fresh random scope, so this job's tag is never another run's.
    let mut scope = [0u8; 8];
    getrandom::getrandom(&mut scope).map_err(|e| CliError::usage(format!("no randomness: {e}")))?;
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
            code: 1,
            message: e.to_string(),
        })?;
    eprintln!("tether: submitted job {external_id}");
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
                    eprintln!("tether: status unknown beyond status_timeout: {reason}");
                    return Ok(4);
                }
            }
        }
        tokio::time::sleep(built.policy.poll_interval).await;
    };
    eprintln!("tether: {key}: {}", output::outcome_detail(&outcome));
    println!("{key}\t{}", outcome.label());
    Ok(outcome_code(&outcome))
}
