//! `tether run`: drive one run to the end from this process.
use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

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
    drive::{DriveError, Driven, Owner},
    view::RunView,
    Ctx,
};

use super::{interrupted, outcome_code, submit, CliError, Exit};
use crate::{
    args::{RunArgs, ShowArgs},
    output,
    progress::{human_bytes, human_duration, Progress, ProgressOptions},
};

pub async fn run(ctx: &Ctx, args: RunArgs) -> Result<Exit, CliError> {
    let (new, built) = submit::new_run(ctx, &args.spec, args.key.as_deref(), false)?;
    let key = new.key.clone();
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        // On a terminal the status line carries the key.
        diag!("{} tether: run key {key}", crate::progress::now_iso());
    }
    if !built.durable {
        return ephemeral(&new.key, built).await;
    }
    let store = ctx.store().await?;
    let (created, owner) = tokio::join!(
        submit::create(store.as_ref(), &new),
        Owner::hold(ctx, store.as_ref())
    );
    if let Created::Existing(existing) = created? {
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
    drive_with(ctx, store, &key, built, how, &args.show, Some(owner)).await
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
    let show = ShowArgs {
        logs: false,
        heartbeat: Duration::from_secs(300),
        verbose: false,
    };
    drive_with(ctx, store, key, built, how, &show, None).await
}

/// [`drive`], showing what `show` asks for, as `owner` (a new one if None).
pub async fn drive_with(
    ctx: &Ctx,
    store: Arc<dyn Store>,
    key: &RunKey,
    built: Built,
    how: Drive<'_>,
    show: &ShowArgs,
    owner: Option<Owner>,
) -> Result<Exit, CliError> {
    let owner = match owner {
        Some(o) => o,
        None => Owner::hold(ctx, store.as_ref()).await,
    };
    let key = key.clone();
    let progress = Arc::new(Progress::for_run(
        &key,
        ProgressOptions {
            kind: built.connector.kind().to_string(),
            verbose: show.verbose,
            lease_ttl: ctx.config.leases.ttl,
        },
    ));
    let heartbeat = (!progress.is_terminal()).then(|| {
        let p = progress.clone();
        let period = show.heartbeat.max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tick.tick().await;
                p.heartbeat();
            }
        })
    });
    let driving = tether_fleet::drive::drive(
        ctx,
        store.clone(),
        &key,
        built,
        progress.clone(),
        owner,
        how.cancel_on_exit,
        interrupted()?,
    );
    let driven = if show.logs {
        with_logs(driving, crate::joblogs::follow(ctx, &key, &progress)).await
    } else {
        driving.await
    };
    if let Some(h) = heartbeat {
        h.abort();
    }
    progress.finish();
    let (result, view) = match driven {
        Ok(Driven::Ended { finish, view }) => (finish, view),
        Ok(_) => {
            interrupted_line(store.as_ref(), &key, &progress, how.resume).await;
            return Ok(Exit::Interrupted);
        }
        Err(DriveError::Store(e)) => return Err(CliError::store(e)),
        Err(e) => return Err(CliError::usage(e.to_string())),
    };
    let code = match result {
        Ok(Finish::Outcome(outcome)) => {
            summary(ctx, &key, &outcome, &progress, show).await;
            outcome_code(&outcome)
        }
        Ok(Finish::GaveUp { reason }) => {
            progress.line(&format!("tether: {key}: status unknown: {reason}"));
            Exit::Unknown
        }
        Ok(Finish::Elsewhere(e)) => {
            progress.line(&format!(
                "tether: {key}: status unknown: {e}. Run it there (same command), let a worker on \
                 host {host} pick it up, or, if that host is gone for good, `tether forget-host {host}`",
                host = e.placement.host
            ));
            Exit::Unknown
        }
        Err(e @ EngineError::LeaseLost { .. }) => {
            progress.line(&format!("tether: {e}"));
            return Ok(Exit::LeaseLost);
        }
        Err(e) => {
            progress.line(&format!("tether: {key}: {e}; the run stays resumable"));
            Exit::Unknown
        }
    };
    if let Some(view) = view {
        if how.json {
            say!("{}", output::json_line(&(*view).replayed(false)));
        } else {
            say!("{}\t{}", view.key, crate::style::state(view.state));
        }
    }
    Ok(code)
}

