//! The `local` backend: jobs run as processes on this machine, each under a small supervisor
//! of ours that outlives tether.
//!
//! A submission is a directory `<jobs_dir>/<tag>/` (see [`layout`]). `submit` writes the job
//! description there, starts the supervisor ([`supervisor`]) and returns once the supervisor
//! recorded its identity; the external id is that identity, `"<pid>:<start time>"`. `status`,
//! `cancel`, `find_by_tag` and the logs are answered from the directory and `/proc` alone, so
//! any tether process, started at any time after, can pick the job up again.
//!
//! ## Guarantees
//! - The job keeps running, and its outcome is recorded, when every tether process dies
//!   (SIGKILL included): it runs in its own session under the supervisor, which writes
//!   `status.json` atomically.
//! - One tag, one job: `submit` for a tag whose directory already had a supervisor returns that
//!   supervisor's id instead of starting anything, and two supervisors never run for one tag.
//! - A pid reused by another process, or a pid from before a reboot, is never taken for our
//!   supervisor or job (identity = pid, start time, boot id), and is never signalled.
//! - A submission in the recovery shape runs alone among the jobs of the same `jobs_dir`.
//! - `status` never panics and never blocks for long: anything it cannot read is `Unknown`.
//! - A submission that cannot start here ends the run at once: `submit` checks the program,
//!   the workdir and the size of arguments ([`startable`]), and reports an `exec` failure that
//!   cannot heal (`ENOENT`, `ENOTDIR`, `EACCES`, `E2BIG`, `ENOEXEC`) as rejected (see `launch`).
//! - Files ([`files`]): the jobs and tag directories are `0700` and files `0600` whatever the
//!   umask; directories not owned by this user or writable by others are refused; job files
//!   are opened with `O_NOFOLLOW`; `supervisor.json`/`status.json` owned by another user make
//!   the job `Unknown` (never adopted, never signalled); the slot lock must be ours.
//! - Environment ([`env`]): the supervisor and the job get tether's environment without
//!   `TETHER_*`, `PG*`, `DATABASE_URL` and names containing `TOKEN`, `SECRET`, `PASSWORD`,
//!   `PASSWD`, `CREDENTIAL` or `KEY`; then the spec's `env`, which always wins.
//!
//! ## Assumptions
//! - Linux (`/proc`, `flock`, `setsid`), and a `jobs_dir` on a local file system that every
//!   tether process of this state store shares, all running as the same user (the owner of
//!   the jobs directory).
//! - [`LocalFactory`]'s supervisor program starts [`supervisor::supervise_main`] (the CLI's hidden
//!   `__supervise` subcommand, or the `tether-supervisor` binary).
//!
//! ## Caveats
//! - If the supervisor is SIGKILLed or the machine reboots, the outcome is lost: `status` says
//!   `NotFound` (lost). After a SIGKILLed supervisor the job may still run; `cancel` then kills
//!   its process group directly (after checking its identity).
//! - The job inherits the (scrubbed) environment of the tether process that submitted it, plus
//!   `env`: a worker's `PATH`, `HOME` and locale, not the submitter's.
//! - The checks before launch are by the book, not a sandbox: a job runs as tether's user and
//!   can read whatever that user can.
//! - Job directories are never deleted by the backend; prune old ones yourself.
pub mod env;
mod factory;
pub mod files;
pub mod identity;
mod launch;
pub mod layout;
mod logs;
pub mod memory;
pub mod placement;
mod spawn;
pub mod spec;
pub mod startable;
pub mod supervisor;
mod sys;
mod wait;
mod watch;

use std::{
    fs::File,
    io,
    path::{Path, PathBuf},
    time::Duration,
};

use async_trait::async_trait;
use serde_json::json;
use tether_core::{
    connector::{CancelError, FindByTag, JobRef, Logs, RecoveryShape, SubmitError, SubmitRequest},
    ids::{ExternalId, Tag},
    journal::Shape,
    observe::{FailureClass, JobStatus, Lookup},
    Connector,
};

pub use factory::LocalFactory;
use identity::{now_ms, read_json, write_atomic, Identity, Liveness, ProcStat};
use layout::{
    slot_lock, EndReason, JobDir, RecordError, StatusRecord, SupervisorRecord, FORMAT_VERSION,
};
pub use spec::{LocalJob, LocalRecovery, LocalSpec};
pub use supervisor::supervise_main;

