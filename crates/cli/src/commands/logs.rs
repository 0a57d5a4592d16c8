//! `tether logs`: print (and follow) a run's job logs through its connector.
use std::{io::Write, time::Duration};

use tether_core::{
    connector::{JobRef, LogStream},
    ids::Generation,
    journal::Phase,
};

use super::{parse_key, CliError};
use crate::{args::LogsArgs, context::Ctx};

pub async fn logs(ctx: &Ctx, args: LogsArgs) -> Result<u8, CliError> {
    let key = parse_key(&args.key)?;
    let store = ctx.store_existing().await?;
    let run = store
        .get_run(&key)
        .await
        .map_err(CliError::store)?
        .ok_or_else(|| CliError::usage(format!("no run with key {key}: see `tether ls`")))?;
    let built = ctx.connector(&run.spec_name, &run.spec)?;
    let Some(reader) = built.connector.logs() else {
        return Err(CliError::usage(format!(
            "the {} backend does not provide logs",
            run.kind
        )));
    };
    let stream = if args.stderr {
        LogStream::Stderr
    } else {
        LogStream::Stdout
    };
    let mut offset = 0u64;
    let mut job: Option<JobRef> = None;
    loop {
        if job.is_none() {
            let subs = store.submissions(&key).await.map_err(CliError::store)?;
            let pick = match args.generation {
                Some(g) => subs
                    .into_iter()
                    .find(|s| s.submission.generation == Generation(g)),
                None => subs.into_iter().rev().find(|s| s.external_id.is_some()),
            };
            job = pick.and_then(|s| {
                s.external_id.map(|id| JobRef {
                    external_id: id,
                    submission: s.submission,
                })
            });
        }
        if let Some(j) = &job {
            match reader.read_logs(j, stream, offset, 1 << 20).await {
                Ok(chunk) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&chunk.data);
                    let _ = out.flush();
                    let more = !chunk.data.is_empty();
                    offset = chunk.next_offset;
                    if more {
                        continue;
                    }
                }
                Err(e) if !args.follow => {
                    return Err(CliError {
                        code: 1,
                        message: e.to_string(),
                    })
                }
                Err(_) => {}
            }
        } else if !args.follow {
            return Err(CliError::usage(format!(
                "run {key} has no submitted job yet: nothing to show"
            )));
        }
        if !args.follow {
            return Ok(0);
        }
        let run = store.get_run(&key).await.map_err(CliError::store)?;
        if let Some(r) = &run {
            let finished = matches!(r.journal.phase, Phase::Finished { .. });
            // A newer generation started: follow it (unless a generation was asked for).
            let (current, _) = r.current();
            if args.generation.is_none()
                && current.is_some()
                && job.as_ref().map(|j| j.submission.generation) != current
            {
                job = None;
                offset = 0;
                continue;
            }
            if finished {
                return Ok(0);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
