//! `submit` of the local connector: the job directory, `job.json`, the supervisor's start, and
//! the wait for its first word.
//!
//! ## Guarantees
//! - Nothing is written before the jobs directory and the tag directory pass the checks of
//!   [`super::files`] (ours, `0700`, not writable by others), and the slot lock is ours.
//! - A shape that cannot start here (program missing or not executable, workdir missing,
//!   arguments over the kernel's limits) is [`SubmitError::Rejected`] before anything starts;
//!   a launch whose `exec` fails with an error that cannot heal (`ENOENT`, `ENOTDIR`, `EACCES`,
//!   `E2BIG`, `ENOEXEC`) is rejected too, once the supervisor recorded it. The engine then ends
//!   the run as `failed: rejected` instead of resubmitting it.
//! - The supervisor (and so the job) starts with the scrubbed environment of [`super::env`].
use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use tether_core::{
    connector::{is_recovery, SubmitError, SubmitRequest},
    ids::ExternalId,
};

use super::{
    env, files,
    identity::{read_json, write_json_atomic},
    layout::{slot_lock, EndReason, JobDescription, JobDir, SupervisorRecord, FORMAT_VERSION},
    startable, supervisor_holds_lock, LocalConnector, GRACE, START_TIMEOUT,
};

/// `exec` errors that no retry can heal: the submission is rejected.
const PERMANENT: [i32; 5] = [
    libc::ENOENT,
    libc::ENOTDIR,
    libc::EACCES,
    libc::E2BIG,
    libc::ENOEXEC,
];

impl LocalConnector {
    fn description(&self, req: &SubmitRequest) -> JobDescription {
        let shaped = self.shaped(req);
        JobDescription {
            version: FORMAT_VERSION,
            run_key: req.key.as_str().into(),
            generation: req.submission.generation.0,
            tag: req.submission.tag.as_str().into(),
            // With recovery disabled, a recovery submission is an ordinary one.
            shape: if self.spec.recovery.is_some() {
                req.submission.shape
            } else {
                tether_core::journal::Shape::Normal
            },
            command: shaped.command.clone(),
            env: shaped.env.clone(),
            workdir: shaped.workdir.clone(),
            memory_limit: shaped.memory_limit,
            timeout_ms: shaped
                .timeout
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            grace_ms: u64::try_from(GRACE.as_millis()).unwrap_or(5000),
            jobs_dir: self.jobs_dir.clone(),
            supervisor: self.supervisor.clone(),
        }
    }

    fn shaped(&self, req: &SubmitRequest) -> &super::spec::Shaped {
        match (&self.spec.recovery, is_recovery(req)) {
            (Some(r), true) => r,
            _ => &self.spec.normal,
        }
    }

    /// The whole of `Connector::submit`.
    pub(super) async fn submit_now(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        let tag = &req.submission.tag;
        let dir = self.dir(tag).ok_or_else(|| SubmitError::Rejected {
            message: format!("{tag:?} cannot name a job directory"),
        })?;
        let unsafe_path = |e: files::UnsafePath| SubmitError::Unavailable {
            reason: e.to_string(),
        };
        files::ensure_jobs_dir(&self.jobs_dir).map_err(unsafe_path)?;
        files::ensure_tag_dir(dir.path()).map_err(unsafe_path)?;
        match read_json::<SupervisorRecord>(&dir.supervisor()) {
            // One tag, one job: whatever became of it, it is the job of this submission.
            Ok(Some(r)) => return Ok(ExternalId(r.supervisor.external_id())),
            Ok(None) => {}
            Err(e) => {
                return Err(SubmitError::Ambiguous {
                    reason: format!("a job may exist for tag {tag}: {e}"),
                })
            }
        }
        let starting = supervisor_holds_lock(&dir).map_err(|e| SubmitError::Ambiguous {
            reason: format!("cannot probe {}: {e}", dir.supervisor_lock().display()),
        })?;
        if !starting {
            // Checked here, not only at validation: the program may be gone by now.
            let shaped = self.shaped(req);
            startable::check(shaped, &env::for_job(&shaped.env)).map_err(|e| {
                SubmitError::Rejected {
                    message: e.to_string(),
                }
            })?;
            // A lock another user could hold forever would stall every local job.
            files::open_lock(&slot_lock(&self.jobs_dir)).map_err(|e| SubmitError::Unavailable {
                reason: format!(
                    "the local slot lock {}: {e}",
                    slot_lock(&self.jobs_dir).display()
                ),
            })?;
            // A directory without supervisor (a crash before the start) is reused.
            write_json_atomic(&dir.job(), &self.description(req)).map_err(|e| {
                SubmitError::Unavailable {
                    reason: format!("cannot write {}: {e}", dir.job().display()),
                }
            })?;
            // Confirm the lease right before launching: a frozen ex-owner stops here.
            req.fence.confirm().await?;
            self.start_supervisor(&dir).await?;
        }
        self.first_word(&dir).await
    }