/// Default time between two status calls for local jobs.
pub const DEFAULT_POLL: Duration = Duration::from_millis(500);
/// Time between SIGTERM and SIGKILL on cancel and timeout.
pub const GRACE: Duration = Duration::from_secs(5);
/// How long `submit` waits for the supervisor to record its identity.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The local connector. Cheap to build; holds no process or file open between calls.
#[derive(Debug, Clone)]
pub struct LocalConnector {
    jobs_dir: PathBuf,
    supervisor: Vec<String>,
    spec: LocalSpec,
}

impl LocalConnector {
    /// A connector keeping its jobs in `jobs_dir`, starting supervisors with `supervisor`
    /// (program and leading arguments) and running `spec`.
    pub fn new(jobs_dir: PathBuf, supervisor: Vec<String>, spec: LocalSpec) -> Self {
        LocalConnector {
            jobs_dir,
            supervisor,
            spec,
        }
    }

    /// The directory this connector keeps its jobs in.
    pub fn jobs_dir(&self) -> &Path {
        &self.jobs_dir
    }

    /// The same connector keeping its jobs in `dir` (e.g. the directory a run was submitted
    /// with, whatever this process's configuration says).
    pub fn with_jobs_dir(&self, dir: PathBuf) -> Self {
        LocalConnector {
            jobs_dir: dir,
            ..self.clone()
        }
    }

    /// The directory of a tag, or `None` if the tag cannot be ours.
    fn dir(&self, tag: &Tag) -> Option<JobDir> {
        JobDir::new(&self.jobs_dir, tag.as_str())
    }

    /// Checks that the jobs directory and the tag's directory, where they exist, are ours and
    /// writable by nobody else: otherwise nothing in them can be trusted.
    fn trusted(&self, dir: &JobDir) -> Result<(), files::UnsafePath> {
        files::check_jobs_dir(&self.jobs_dir)?;
        files::check_tag_dir(dir.path()).map(drop)
    }

    /// Status from the files and `/proc`, synchronously (all reads are of small local files).
    fn status_now(&self, job: &JobRef) -> JobStatus {
        let tag = &job.submission.tag;
        let Some(dir) = self.dir(tag) else {
            return JobStatus::NotFound {
                detail: format!("{tag:?} cannot be the tag of a local job"),
            };
        };
        match files::check_jobs_dir(&self.jobs_dir).and_then(|_| files::check_tag_dir(dir.path())) {
            Ok(true) => {}
            Ok(false) => {
                return JobStatus::NotFound {
                    detail: format!("no local job with tag {tag} in {}", self.jobs_dir.display()),
                }
            }
            // Someone else could have written what is in there: never judge (or adopt) it.
            Err(e) => {
                return JobStatus::Unknown {
                    reason: e.to_string(),
                }
            }
        }
        let record = match read_json::<SupervisorRecord>(&dir.supervisor()) {
            Ok(Some(r)) => r,
            Ok(None) => {
                return JobStatus::NotFound {
                    detail: format!(
                        "no supervisor ever ran for tag {tag} ({} is missing)",
                        dir.supervisor().display()
                    ),
                }
            }
            Err(e) => {
                return JobStatus::Unknown {
                    reason: e.to_string(),
                }
            }
        };
        let found = record.supervisor.external_id();
        if found != job.external_id.0 {
            return JobStatus::Mismatch {
                found: format!(
                    "tag {tag} belongs to local job {found}, not {}",
                    job.external_id
                ),
            };
        }
        match read_status(&dir) {
            Ok(Some(st)) => return to_status(&dir, &st),
            Ok(None) => {}
            Err(e) => {
                return JobStatus::Unknown {
                    reason: e.to_string(),
                }
            }
        }
        match record.supervisor.liveness() {
            Ok(Liveness::Alive) => match &record.job {
                // Waiting for the local slot is the local backend's queue.
                // Said in the words of this job: only a recovery job runs alone.
                None if job.submission.shape == Shape::Recovery => JobStatus::queued(format!(
                    "waiting for the local slot ({}): a recovery job runs alone, so it waits for \
                     the other local jobs to end",
                    slot_lock(&self.jobs_dir).display()
                )),
                None => JobStatus::queued(format!(
                    "waiting for the local slot ({}): a recovery job runs alone there; this job \
                     starts when it ends",
                    slot_lock(&self.jobs_dir).display()
                )),
                Some(p) => JobStatus::running(format!(
                    "running as pid {} for {}s (supervisor pid {})",
                    p.pid,
                    now_ms().saturating_sub(p.started_at_ms) / 1000,
                    record.supervisor.pid
                )),
            },
            // The supervisor writes status.json before it exits: look again before calling it lost.
            Ok(Liveness::Gone(why)) => match read_status(&dir) {
                Ok(Some(st)) => to_status(&dir, &st),
                // The supervisor died (SIGKILL, OOM killer) but the job itself may still run:
                // calling it lost now would make the engine start a second copy beside it.
                Ok(None) if job_still_runs(&record) => JobStatus::running(format!(
                        "running unsupervised: its supervisor {found} is gone ({why}); waiting for \
                         the job to end (its exit status will not be known, so it will count as lost)"
                )),
                Ok(None) => JobStatus::NotFound {
                    detail: format!(
                        "the local job is lost: its supervisor {found} is gone without recording an outcome ({why}){}",
                        match &record.job {
                            Some(p) => format!("; its process group {} may still run unsupervised", p.pgid),
                            None => String::new(),
                        }
                    ),
                },
                Err(e) => JobStatus::Unknown { reason: e.to_string() },
            },
            Err(e) => JobStatus::Unknown { reason: format!("cannot read /proc: {e}") },
        }
    }

