//! Awaiting a local job between two status calls ([`Connector::wait_change`]): the engine's
//! poll sleep ends when the job's supervisor exits, which it does right after writing
//! `status.json`, so a short job's end is seen at once rather than a poll interval later.
//!
//! ## Guarantees
//! - Returns at the latest after `max`, earlier only when the recorded supervisor exits during
//!   the wait; the caller then asks `status`, which reads the recorded end.
//! - Never awaits a process that is not the recorded supervisor: the pidfd is opened first and
//!   the process's identity (pid, start time, boot id) checked after, so a reused pid is never
//!   taken for it. A supervisor already gone (the job may run unsupervised, `status` still says
//!   active) is not awaited: the wait is the plain sleep, never a busy loop.
//!
//! ## Caveats
//! - One descriptor per run for the length of its wait. Without pidfd (Linux before 5.3, a
//!   descriptor limit reached) the wait is the plain sleep, as before.
//!
//! [`Connector::wait_change`]: tether_core::Connector::wait_change
use std::{os::fd::OwnedFd, time::Duration};

use tether_core::connector::JobRef;
use tokio::io::unix::AsyncFd;

use super::{identity::Liveness, layout::SupervisorRecord, read_json, sys, LocalConnector};

/// What there is to wait for.
enum Awaitable {
    /// The live supervisor's exit.
    Exit(AsyncFd<OwnedFd>),
    /// The end is recorded already (it came after the last status call): ask again at once.
    Ended,
    /// Nothing to await: sleep.
    Nothing,
}

impl LocalConnector {
    pub(super) async fn wait_change_now(&self, job: &JobRef, max: Duration) {
        match self.awaitable(job) {
            Awaitable::Exit(exit) => {
                let _ = tokio::time::timeout(max, exit.readable()).await;
            }
            Awaitable::Ended => {}
            Awaitable::Nothing => tokio::time::sleep(max).await,
        }
    }

    fn awaitable(&self, job: &JobRef) -> Awaitable {
        let Some(dir) = self.dir(&job.submission.tag) else {
            return Awaitable::Nothing;
        };
        if self.trusted(&dir).is_err() {
            return Awaitable::Nothing;
        }
        let record = match read_json::<SupervisorRecord>(&dir.supervisor()) {
            Ok(Some(r)) if r.supervisor.external_id() == job.external_id.0 => r,
            _ => return Awaitable::Nothing,
        };
        // Opened before the identity check: from then on the descriptor names this very
        // process, so a pid reused later cannot be mistaken for the supervisor.
        let fd = sys::pidfd_open(record.supervisor.pid).ok();
        let alive = matches!(record.supervisor.liveness(), Ok(Liveness::Alive));
        match fd {
            Some(fd) if alive && !sys::wait_exit(&fd, Duration::ZERO).unwrap_or(true) => {
                match sys::async_pidfd(fd) {
                    Ok(exit) => Awaitable::Exit(exit),
                    Err(_) => Awaitable::Nothing,
                }
            }
            // Gone already: its end is recorded (ask at once), or it died without recording
            // one (the job may run unsupervised: sleep, never spin).
            _ if dir.status().exists() => Awaitable::Ended,
            _ => Awaitable::Nothing,
        }
    }
}
