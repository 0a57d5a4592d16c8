//! The JSON error object a front end prints (or serves) instead of a view when a command fails
//! in `--json` mode, so a script reading stdout always gets JSON.
use serde::Serialize;

use super::SCHEMA_VERSION;

/// What kind of failure, one word a script can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad input or usage: nothing was written.
    BadInput,
    /// The run (or generation) asked for does not exist.
    NotFound,
    /// The outcome is not known yet (store busy or unreachable, status unknown): try again.
    Unknown,
    /// Another owner drives the run.
    LeaseLost,
    /// The job failed, or reading its logs failed.
    Failed,
    /// A wait ended at its `--timeout` with the run still going.
    Timeout,
    /// The job's log could not be read (`tether logs`); the run is not affected.
    LogsUnreadable,
}

/// `{"schema_version": 1, "error": {"kind": "not_found", "message": "…", "exit_code": 6}}`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorView {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The error itself.
    pub error: ErrorBody,
}

/// The body of an [`ErrorView`].
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    /// One word.
    pub kind: ErrorKind,
    /// What went wrong, where, and what to do (the same text as on stderr).
    pub message: String,
    /// The process exit code that goes with it (a server gives its own status instead).
    pub exit_code: u8,
}

impl ErrorView {
    /// An error object.
    pub fn new(kind: ErrorKind, message: impl Into<String>, exit_code: u8) -> ErrorView {
        ErrorView {
            schema_version: SCHEMA_VERSION,
            error: ErrorBody {
                kind,
                message: message.into(),
                exit_code,
            },
        }
    }
}