    fn cancel_now(&self, job: &JobRef) -> Result<Option<(i32, u64)>, CancelError> {
        let tag = &job.submission.tag;
        let refused = |message: String| CancelError::Refused { message };
        let dir = self
            .dir(tag)
            .ok_or_else(|| refused(format!("{tag:?} cannot be the tag of a local job")))?;
        // Never signal a process named by a record someone else could have written.
        self.trusted(&dir).map_err(|e| CancelError::Unavailable {
            reason: e.to_string(),
        })?;
        let record = match read_json::<SupervisorRecord>(&dir.supervisor()) {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Err(refused(format!(
                    "no local job with tag {tag}: nothing to cancel"
                )))
            }
            Err(e) => {
                return Err(CancelError::Unavailable {
                    reason: e.to_string(),
                })
            }
        };
        if record.supervisor.external_id() != job.external_id.0 {
            return Err(refused(format!(
                "tag {tag} belongs to local job {}, not {}: not cancelling it",
                record.supervisor.external_id(),
                job.external_id
            )));
        }
        if let Ok(Some(st)) = read_status(&dir) {
            return Err(refused(format!("the job already ended: {}", st.message)));
        }
        // The request on disk comes first: the supervisor polls it, so a lost signal or a
        // supervisor that is just starting still sees it.
        write_atomic(&dir.cancel(), now_ms().to_string().as_bytes()).map_err(|e| {
            CancelError::Unavailable {
                reason: format!("cannot write {}: {e}", dir.cancel().display()),
            }
        })?;
        match record.supervisor.liveness() {
            Ok(Liveness::Alive) => {
                // Prompt reaction; the supervisor forwards SIGTERM (then SIGKILL) to the group.
                let _ = sys::kill_pid(record.supervisor.pid, sys::SIGTERM);
                Ok(None)
            }
            Ok(Liveness::Gone(_)) => {
                // Nobody supervises the job any more: kill its group ourselves, if it is still
                // the very process we started.
                let Some(p) = record.job else { return Ok(None) };
                if job_is_alive(p.pid, p.start_time, &record.supervisor.boot_id) {
                    sys::kill_group(p.pgid, sys::SIGTERM).map_err(|e| {
                        CancelError::Unavailable {
                            reason: format!("cannot signal the job: {e}"),
                        }
                    })?;
                    return Ok(Some((p.pgid, p.start_time)));
                }
                Ok(None)
            }
            Err(e) => Err(CancelError::Unavailable {
                reason: format!("cannot read /proc: {e}"),
            }),
        }
    }
}

fn job_is_alive(pid: i32, start_time: u64, boot: &str) -> bool {
    identity::boot_id().is_ok_and(|b| b == boot)
        && ProcStat::read(pid)
            .is_ok_and(|s| s.start_time == start_time && !matches!(s.state, 'Z' | 'X' | 'x'))
}

fn read_status(dir: &JobDir) -> Result<Option<StatusRecord>, RecordError> {
    let path = dir.status();
    match read_json::<StatusRecord>(&path) {
        Ok(Some(st)) if st.version != FORMAT_VERSION => Err(RecordError::Version {
            path,
            found: st.version,
        }),
        Ok(st) => Ok(st),
        Err(source) => Err(RecordError::Unreadable { path, source }),
    }
}

