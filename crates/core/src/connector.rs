//! What a backend must provide to be driven by tether.
//!
//! The core is small: [`Connector::submit`], [`Connector::status`] and [`Connector::cancel`].
//! Everything else is an opt-in capability returned by a method that defaults to `None`:
//! [`FindByTag`] (heals a crash between submit and id record), [`Logs`] (paged by an opaque
//! [`LogCursor`]), [`RecoveryShape`], [`BulkStatus`] (many jobs of one endpoint in one call),
//! [`BackendEvents`] (what happened inside a running job, for its history).
//! No store type appears here: a connector knows nothing about journals or leases.
//!
//! ## Guarantees a connector must give (checked by the conformance suite in
//! `tether-connectors`)
//! - `submit` hands the request's [`Tag`] to the backend with the job, where `find_by_tag`
//!   (if offered) and `status` (for the identity check) can read it back.
//! - `status` never fails: when it cannot get a definite answer it returns
//!   [`JobStatus::Unknown`]. It returns [`JobStatus::Mismatch`] when the job found under the id
//!   does not carry the expected tag (backends reuse ids).
//! - `cancel` of a finished or unknown job is not an error worth retrying.
//! - `submit` of a [`Shape::Recovery`] submission applies the recovery shape.
use std::{sync::Arc, time::Duration};

use async_trait::async_trait;

mod events;
pub use events::{BackendEvent, BackendEvents, EventCursor, EventsError};
use serde::{Deserialize, Serialize};

use crate::{
    ids::{ExternalId, RunKey, Tag},
    journal::{Shape, Submission},
    observe::{JobStatus, Lookup},
    placement::Placement,
};

/// A request to start one submission of a run.
#[derive(Debug, Clone)]
pub struct SubmitRequest {
    /// The run.
    pub key: RunKey,
    /// Generation, tag and shape of this submission.
    pub submission: Submission,
    /// Confirms the lease right before the job is created: see [`Fence`].
    pub fence: FenceHandle,
}

impl SubmitRequest {
    /// A request for `submission` of run `key`, fenced by `fence`.
    pub fn new(key: RunKey, submission: Submission, fence: Arc<dyn Fence>) -> Self {
        SubmitRequest {
            key,
            submission,
            fence: FenceHandle(fence),
        }
    }
}

/// The owner's lease, as a connector sees it while submitting.
///
/// A connector calls [`Fence::confirm`] immediately before the request that creates or launches
/// the job, after any look-up or wait of its own (searching by tag, waiting for a slot): an owner
/// frozen in between (SIGSTOP, GC pause) and resumed after another owner took the run over
/// learns it here and creates nothing. [`Fence::interrupted`] resolves when the lease is lost or
/// a cancel arrives, for connectors that wait before creating.
#[async_trait]
pub trait Fence: Send + Sync {
    /// A fenced write that proves we still own the run; `Err` means: create nothing.
    async fn confirm(&self) -> Result<(), Fenced>;
    /// Resolves when the lease is lost or the run is cancelled (never, for [`NoFence`]).
    async fn interrupted(&self);
}

/// Why a [`Fence`] did not confirm.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Fenced {
    /// Another owner took the run over: stand down.
    #[error("the lease was lost before the job was created: another owner took the run over")]
    LeaseLost,
    /// The store could not confirm the lease now (outage): create nothing, ask again later.
    #[error("the lease could not be confirmed before creating the job: {reason}")]
    Unconfirmed {
        /// The store's error (outage, timeout), for the history and the message.
        reason: String,
    },
    /// A cancel arrived while the connector waited.
    #[error("the run was cancelled before its job was created")]
    Cancelled,
}

/// A [`Fence`] behind an `Arc`, printable.
#[derive(Clone)]
pub struct FenceHandle(pub Arc<dyn Fence>);

impl std::fmt::Debug for FenceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FenceHandle")
    }
}

