//! Reading (and following) a run's job logs through its connector (`tether logs`).
//!
//! ## Guarantees
//! - Reading stops when a page does not advance the cursor: Spark's log page answers an offset
//!   past the end with the last page again (same `end`), which used to print it for ever.
//! - A sink that refuses more (`tether logs K | head`: stdout closed) ends the read quietly.
//! - Following switches to a newer generation when one starts (unless a generation was asked
//!   for) and ends when the run is finished.
use std::time::Duration;

use tether_core::{
    connector::{JobRef, LogCursor, LogError, LogStream, Logs},
    ids::{Generation, RunKey},
    journal::Phase,
    store::StoreError,
};

use crate::{
    context::{BuildError, OpenError},
    Ctx,
};

/// What to read.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LogsOptions {
    /// Standard error instead of standard output.
    pub stderr: bool,
    /// Keep reading until the run is finished.
    pub follow: bool,
    /// This generation's job (default: the latest submitted one, following newer ones).
    pub generation: Option<u32>,
}

impl LogsOptions {
    /// Standard output of the latest job, read once.
    pub fn new() -> LogsOptions {
        LogsOptions {
            stderr: false,
            follow: false,
            generation: None,
        }
    }
}

impl Default for LogsOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Why logs could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogsError {
    /// The state store could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A store call failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No run has this key.
    #[error("no run with key {0}: see `tether ls`")]
    NoRun(RunKey),
    /// The run's spec cannot be built here.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The run's backend has no logs.
    #[error("the {0} backend does not provide logs")]
    NoLogs(String),
    /// No job was submitted yet (and not following).
    #[error("run {0} has no submitted job yet: nothing to show")]
    NotSubmitted(RunKey),
    /// The backend failed to serve the logs (and not following).
    #[error(transparent)]
    Read(LogError),
}

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

/// Copies run `key`'s job logs to `out` (which returns false to stop), following the run to
/// its end with `args.follow`.
pub async fn logs(
    ctx: &Ctx,
    key: &RunKey,
    args: &LogsOptions,
    out: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<(), LogsError> {
    let key = key.clone();
    let store = ctx.store_existing().await?;
    let run = store
        .get_run(&key)
        .await?
        .ok_or_else(|| LogsError::NoRun(key.clone()))?;
    let built = ctx.connector_for(&run)?;
    let Some(reader) = built.connector.logs() else {
        return Err(LogsError::NoLogs(run.kind));
    };
    let stream = if args.stderr {
        LogStream::Stderr
    } else {
        LogStream::Stdout
    };
    let mut cursor = LogCursor::start();
    let mut job: Option<JobRef> = None;
    // Set once `out` refuses more (a closed stdout): the read ends quietly.
    let closed = std::cell::Cell::new(false);
    let mut print = |data: &[u8]| {
        closed.set(!out(data));
        !closed.get()
    };
    loop {
        if job.is_none() {
            let subs = store.submissions(&key).await?;
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
                Err(e) if !args.follow => return Err(LogsError::Read(e)),
                Err(e) => tracing::debug!(%key, error = %e, "log read failed; following on"),
            }
        } else if !args.follow {
            return Err(LogsError::NotSubmitted(key));
        }
        if !args.follow || closed.get() {
            return Ok(());
        }
        let Some(r) = store.get_run(&key).await? else {
            return Ok(());
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
            // The job's last bytes may have come after the read above and before its end was
            // recorded: read once more, or a follower misses the end of the output.
            if let Some(j) = &job {
                let _ = drain(reader, j, stream, cursor.clone(), &mut print).await;
            }
            return Ok(());
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