/// Maps a recorded outcome to the job's status.
fn to_status(dir: &JobDir, st: &StatusRecord) -> JobStatus {
    let failed = |class| JobStatus::Failed {
        class,
        message: st.message.clone(),
    };
    match st.reason {
        EndReason::Exited if st.exit_code == Some(0) => JobStatus::Succeeded {
            result: json!({
                "exit_code": 0,
                "peak_rss_bytes": st.peak_rss_bytes,
                "duration_ms": st.duration_ms,
                "started_at_ms": st.started_at_ms,
                "ended_at_ms": st.ended_at_ms,
                "memory_enforcement": st.memory_enforcement,
                "stdout": dir.stdout(),
                "stderr": dir.stderr(),
            }),
        },
        EndReason::Exited | EndReason::Signaled | EndReason::Timeout => failed(FailureClass::Other),
        EndReason::Oom => failed(FailureClass::Oom),
        EndReason::Cancelled => failed(FailureClass::Killed),
        EndReason::SpawnFailed => failed(FailureClass::Rejected),
    }
}

/// Is a supervisor holding `supervisor.lock` right now (i.e. starting or running)?
/// Whether the job's own process (same pid, start time and boot) still runs.
fn job_still_runs(record: &SupervisorRecord) -> bool {
    let Some(p) = &record.job else { return false };
    let job = Identity {
        pid: p.pid,
        start_time: p.start_time,
        boot_id: record.supervisor.boot_id.clone(),
    };
    matches!(job.liveness(), Ok(Liveness::Alive))
}

fn supervisor_holds_lock(dir: &JobDir) -> io::Result<bool> {
    let file = match File::open(dir.supervisor_lock()) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    // A shared probe, released when `file` closes; the supervisor retries if it collides.
    Ok(!sys::try_flock(&file, sys::LockKind::Shared)?)
}

#[async_trait]
impl Connector for LocalConnector {
    fn kind(&self) -> &str {
        "local"
    }

    fn default_poll_interval(&self) -> Duration {
        DEFAULT_POLL
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        self.submit_now(req).await
    }

    async fn status(&self, job: &JobRef) -> JobStatus {
        self.status_now(job)
    }

    async fn wait_change(&self, job: &JobRef, max: Duration) {
        self.wait_change_now(job, max).await
    }
    fn notices_changes(&self) -> bool {
        true
    }

    async fn cancel(&self, job: &JobRef) -> Result<(), CancelError> {
        if let Some((pgid, start_time)) = self.cancel_now(job)? {
            // Unsupervised job: escalate to SIGKILL after the grace period, in the background,
            // if the group's leader is still the process we started.
            let boot = identity::boot_id().unwrap_or_default();
            tokio::spawn(async move {
                tokio::time::sleep(GRACE).await;
                if job_is_alive(pgid, start_time, &boot) {
                    let _ = sys::kill_group(pgid, sys::SIGKILL);
                }
            });
        }
        Ok(())
    }

    fn find_by_tag(&self) -> Option<&dyn FindByTag> {
        Some(self)
    }

    fn logs(&self) -> Option<&dyn Logs> {
        Some(self)
    }

    fn recovery(&self) -> Option<&dyn RecoveryShape> {
        self.spec
            .recovery
            .is_some()
            .then_some(self as &dyn RecoveryShape)
    }

    fn host_bound(&self) -> Option<&dyn tether_core::connector::HostBound> {
        Some(self)
    }
}

#[async_trait]
impl FindByTag for LocalConnector {
    async fn find_by_tag(&self, tag: &Tag) -> Lookup {
        let Some(dir) = self.dir(tag) else {
            return Lookup::Absent;
        };
        if let Err(e) = self.trusted(&dir) {
            return Lookup::Unknown {
                reason: e.to_string(),
            };
        }
        match read_json::<SupervisorRecord>(&dir.supervisor()) {
            Ok(Some(r)) => Lookup::Found {
                external_id: ExternalId(r.supervisor.external_id()),
            },
            Ok(None) => match supervisor_holds_lock(&dir) {
                Ok(false) => Lookup::Absent,
                Ok(true) => Lookup::Unknown {
                    reason: format!("a supervisor is starting for tag {tag}; ask again"),
                },
                Err(e) => Lookup::Unknown {
                    reason: format!("cannot probe {}: {e}", dir.supervisor_lock().display()),
                },
            },
            Err(e) => Lookup::Unknown {
                reason: e.to_string(),
            },
        }
    }
}

impl RecoveryShape for LocalConnector {
    fn describe(&self) -> String {
        self.spec.describe_recovery()
    }
}
