//! The exit codes of `tether`, one enum so that no command invents its own number.
use std::process::ExitCode;

use tether_core::journal::Outcome;

/// How a command ended, as its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: the job succeeded, or the command did what was asked.
    Succeeded = 0,
    /// 1: the job failed for good.
    Failed = 1,
    /// 2: bad input or usage; nothing was written.
    BadInput = 2,
    /// 3: the run was cancelled.
    Cancelled = 3,
    /// 4: the status stayed unknown (or the job lives on another host, or the store is busy):
    /// the run stays resumable.
    Unknown = 4,
    /// 5: another owner took the run over; this process stood down without touching the job.
    LeaseLost = 5,
    /// 6: no run with that key (or no such generation, or no log yet).
    NotFound = 6,
    /// 7: `tether wait --timeout` ran out with the run still going.
    Timeout = 7,
    /// 8: `tether logs` could not read the job's log (the backend or its files failed); the
    /// run itself is not affected.
    LogsUnreadable = 8,
    /// 130: interrupted (SIGINT, SIGTERM or SIGHUP); the job was left running.
    Interrupted = 130,
}

impl Exit {
    /// The code of a run's outcome: succeeded, failed or cancelled.
    pub fn of(outcome: &Outcome) -> Exit {
        match outcome {
            Outcome::Succeeded { .. } => Exit::Succeeded,
            Outcome::Failed { .. } => Exit::Failed,
            Outcome::Cancelled { .. } => Exit::Cancelled,
        }
    }

    /// The word of the JSON error object (`--json` mode) that goes with this code.
    pub fn error_kind(self) -> tether_fleet::view::ErrorKind {
        use tether_fleet::view::ErrorKind;
        match self {
            Exit::NotFound => ErrorKind::NotFound,
            Exit::Unknown | Exit::Interrupted => ErrorKind::Unknown,
            Exit::LeaseLost => ErrorKind::LeaseLost,
            Exit::Failed | Exit::Cancelled => ErrorKind::Failed,
            Exit::Timeout => ErrorKind::Timeout,
            Exit::LogsUnreadable => ErrorKind::LogsUnreadable,
            Exit::Succeeded | Exit::BadInput => ErrorKind::BadInput,
        }
    }

    /// The number the process exits with.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        let all = [
            (Exit::Succeeded, 0),
            (Exit::Failed, 1),
            (Exit::BadInput, 2),
            (Exit::Cancelled, 3),
            (Exit::Unknown, 4),
            (Exit::LeaseLost, 5),
            (Exit::NotFound, 6),
            (Exit::Timeout, 7),
            (Exit::LogsUnreadable, 8),
            (Exit::Interrupted, 130),
        ];
        for (e, n) in all {
            assert_eq!(e.code(), n, "{e:?}");
        }
    }
}