    /// Waits until the supervisor recorded its identity and then started the job, waits for
    /// the slot, or recorded an end (a failed `exec`: rejected when it cannot heal).
    async fn first_word(&self, dir: &JobDir) -> Result<ExternalId, SubmitError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let record = read_json::<SupervisorRecord>(&dir.supervisor()).map_err(|e| {
                SubmitError::Ambiguous {
                    reason: e.to_string(),
                }
            })?;
            if let Some(r) = &record {
                let id = ExternalId(r.supervisor.external_id());
                if r.job.is_some() || r.waiting_for_slot {
                    return Ok(id);
                }
                if let Ok(Some(st)) = super::read_status(dir) {
                    if st.reason == EndReason::SpawnFailed
                        && st.errno.is_some_and(|e| PERMANENT.contains(&e))
                    {
                        return Err(SubmitError::Rejected {
                            message: st.message,
                        });
                    }
                    return Ok(id);
                }
            }
            if Instant::now() >= deadline {
                return match record {
                    // It exists; `status` tells the rest.
                    Some(r) => Ok(ExternalId(r.supervisor.external_id())),
                    None => Err(SubmitError::Ambiguous {
                        reason: format!(
                            "the supervisor did not record its identity within {}s; see {}",
                            START_TIMEOUT.as_secs(),
                            dir.supervisor_log().display()
                        ),
                    }),
                };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn start_supervisor(&self, dir: &JobDir) -> Result<(), SubmitError> {
        let Some((program, lead)) = self.supervisor.split_first() else {
            return Err(SubmitError::Unavailable {
                reason: "no supervisor program is configured (BuildContext.supervisor is empty)"
                    .into(),
            });
        };
        let log =
            files::open_append(&dir.supervisor_log()).map_err(|e| SubmitError::Unavailable {
                reason: format!("cannot open {}: {e}", dir.supervisor_log().display()),
            })?;
        let mut child = tokio::process::Command::new(program)
            .args(lead)
            .arg("launch")
            .arg(dir.path())
            // The supervisor needs nothing of tether's environment; the job gets it scrubbed.
            .env_clear()
            .envs(env::scrubbed())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own group: a Ctrl-C aimed at tether must not reach the supervisor.
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| SubmitError::Unavailable {
                reason: format!("cannot start the supervisor {program:?}: {e}; check that tether's binary is intact"),
            })?;
        // The launcher exits at once; reaping it here keeps it from lingering as a zombie.
        match tokio::time::timeout(START_TIMEOUT, child.wait()).await {
            Ok(Ok(st)) if st.success() => Ok(()),
            Ok(Ok(st)) => Err(SubmitError::Unavailable {
                reason: format!(
                    "the supervisor launcher failed ({st}); see {}",
                    dir.supervisor_log().display()
                ),
            }),
            Ok(Err(e)) => Err(SubmitError::Ambiguous {
                reason: format!("cannot wait for the supervisor launcher: {e}"),
            }),
            Err(_) => {
                // Reap it in the background whenever it ends.
                tokio::spawn(async move {
                    let _ = child.wait().await;
                });
                Err(SubmitError::Ambiguous {
                    reason: "the supervisor launcher did not finish in time".into(),
                })
            }
        }
    }
}