impl std::ops::Deref for FenceHandle {
    type Target = dyn Fence;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// A fence that always confirms: for tools and tests that drive a connector without a lease
/// (connector conformance suites). The engine never uses it.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFence;

#[async_trait]
impl Fence for NoFence {
    async fn confirm(&self) -> Result<(), Fenced> {
        Ok(())
    }
    async fn interrupted(&self) {
        std::future::pending::<()>().await
    }
}

/// A submitted job, as the connector needs to address it.
#[derive(Debug, Clone)]
pub struct JobRef {
    /// The backend's id.
    pub external_id: ExternalId,
    /// The submission it belongs to (its tag is checked on reconnect).
    pub submission: Submission,
}

/// Why a submission did not yield an id.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The fence did not confirm the lease right before creating: nothing was created.
    #[error(transparent)]
    Fenced(#[from] Fenced),
    /// The backend refused it (bad spec, missing file, HTTP 400): retrying cannot help.
    #[error("the backend refused the submission: {message}")]
    Rejected {
        /// The backend's answer as it gave it (scrubbed of secrets), e.g. the HTTP 400 body.
        message: String,
    },
    /// The backend could not be reached and nothing was submitted (connection refused).
    #[error("the backend could not be reached, nothing was submitted: {reason}")]
    Unavailable {
        /// How the connection failed before anything was sent, e.g. `connection refused`.
        reason: String,
    },
    /// The request may have reached the backend (timeout after sending, 5xx): the job may exist.
    /// The engine will look it up by tag before submitting again.
    #[error("the submission may have reached the backend: {reason}")]
    Ambiguous {
        /// How the request ended after it was sent, e.g. `timed out after 30s`, `HTTP 503`.
        reason: String,
    },
    /// The backend says the job this submission names existed and is gone (a Databricks
    /// `idempotency_token` whose run was deleted): nothing was started, and the same tag will
    /// never start one. The engine treats it as a lost job (the next generation, by policy).
    #[error("the backend says the job of this submission is gone: {message}")]
    Lost {
        /// The backend's answer as it gave it (scrubbed of secrets).
        message: String,
    },
}

/// Why a cancel did not go through.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// The backend could not be reached: try again.
    #[error("the backend could not be reached to cancel the job: {reason}")]
    Unavailable {
        /// How the connection failed, e.g. `connection refused`, `HTTP 503`.
        reason: String,
    },
    /// The backend refused (e.g. the job already ended).
    #[error("the backend refused to cancel the job: {message}")]
    Refused {
        /// The backend's answer as it gave it (scrubbed of secrets).
        message: String,
    },
}

/// A backend that runs jobs. Implement this (plus any capabilities) for your own backend and
/// the engine gives it the same crash-safety guarantees as the built-in connectors.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// The `kind` this connector answers to in `[job]`.
    fn kind(&self) -> &str;
    /// Time between two status calls when the spec does not say.
    fn default_poll_interval(&self) -> Duration {
        Duration::from_secs(2)
    }
    /// Starts one submission carrying `req.submission.tag`.
    async fn submit(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError>;
    /// Asks for the job's state; checks that the job under this id carries our tag.
    async fn status(&self, job: &JobRef) -> JobStatus;
    /// Waits between two status calls: returns after `max`, or earlier when the job may have
    /// changed (a backend that can await its jobs, e.g. a local process's exit, so a short
    /// job's end is seen at once instead of a poll interval later). Returning early is always
    /// safe: the engine just asks `status` again. The default sleeps `max`.
    async fn wait_change(&self, _job: &JobRef, max: Duration) {
        tokio::time::sleep(max).await
    }
    /// Capability: [`Connector::wait_change`] returns early when the job changes. Without it
    /// the engine does not call `wait_change` at all (one timer and future less per polling
    /// run; 100,000 runs in one worker hold 100,000 of them). Wrappers forward it.
    fn notices_changes(&self) -> bool {
        false
    }
    /// Kills the job (asynchronously: keep observing until it is terminal).
    async fn cancel(&self, job: &JobRef) -> Result<(), CancelError>;
    /// Capability: search by tag.
    fn find_by_tag(&self) -> Option<&dyn FindByTag> {
        None
    }
    /// Capability: read the job's logs.
    fn logs(&self) -> Option<&dyn Logs> {
        None
    }
    /// Capability: a recovery shape for OOM failures.
    fn recovery(&self) -> Option<&dyn RecoveryShape> {
        None
    }
    /// Capability: the backend itself refuses or returns the existing job for a repeated tag
    /// (Databricks `idempotency_token`, a K8s driver pod name, a YARN application id reserved
    /// before submit), so an intent without id may be submitted again with the same tag even
    /// when the connector cannot search by tag.
    fn idempotent_submit(&self) -> bool {
        false
    }
    /// Capability: the jobs live on the machine that submitted them (see [`crate::placement`]).
    fn host_bound(&self) -> Option<&dyn HostBound> {
        None
    }
    /// Capability: observe many jobs of one backend endpoint in one request.
    fn bulk_status(&self) -> Option<&dyn BulkStatus> {
        None
    }
    /// Capability: what the backend saw happen inside a running job, for its history.
    fn events(&self) -> Option<&dyn BackendEvents> {
        None
    }
}

