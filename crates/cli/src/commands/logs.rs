//! `tether logs`: print (and follow) a run's job logs through its connector.
//!
//! ## Guarantees
//! - Reading stops when a page does not advance the cursor: Spark's log page answers an offset
//!   past the end with the last page again (same `end`), which used to print it for ever.
//! - A closed stdout (`tether logs K | head`) ends the command quietly.
use std::time::Duration;

use tether_core::{
    connector::{JobRef, LogCursor, LogError, LogStream, Logs},
    ids::Generation,
    journal::Phase,
};

use super::{parse_key, CliError, Exit};
use crate::{args::LogsArgs, context::Ctx};

/// Largest page asked for at once.
const PAGE: usize = 1 << 20;

/// Copies pages from `cursor` to `out` until a page is empty or does not advance (or `out`
/// refuses more); returns the cursor to ask for next.
async fn drain(
    reader: &dyn Logs,
    job: &JobRef,
    stream: LogStream,
    mut cursor: LogCursor,
    out: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<LogCursor, LogError> {
    loop {
        let chunk = reader.read_logs(job, stream, &cursor, PAGE).await?;
        if chunk.data.is_empty() || chunk.next == cursor {
            // Nothing new: the bytes of a page that does not advance were printed already.
            return Ok(cursor);
        }
        cursor = chunk.next;
        if !out(&chunk.data) {
            return Ok(cursor);
        }
    }
}

pub async fn logs(ctx: &Ctx, args: LogsArgs) -> Result<Exit, CliError> {
    let key = parse_key(&args.key)?;
    let store = ctx.store_existing().await?;
    let run = store
        .get_run(&key)
        .await
        .map_err(CliError::store)?
        .ok_or_else(|| CliError::usage(format!("no run with key {key}: see `tether ls`")))?;
    let built = ctx.connector_for(&run)?;
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
    let mut cursor = LogCursor::start();
    let mut job: Option<JobRef> = None;
    let mut print = |data: &[u8]| crate::io::out_bytes(data);
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
            match drain(reader, j, stream, cursor.clone(), &mut print).await {
                Ok(next) => cursor = next,
                Err(e) if !args.follow => {
                    return Err(CliError {
                        code: Exit::Failed,
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
        if !args.follow || crate::io::stdout_closed() {
            return Ok(Exit::Succeeded);
        }
        let Some(r) = store.get_run(&key).await.map_err(CliError::store)? else {
            return Ok(Exit::Succeeded);
        };
        // A newer generation started: follow it (unless a generation was asked for).
        let (current, _) = r.current();
        if args.generation.is_none()
            && current.is_some()
            && job.as_ref().map(|j| j.submission.generation) != current
        {
            job = None;
            cursor = LogCursor::start();
            continue;
        }
        if matches!(r.journal.phase, Phase::Finished { .. }) {
            return Ok(Exit::Succeeded);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use tether_core::{
        connector::LogChunk,
        ids::{ExternalId, Tag},
        journal::{Shape, Submission},
    };

    use super::*;

    /// Answers like Spark's log page: past the end, the last page again with the same end.
    struct LastPageAgain {
        log: Vec<u8>,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl Logs for LastPageAgain {
        async fn read_logs(
            &self,
            _job: &JobRef,
            _stream: LogStream,
            cursor: &LogCursor,
            max: usize,
        ) -> Result<LogChunk, LogError> {
            let offset = cursor.byte_offset()?;
            let n = self.calls.fetch_add(1, Ordering::Relaxed);
            assert!(n < 100, "the reader kept asking: {n} pages");
            let len = self.log.len() as u64;
            let start = if offset >= len {
                len.saturating_sub(4)
            } else {
                offset
            };
            let end = (start + max as u64).min(len);
            Ok(LogChunk {
                data: self.log[start as usize..end as usize].to_vec(),
                next: LogCursor::at_byte(end),
            })
        }
    }

    #[tokio::test]
    async fn a_page_that_does_not_advance_ends_the_read() {
        let reader = LastPageAgain {
            log: b"hello world\n".to_vec(),
            calls: AtomicUsize::new(0),
        };
        let job = JobRef {
            external_id: ExternalId("x".into()),
            submission: Submission {
                generation: Generation::FIRST,
                tag: Tag::from_stored("t"),
                shape: Shape::Normal,
            },
        };
        let mut seen = Vec::new();
        let mut out = |d: &[u8]| {
            seen.extend_from_slice(d);
            true
        };
        let next = drain(
            &reader,
            &job,
            LogStream::Stdout,
            LogCursor::start(),
            &mut out,
        )
        .await
        .unwrap();
        assert_eq!(next, LogCursor::at_byte(12));
        // Following a finished job asks again from the end: nothing new, no second copy.
        let again = drain(&reader, &job, LogStream::Stdout, next, &mut out)
            .await
            .unwrap();
        assert_eq!(again, LogCursor::at_byte(12));
        assert_eq!(seen, b"hello world\n");
        assert_eq!(reader.calls.load(Ordering::Relaxed), 3);
    }
}
