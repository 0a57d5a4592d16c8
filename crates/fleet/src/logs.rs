//! Reading (and following) a run's job logs through its connector (`tether logs`).
//!
//! ## Guarantees
//! - Reading stops when a page does not advance the cursor: Spark's log page answers an offset
//!   past the end with the last page again (same `end`), which used to print it for ever.
//! - A sink that refuses more (`tether logs K | head`: stdout closed) ends the read quietly.
//! - Following switches to a newer generation when one starts (unless a generation was asked
//!   for) and ends when the run is finished, or, for a run nobody drives (no live lease), when
//!   the backend says its job ended (asked read only, as `tether status` does): the log is
//!   read to its end first.
//! - Every piece handed to a [`LogSink`] comes with the [`LogPosition`] just after it: a reader
//!   started again from it ([`LogsOptions::resume`]) goes on with the next byte, so nothing is
//!   lost or repeated across a reconnect.
//! - The read's future is `Send` when its sink's is: a server runs each follower as a task,
//!   not on a thread of its own.
use std::{
    fmt,
    str::FromStr,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use tether_core::{
    connector::{JobRef, LogCursor, LogError, LogStream, Logs},
    ids::{Generation, RunKey},
    journal::Phase,
    observe::JobStatus,
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
    /// Go on from here (a position a [`LogSink`] was given) instead of the latest job's start:
    /// that generation's job from that cursor, then (following) newer ones.
    pub resume: Option<LogPosition>,
}

/// Where a read stopped: a generation's job and the connector's cursor in its log. Its text
/// (`<generation>.<connector token>`, e.g. `2.b1024`) is what the HTTP API hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPosition {
    /// The generation whose job was read.
    pub generation: Generation,
    /// The cursor in that job's log.
    pub cursor: LogCursor,
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.generation.0, self.cursor.token())
    }
}

/// A text that is not a [`LogPosition`].
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "log cursor {0:?} is not one tether gave: pass back the `id` of a log event or a page's cursor"
)]
pub struct BadPosition(pub String);

impl FromStr for LogPosition {
    type Err = BadPosition;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadPosition(s.to_string());
        let (g, token) = s.split_once('.').ok_or_else(bad)?;
        let g: u32 = g.parse().map_err(|_| bad())?;
        if g == 0 || token.contains(['\n', '\r', '\0']) {
            return Err(bad());
        }
        Ok(LogPosition {
            generation: Generation(g),
            cursor: LogCursor::from_token(token),
        })
    }
}

/// Where a read's bytes go.
// The futures of the implementations are what a caller spawns: their auto traits (`Send`)
// reach it through the concrete sink type, which is what `async fn` here is for.
#[allow(async_fn_in_trait)]
pub trait LogSink {
    /// Takes `data`, read up to `at`; false to stop the read (the client went away).
    async fn write(&mut self, data: &[u8], at: &LogPosition) -> bool;
}

/// A plain callback (the command line): bytes only, no waiting.
impl<F: FnMut(&[u8]) -> bool> LogSink for F {
    async fn write(&mut self, data: &[u8], _at: &LogPosition) -> bool {
        self(data)
    }
}