/// Capability: the status of many jobs of one backend endpoint in one request (Spark
/// standalone `/json/`, YARN `apps?applicationTags=`, Livy `GET /batches`, Databricks active
/// `runs/list`), so that a process polling thousands of runs sends a few requests per interval
/// instead of one per run.
///
/// Two steps, so that one request serves the runs of many specs on the same endpoint while each
/// run is judged by its own connector (its own spec, its own caches): one connector of the
/// endpoint [`BulkStatus::fetch`]es, then each run's connector [`BulkStatus::judge`]s its job
/// from that answer.
///
/// ## Guarantees a connector must give
/// - `judge` gives the status [`Connector::status`] would give from the same answer (same
///   identity rules: a job whose tag differs is [`JobStatus::Mismatch`]).
/// - A job the answer does not settle (absent from it, ended and needing a closer look,
///   identity not verified yet) is `None`: the caller then asks [`Connector::status`] for it.
///   `judge` never says [`JobStatus::NotFound`] on absence alone, and never makes a request.
/// - `Err` from `fetch` means the call failed: the caller reports [`JobStatus::Unknown`] for
///   every job it covers (never lost).
/// - Connectors whose [`BulkStatus::endpoint`] is equal can judge each other's answers.
#[async_trait]
pub trait BulkStatus: Send + Sync {
    /// What one bulk request covers (e.g. `spark-standalone http://master:8080`): the answer
    /// fetched by one connector of an endpoint is judged by all of them. Never a secret.
    fn endpoint(&self) -> String;
    /// One request for the state of `jobs` (or of every job of the endpoint).
    async fn fetch(&self, jobs: &[&JobRef]) -> Result<BulkAnswer, BulkError>;
    /// The status of `job` according to `answer` (fetched by a connector of the same
    /// endpoint), or `None`: ask [`Connector::status`].
    fn judge(&self, answer: &BulkAnswer, job: &JobRef) -> Option<JobStatus>;
}

/// A bulk answer as its connector parsed it; only connectors of the same endpoint read it.
#[derive(Clone)]
pub struct BulkAnswer(Arc<dyn std::any::Any + Send + Sync>);

impl BulkAnswer {
    /// Wraps a connector's parsed answer.
    pub fn new<T: std::any::Any + Send + Sync>(answer: T) -> Self {
        BulkAnswer(Arc::new(answer))
    }
    /// The parsed answer, if it is a `T` (`None` for another connector's answer).
    pub fn get<T: std::any::Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl std::fmt::Debug for BulkAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BulkAnswer")
    }
}

/// A bulk status call that failed: every job it covers is [`JobStatus::Unknown`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct BulkError {
    /// What failed and where (scrubbed of secrets), e.g. `GET http://m:8080/json/: HTTP 503`.
    pub reason: String,
}

/// Capability: jobs live on one machine, in one location there (the local backend).
pub trait HostBound: Send + Sync {
    /// Where a submission made now by this connector would live.
    fn placement(&self) -> Placement;
    /// A connector that reaches the jobs placed at `recorded`, or why it cannot from this
    /// machine. Never guesses: a job on another host is [`Elsewhere`], not lost.
    fn rebind(&self, recorded: &Placement) -> Result<Arc<dyn Connector>, Elsewhere>;
}

/// A host-bound job that this process cannot judge: it lives on another machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the job lives on {}; only a process on that host can judge it{}", placement.describe(), if reason.is_empty() { String::new() } else { format!(" ({reason})") })]
pub struct Elsewhere {
    /// Where it lives.
    pub placement: Placement,
    /// Why this process cannot reach it (another host name, the recorded jobs dir is missing); empty when the host alone says it.
    pub reason: String,
}

/// Capability: find a job by the tag it was submitted with.
#[async_trait]
pub trait FindByTag: Send + Sync {
    /// `Found` with the id of the job carrying `tag`, `Absent`, or `Unknown`.
    async fn find_by_tag(&self, tag: &Tag) -> Lookup;
}