/// Drives while following the job's logs; once the run ended, lets the logs catch up for a
/// moment (their follower ends by itself when it sees the run finished).
async fn with_logs<T>(driving: impl Future<Output = T>, logs: impl Future<Output = ()>) -> T {
    let mut driving = std::pin::pin!(driving);
    let mut logs = std::pin::pin!(logs);
    let out = tokio::select! {
        out = &mut driving => out,
        () = &mut logs => return driving.await,
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), logs).await;
    out
}

/// The end of a run in one line: duration and peak memory on success (not the raw result),
/// the reason and the tail of stderr on failure.
async fn summary(ctx: &Ctx, key: &RunKey, outcome: &Outcome, progress: &Progress, show: &ShowArgs) {
    match outcome {
        Outcome::Succeeded { result } => {
            let ms = result.get("duration_ms").and_then(|v| v.as_u64());
            let took = ms.map_or(progress.elapsed(), Duration::from_millis);
            // On a terminal the key is on stdout's line right below: keep this one short.
            let who = if progress.is_terminal() {
                String::new()
            } else {
                format!("{key}: ")
            };
            let mut line = format!(
                "tether: {who}{} in {}",
                crate::style::state("succeeded"),
                human_duration(took)
            );
            if let Some(peak) = result.get("peak_rss_bytes").and_then(|v| v.as_u64()) {
                if peak > 0 {
                    line.push_str(&format!(" (peak memory {})", human_bytes(peak)));
                }
            }
            progress.line(&line);
        }
        Outcome::Failed { .. } => {
            progress.line(&format!(
                "tether: {key}: {}",
                crate::style::lead(&output::outcome_detail(outcome))
            ));
            if show.logs {
                return;
            }
            if let Some(lines) = crate::joblogs::stderr_tail(ctx, key, 20).await {
                if !lines.is_empty() {
                    progress.line(&format!(
                        "tether: last {} lines of the job's stderr (all of it: `tether logs {key} --stderr`):",
                        lines.len()
                    ));
                    for l in lines {
                        progress.line(&format!("  | {l}"));
                    }
                }
            }
        }
        _ => progress.line(&format!(
            "tether: {key}: {}",
            crate::style::lead(&output::outcome_detail(outcome))
        )),
    }
}

/// Says what an interruption left behind, in plain words: a job running (or none), a lease
/// released (only if this process held one), and how to resume.
async fn interrupted_line(store: &dyn Store, key: &RunKey, progress: &Progress, resume: &str) {
    if let Some(owner) = progress.followed() {
        progress.line(&format!(
            "tether: interrupted: stopped following; {owner} still drives {key} (`tether status {key}`)"
        ));
        return;
    }
    let job = match store.get_run(key).await {
        Ok(Some(run)) => run.current().1.map(|id| id.to_string()),
        _ => None,
    };
    match job {
        Some(id) => progress.line(&format!(
            "tether: interrupted: job {id} was left running and the lease released; resume with \
             `{resume}` (or kill the job with `tether cancel {key}`)"
        )),
        None => progress.line(&format!(
            "tether: interrupted: no job was started, nothing is left running; start again with \
             `{resume}`"
        )),
    }
}

/// `durable = false`: plain submit, poll, result. No journal, no lease, no resubmission.
async fn ephemeral(
    key: &tether_core::ids::RunKey,
    built: tether_connectors::registry::Built,
) -> Result<Exit, CliError> {
    // Without a Progress (no run record to draw), the notices still follow its rule: stamped
    // with the time when stderr is not a terminal (cron, CI logs).
    let stamp = !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let note = |text: String| {
        if stamp {
            diag!("{} tether: {text}", crate::progress::now_iso());
        } else {
            diag!("tether: {text}");
        }
    };
    note(format!(
        "durable = false: no journal, so `tether status {key}` and `tether ls` will not show this \
         run; a crash of this process loses track of the job"
    ));
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
    note(format!("submitted job {external_id}"));
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
                    note(format!("status unknown beyond status_timeout: {reason}"));
                    return Ok(Exit::Unknown);
                }
            }
        }
        built
            .connector
            .wait_change(&job, built.policy.poll_interval)
            .await;
    };
    note(format!("{key}: {}", output::outcome_detail(&outcome)));
    say!("{key}\t{}", outcome.label());
    Ok(outcome_code(&outcome))
}
