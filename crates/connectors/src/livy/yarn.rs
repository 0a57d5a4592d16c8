//! When Livy forgets a batch, YARN still knows its application: the batch's tag is in
//! `spark.yarn.tags`, so the ResourceManager (through [`crate::spark_yarn::rm::Rm`], the same
//! client the `spark-yarn` backend uses) can say whether the work still runs.
//!
//! Livy killed (SIGKILL, OOM, a host reboot) and restarted without recovery has forgotten every
//! batch and numbers them from 0 again, but the YARN applications its spark-submits launched in
//! cluster mode run on. Reading that as "lost" and starting the next generation would run the job
//! twice, at the same time. So before a Livy run is called lost, and before a tag is called absent
//! (which lets the engine submit again), the RM is asked for applications carrying the tag.
//!
//! ## Guarantees
//! - Status, when Livy does not know the recorded batch (404, or the id now names another batch):
//!   an application with our tag that YARN has not ended → its active state ("Livy forgot the
//!   batch; still running on YARN"), never lost; one that `FINISHED`/`SUCCEEDED` → succeeded (the
//!   work was done: running it again would run it twice); the RM unreachable → unknown (asked
//!   again, never a resubmit). Only without any such application, or when it failed or was
//!   killed, is the answer Livy's own (not found / mismatch), with what YARN said added.
//! - Find-by-tag, when Livy lists no batch with the tag: the earliest application with the tag is
//!   adopted as `yarn:<application id>` (not a Livy batch id: Livy ids are integers), followed
//!   through the RM from then on (status, cancel by the RM's kill); the RM unreachable → unknown.
//!
//! ## Assumptions
//! - Livy submits in YARN cluster mode with the tag in `spark.yarn.tags` (this backend puts it
//!   there whatever the spec's `conf` says), and the RM address is known: `rm_url`, or the
//!   `yarn-site.xml` of `hadoop_conf_dir` / `HADOOP_CONF_DIR` / `YARN_CONF_DIR`.
//!
//! ## Caveats
//! - Without an RM address (a Livy on `local[*]`, or none configured) nothing is checked, as before.
//! - A batch forgotten before spark-submit reached YARN leaves nothing to find: it is lost.
//! - An adopted `yarn:` run has no Livy log: `tether logs` says so (use `yarn logs`).
use tether_core::{
    connector::{CancelError, JobRef},
    ids::{ExternalId, Tag},
    observe::{ActiveState, JobStatus, Lookup},
};

use super::Livy;
use crate::spark_yarn::{
    rm::AppAnswer,
    state::{status_of, AppReport},
};

/// The prefix of an external id that is a YARN application adopted without its Livy batch.
pub const ADOPTED: &str = "yarn:";

/// The YARN application id of an adopted external id.
pub fn adopted(id: &str) -> Option<&str> {
    id.strip_prefix(ADOPTED)
}

impl Livy {
    /// The applications carrying `tag`, earliest first; `None` without an RM address.
    async fn tagged(&self, tag: &str) -> Option<Result<Vec<AppReport>, String>> {
        let rm = self.rm.as_ref()?;
        Some(match rm.apps_with_tag(tag).await {
            Ok(apps) => {
                let mut ours: Vec<_> = apps.into_iter().filter(|a| a.has_tag(tag)).collect();
                ours.sort_by_key(|a| crate::spark_yarn::app_order(&a.id));
                Ok(ours)
            }
            Err(e) => Err(format!("{e} (YARN ResourceManager at {})", rm.base())),
        })
    }