impl LogsOptions {
    /// Standard output of the latest job, read once.
    pub fn new() -> LogsOptions {
        LogsOptions {
            stderr: false,
            follow: false,
            generation: None,
            resume: None,
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
    /// The generation asked for does not exist.
    #[error("run {key} has no generation {asked}: {}", existing_generations(.existing))]
    NoGeneration {
        /// The run.
        key: RunKey,
        /// The generation asked for.
        asked: u32,
        /// The generations it has, in order.
        existing: Vec<u32>,
    },
    /// No job was submitted yet (and not following).
    #[error("run {0} has no submitted job yet: nothing to show")]
    NotSubmitted(RunKey),
    /// The backend failed to serve the logs (and not following).
    #[error(transparent)]
    Read(LogError),
}

fn existing_generations(existing: &[u32]) -> String {
    match existing {
        [] => "it has none yet (no job was submitted)".into(),
        [one] => format!("it has only generation {one}"),
        [first, .., last] => format!("it has generations {first} to {last}"),
    }
}

/// Largest page asked for at once.
const PAGE: usize = 1 << 20;

/// Copies pages from `cursor` to `out` until a page is empty or does not advance (or `out`
/// refuses more: then `closed` is set); returns the cursor to ask for next.
async fn drain<S: LogSink + ?Sized>(
    reader: &dyn Logs,
    job: &JobRef,
    stream: LogStream,
    mut cursor: LogCursor,
    out: &mut S,
    closed: &AtomicBool,
) -> Result<LogCursor, LogError> {
    loop {
        let chunk = reader.read_logs(job, stream, &cursor, PAGE).await?;
        if chunk.data.is_empty() || chunk.next == cursor {
            // Nothing new: the bytes of a page that does not advance were printed already.
            return Ok(cursor);
        }
        cursor = chunk.next;
        let at = LogPosition {
            generation: job.submission.generation,
            cursor: cursor.clone(),
        };
        if !out.write(&chunk.data, &at).await {
            closed.store(true, Ordering::Relaxed);
            return Ok(cursor);
        }
    }
}

/// Copies run `key`'s job logs to `out` (which returns false to stop), following the run to
/// its end with `args.follow`.
pub async fn logs<S: LogSink + ?Sized>(
    ctx: &Ctx,
    key: &RunKey,
    args: &LogsOptions,
    out: &mut S,
) -> Result<(), LogsError> {
    let key = key.clone();
    let store = ctx.store_existing().await?;
    let run = store
        .get_run(&key)
        .await?
        .ok_or_else(|| LogsError::NoRun(key.clone()))?;
    let r0 = run.clone();
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
    // The generation whose log was shown last: following never goes back to an older one (a
    // new generation's intent has no job id yet while the old one's has).
    let mut shown: Option<Generation> = None;
    // Set when the run was seen finished: one more pass picks its last job and reads it whole.
    let mut last_pass = false;
    let mut probed: Option<tokio::time::Instant> = None;
    // Set once `out` refuses more (a closed stdout): the read ends quietly. Atomic so that
    // the read's future stays `Send`.
    let closed = AtomicBool::new(false);
    // Taken by the first pick: that generation's job, from that cursor.
    let mut resume = args.resume.clone();
    loop {
        if job.is_none() {
            let subs = store.submissions(&key).await?;
            if let Some(g) = args.generation {
                // Out of range: say which exist rather than waiting (or printing nothing).
                let existing: Vec<u32> = subs.iter().map(|s| s.submission.generation.0).collect();
                let beyond = existing.last().is_some_and(|last| g > *last + 1);
                if !existing.contains(&g) && (!args.follow || g == 0 || beyond || finished(&r0)) {
                    return Err(LogsError::NoGeneration {
                        key,
                        asked: g,
                        existing,
                    });
                }
            }
            let resumed = resume.take();
            let pick = match resumed.as_ref().map(|p| p.generation.0).or(args.generation) {
                Some(g) => subs
                    .iter()
                    .find(|s| s.submission.generation == Generation(g))
                    .cloned(),
                None => subs
                    .iter()
                    .rev()
                    .find(|s| s.external_id.is_some())
                    .filter(|s| shown.is_none_or(|g| s.submission.generation > g))
                    .cloned(),
            };
            if let (Some(prev), Some(next)) = (shown, pick.as_ref()) {
                // Say where one generation's output ends and the next begins (on the notices:
                // stderr for the command line), so the output itself stays the jobs' bytes.
                let after = subs
                    .iter()
                    .find(|s| s.submission.generation == prev)
                    .and_then(|s| s.outcome.as_ref())
                    .map(|o| format!(" (after: {})", o.label()))
                    .unwrap_or_default();
                (ctx.notices)(&format!(
                    "--- generation {}{after} ---",
                    next.submission.generation
                ));
            }
            if let Some(p) = &pick {
                shown = Some(p.submission.generation);
            }
            if let Some(at) =
                resumed.filter(|_| pick.as_ref().is_some_and(|p| p.external_id.is_some()))
            {
                cursor = at.cursor;
            }
            job = pick.and_then(|s| {
                s.external_id.map(|id| JobRef {
                    external_id: id,
                    submission: s.submission,
                })
            });
        }
        if let Some(j) = &job {
            match drain(reader, j, stream, cursor.clone(), out, &closed).await {
                Ok(next) => cursor = next,
                Err(e) if !args.follow => return Err(LogsError::Read(e)),
                Err(e) => tracing::debug!(%key, error = %e, "log read failed; following on"),
            }
        } else if !args.follow {
            return Err(LogsError::NotSubmitted(key));
        }
        if !args.follow || closed.load(Ordering::Relaxed) || last_pass {
            return Ok(());
        }
        let Some(r) = store.get_run(&key).await? else {
            return Ok(());
        };
        // A newer generation started: follow it (unless a generation was asked for).
        // A finished run has no current job: its last generation is the one to end on.
        let current = r.current().0.or(r.last_generation);
        let newer = args.generation.is_none()
            && job.is_some()
            && current.is_some()
            && job.as_ref().map(|j| j.submission.generation) != current;
        let ended = matches!(r.journal.phase, Phase::Finished { .. })
            || (!newer
                && job.is_some()
                && !r.lease_alive
                && probe_due(&mut probed, tokio::time::Instant::now())
                && unattended_job_ended(ctx, store.as_ref(), &r).await);
        if newer || ended {
            // The job ended before the record said so: read what it wrote after our last read
            // (its log is complete now), so the tail is never lost.
            if let Some(j) = &job {
                if let Ok(next) = drain(reader, j, stream, cursor.clone(), out, &closed).await {
                    cursor = next;
                }
            }
        }
        if newer {
            job = None;
            cursor = LogCursor::start();
        }
        if ended && job.is_none() {
            // Its last job was not read yet (or not at all): one more pass, then the end.
            last_pass = true;
            continue;
        }
        if ended {
            return Ok(());
        }
        if newer {
            continue;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A run nobody drives (the caller checks: no live lease) keeps its record unfinished until someone drives it again: its job
/// may have ended all the same. Asks the backend (read only, see `probe`): true once the job
/// ended or is gone, so that following its log ends with the log complete.
async fn unattended_job_ended(
    ctx: &Ctx,
    store: &dyn tether_core::store::Store,
    run: &tether_core::store::RunRecord,
) -> bool {
    let Ok(subs) = store.submissions(&run.key).await else {
        return false;
    };
    crate::probe::unattended_status(ctx, run, &subs)
        .await
        .is_some_and(|s| s.is_terminal() || matches!(s, JobStatus::NotFound { .. }))
}

/// How often a follower of a run nobody drives asks the backend whether its job ended (the
/// log itself is read every 500 ms; a backend call per follower that often is too many).
const PROBE_EVERY: Duration = Duration::from_secs(5);

/// Whether it is time to ask the backend again; records the ask.
fn probe_due(last: &mut Option<tokio::time::Instant>, now: tokio::time::Instant) -> bool {
    if last.is_some_and(|t| now.duration_since(t) < PROBE_EVERY) {
        return false;
    }
    *last = Some(now);
    true
}

fn finished(run: &tether_core::store::RunRecord) -> bool {
    matches!(run.journal.phase, Phase::Finished { .. })
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    #[test]
    fn the_backend_is_asked_at_once_then_at_most_every_probe_interval() {
        let t0 = tokio::time::Instant::now();
        let mut last = None;
        assert!(probe_due(&mut last, t0));
        assert!(!probe_due(&mut last, t0 + Duration::from_millis(500)));
        assert!(!probe_due(
            &mut last,
            t0 + PROBE_EVERY - Duration::from_millis(1)
        ));
        assert!(probe_due(&mut last, t0 + PROBE_EVERY));
        assert!(!probe_due(
            &mut last,
            t0 + PROBE_EVERY + Duration::from_secs(1)
        ));
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
        let closed = AtomicBool::new(false);
        let next = drain(
            &reader,
            &job,
            LogStream::Stdout,
            LogCursor::start(),
            &mut out,
            &closed,
        )
        .await
        .unwrap();
        assert_eq!(next, LogCursor::at_byte(12));
        // Following a finished job asks again from the end: nothing new, no second copy.
        let again = drain(&reader, &job, LogStream::Stdout, next, &mut out, &closed)
            .await
            .unwrap();
        assert_eq!(again, LogCursor::at_byte(12));
        assert_eq!(seen, b"hello world\n");
        assert_eq!(reader.calls.load(Ordering::Relaxed), 3);
    }
}