/// Which log stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Where to go on reading a log: an opaque token that the connector makes and parses.
///
/// A reader starts at [`LogCursor::start`] and passes back the [`LogChunk::next`] it was
/// given; it never builds or inspects a cursor itself. Each connector chooses its encoding:
/// - local and Spark standalone: a byte offset ([`LogCursor::at_byte`], text `b<offset>`);
/// - Livy (pages by line, `GET /batches/{id}/log?from=&size=`): `l<line index>`;
/// - Kubernetes (pod logs by time, `sinceTime` has 1 s resolution): `t<RFC 3339 time>+<lines
///   already read at that second>`, so lines of the same second are not shown twice.
///
/// A cursor made by another connector is refused with [`LogError::ForeignCursor`], not guessed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LogCursor(String);

impl LogCursor {
    /// The beginning of the log, for every connector (the empty token, also `Default`).
    pub fn start() -> Self {
        LogCursor(String::new())
    }
    /// True for [`LogCursor::start`].
    pub fn is_start(&self) -> bool {
        self.0.is_empty()
    }
    /// A connector's own token (for connectors: readers pass cursors back, never make them).
    pub fn from_token(token: impl Into<String>) -> Self {
        LogCursor(token.into())
    }
    /// The token, for the connector that made it.
    pub fn token(&self) -> &str {
        &self.0
    }
    /// The cursor of a connector that pages by byte offset (local, Spark standalone).
    pub fn at_byte(offset: u64) -> Self {
        LogCursor(format!("b{offset}"))
    }
    /// The byte offset of a cursor made by [`LogCursor::at_byte`] (0 for the start).
    pub fn byte_offset(&self) -> Result<u64, LogError> {
        if self.is_start() {
            return Ok(0);
        }
        self.0
            .strip_prefix('b')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| LogError::ForeignCursor {
                cursor: self.0.clone(),
                expected: "a byte offset (b<offset>)",
            })
    }
}

/// A piece of a log.
#[derive(Debug, Clone, Default)]
pub struct LogChunk {
    /// The bytes from the requested cursor.
    pub data: Vec<u8>,
    /// The cursor to ask for next. Equal to the requested one when nothing new was read.
    pub next: LogCursor,
}

/// Why logs could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The backend could not be reached.
    #[error("logs unavailable: {reason}")]
    Unavailable {
        /// What the backend or the transport said, for the message.
        reason: String,
    },
    /// The backend keeps no logs for this job.
    #[error("no logs for this job: {reason}")]
    NotFound {
        /// What the backend or the transport said, for the message.
        reason: String,
    },
    /// The cursor was not made by this connector (or is corrupt).
    #[error(
        "log cursor {cursor:?} was not made by this connector (it expects {expected}): \
         read again from the start"
    )]
    ForeignCursor {
        /// The cursor given.
        cursor: String,
        /// What this connector's cursors look like.
        expected: &'static str,
    },
}

/// Capability: read a job's logs.
#[async_trait]
pub trait Logs: Send + Sync {
    /// Reads up to `max` bytes of `stream` from `cursor` ([`LogCursor::start`] first, then each
    /// chunk's [`LogChunk::next`]).
    async fn read_logs(
        &self,
        job: &JobRef,
        stream: LogStream,
        cursor: &LogCursor,
        max: usize,
    ) -> Result<LogChunk, LogError>;
}

/// Capability: the connector reshapes a submission after an OOM failure.
pub trait RecoveryShape: Send + Sync {
    /// What the recovery shape changes, in words, for the run's history
    /// (e.g. `spark.executor.cores 4 -> 1 (= spark.task.cpus), spark.executor.memory 512m kept`).
    fn describe(&self) -> String;
}

/// Convenience for connectors: is this submission in the recovery shape?
pub fn is_recovery(req: &SubmitRequest) -> bool {
    req.submission.shape == Shape::Recovery
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_cursors_round_trip_and_the_start_is_offset_zero() {
        assert_eq!(LogCursor::start().byte_offset().unwrap(), 0);
        assert!(LogCursor::start().is_start());
        assert_eq!(LogCursor::at_byte(1234).byte_offset().unwrap(), 1234);
        assert_eq!(LogCursor::at_byte(7).token(), "b7");
        assert!(!LogCursor::at_byte(0).is_start());
    }

    #[test]
    fn a_foreign_cursor_is_refused_saying_what_was_expected() {
        for foreign in ["l120", "t2026-01-01T00:00:00Z+3", "b", "b-1", "bx"] {
            let err = LogCursor::from_token(foreign).byte_offset().unwrap_err();
            assert!(
                matches!(&err, LogError::ForeignCursor { cursor, .. } if cursor == foreign),
                "{err:?}"
            );
            assert!(err.to_string().contains("byte offset"), "{err}");
        }
    }
}