    /// Livy said `forgotten` (not found or mismatch) for our batch: what YARN says instead.
    pub(super) async fn ask_yarn(&self, tag: &str, forgotten: JobStatus) -> JobStatus {
        let livy_said = match &forgotten {
            JobStatus::NotFound { detail } => detail.clone(),
            JobStatus::Mismatch { found } => found.clone(),
            other => return other.clone(),
        };
        let apps = match self.tagged(tag).await {
            None => return forgotten,
            Some(Err(e)) => {
                return JobStatus::Unknown {
                    reason: format!(
                        "Livy no longer knows the batch ({livy_said}) and YARN cannot be asked \
                         whether its application still runs: {e}"
                    ),
                }
            }
            Some(Ok(apps)) => apps,
        };
        let class = self.job.class_name.as_deref();
        if let Some(live) = apps.iter().find(|a| !a.is_final()) {
            let state = match status_of(live, tag, class) {
                JobStatus::Active { state, .. } => state,
                _ => ActiveState::Running,
            };
            return JobStatus::Active {
                state,
                detail: format!(
                    "Livy forgot the batch ({livy_said}); its YARN application {} is {} (followed on YARN)",
                    live.id, live.state
                ),
            };
        }
        if let Some(done) = apps
            .iter()
            .find(|a| matches!(status_of(a, tag, class), JobStatus::Succeeded { .. }))
        {
            return status_of(done, tag, class);
        }
        let ended: Vec<String> = apps
            .iter()
            .map(|a| format!("{} {}/{}", a.id, a.state, a.final_status))
            .collect();
        let yarn = if ended.is_empty() {
            "YARN has no application with the tag".to_string()
        } else {
            format!(
                "YARN's applications with the tag ended: {}",
                ended.join(", ")
            )
        };
        match forgotten {
            JobStatus::NotFound { detail } => JobStatus::NotFound {
                detail: format!("{detail}; {yarn}"),
            },
            JobStatus::Mismatch { found } => JobStatus::Mismatch {
                found: format!("{found}; {yarn}"),
            },
            other => other,
        }
    }

    /// Livy lists no batch named `tag`: an application with it on YARN, adopted, or absent.
    pub(super) async fn find_on_yarn(&self, tag: &Tag) -> Lookup {
        match self.tagged(tag.as_str()).await {
            None => Lookup::Absent,
            Some(Err(reason)) => Lookup::Unknown {
                reason: format!(
                    "Livy lists no batch named {tag}, and YARN cannot be asked: {reason}"
                ),
            },
            Some(Ok(apps)) => match apps.into_iter().next() {
                Some(a) => Lookup::Found {
                    external_id: ExternalId(format!("{ADOPTED}{}", a.id)),
                },
                None => Lookup::Absent,
            },
        }
    }

    /// Status of an adopted `yarn:<application id>`.
    pub(super) async fn adopted_status(&self, app: &str, tag: &str) -> JobStatus {
        let Some(rm) = &self.rm else {
            return JobStatus::Unknown {
                reason: format!(
                    "the run follows YARN application {app} but this spec names no \
                     ResourceManager: set rm_url (or hadoop_conf_dir)"
                ),
            };
        };
        match rm.app(app).await {
            Ok(AppAnswer::Found(report)) => status_of(&report, tag, self.job.class_name.as_deref()),
            Ok(AppAnswer::NotFound(message)) => JobStatus::NotFound {
                detail: format!("YARN does not know application {app}: {message}"),
            },
            Err(e) => JobStatus::Unknown {
                reason: e.to_string(),
            },
        }
    }

    /// Cancel of an adopted `yarn:<application id>`: the RM's kill, after the tag check.
    pub(super) async fn adopted_cancel(&self, app: &str, job: &JobRef) -> Result<(), CancelError> {
        let tag = job.submission.tag.as_str();
        match self.adopted_status(app, tag).await {
            JobStatus::Active { .. } => {}
            JobStatus::Unknown { reason } => return Err(CancelError::Unavailable { reason }),
            other => {
                return Err(CancelError::Refused {
                    message: format!("YARN application {app} is not running ours: {other:?}"),
                })
            }
        }
        let rm = self.rm.as_ref().expect("adopted_status checked the RM");
        rm.kill(app).await.map_err(|e| match e.outcome() {
            crate::http::Outcome::Definite => CancelError::Refused {
                message: e.to_string(),
            },
            _ => CancelError::Unavailable {
                reason: e.to_string(),
            },
        })
    }
}
