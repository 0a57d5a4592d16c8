//! Submit, status and cancel against the REST submission server: the raw answers, before
//! [`super::SparkStandalone`]'s `Connector` impl scrubs the token out of them and escapes
//! control characters.
use std::sync::Arc;

use serde_json::json;
use tether_core::{
    connector::{CancelError, FindByTag, JobRef, SubmitError, SubmitRequest},
    ids::ExternalId,
    observe::{FailureClass, JobStatus, Lookup},
};

use super::{
    rest::{self, first_line, RestError},
    state::DriverState,
    Classification, Seen, SparkStandalone,
};

impl SparkStandalone {
    pub(super) async fn submit_raw(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        // Spark has no idempotency key: a tag that already has a driver gets that driver back
        // instead of a second one. A look-up that cannot answer means: create nothing now, ask
        // again (never create on a guess).
        let tag = req.submission.tag.as_str();
        let known = self.tags.lock().expect("cache lock").known(tag);
        if let Some(id) = known {
            return Ok(id);
        }
        match FindByTag::find_by_tag(self, &req.submission.tag).await {
            Lookup::Found { external_id } => return Ok(external_id),
            Lookup::Unknown { reason } => {
                return Err(SubmitError::Unavailable {
                    reason: format!(
                        "cannot tell whether a driver with tag {tag} exists ({reason}); nothing was submitted"
                    ),
                })
            }
            _ => {}
        }
        // The look-up may have taken seconds: confirm the lease right before the create, so an
        // owner frozen meanwhile and taken over does not POST a second driver.
        req.fence.confirm().await?;
        let body = self.create_request(req);
        let url = self.rest.rest_url().to_string();
        match self.rest.create(&body).await {
            Ok(m) if m.action == "CreateSubmissionResponse" && m.success == Some(true) => {
                match m.submission_id.filter(|s| !s.is_empty()) {
                    Some(id) => {
                        // We just put the tag there: no need to read it back from the log.
                        let seen = Seen { tag: Some(Arc::from(req.submission.tag.as_str())), other_app: None };
                        self.tags.lock().expect("cache lock").insert(&id, seen);
                        Ok(ExternalId(id))
                    }
                    None => Err(SubmitError::Ambiguous {
                        reason: format!("{url} accepted the submission but returned no submission id"),
                    }),
                }
            }
            Ok(m) => {
                let message = m.message.as_deref().map(first_line).unwrap_or_default();
                if message.contains("ALIVE state") {
                    Err(SubmitError::Unavailable {
                        reason: format!("{url} is not the active master ({message}): point master_rest at the leader"),
                    })
                } else {
                    Err(SubmitError::Rejected { message: format!("{url} refused the submission: {message}") })
                }
            }
            Err(e @ RestError::Connect { .. }) => Err(SubmitError::Unavailable {
                reason: format!(
                    "{e} (is the master running, and is master_rest its REST port with spark.master.rest.enabled=true?)"
                ),
            }),
            // 4xx, not Spark, a redirect from something in front of Spark: rejected; 5xx,
            // timeouts, resets: ambiguous (the shared classification, `http::Outcome`).
            Err(e) => Err(e.submit_error()),
        }
    }

    pub(super) async fn status_raw(&self, job: &JobRef) -> JobStatus {
        let id = job.external_id.0.as_str();
        if let Some(done) = self.finals.lock().expect("cache lock").get(id) {
            return done.clone();
        }
        let msg = match self.rest.status(id).await {
            Ok(m) => m,
            Err(e) => {
                return JobStatus::Unknown {
                    reason: e.to_string(),
                }
            }
        };
        let message = msg.message.as_deref().map(first_line).unwrap_or_default();
        let found = msg
            .driver_state
            .clone()
            .filter(|_| msg.success == Some(true));
        let Some(state) = found else {
            if message.contains("ALIVE state") {
                return JobStatus::Unknown {
                    reason: format!("the master is not active: {message}"),
                };
            }
            return JobStatus::NotFound {
                detail: format!(
                    "the master has no driver {id} (never submitted, or forgotten: spark.deploy.retainedDrivers){}",
                    if message.is_empty() { String::new() } else { format!(": {message}") }
                ),
            };
        };
        if let Some(found) = self
            .identity_mismatch(id, msg.worker_id.as_deref(), &job.submission.tag)
            .await
        {
            return JobStatus::Mismatch { found };
        }
        match state {
            DriverState::Submitted => JobStatus::queued("SUBMITTED (queued for a worker)"),
            DriverState::Running | DriverState::Relaunching => {
                JobStatus::running(state.to_string())
            }
            DriverState::Finished
            | DriverState::Failed
            | DriverState::Error
            | DriverState::Killed => {
                let st = self.terminal_status(id, &state, &msg).await;
                if st.is_terminal() {
                    self.finals
                        .lock()
                        .expect("cache lock")
                        .insert(id.to_string(), st.clone());
                }
                st
            }
            DriverState::Unknown => JobStatus::Unknown {
                reason: format!("driver {id} is UNKNOWN to the master (it is recovering)"),
            },
            DriverState::Other(other) => JobStatus::Unknown {
                reason: format!("driver {id} has an unexpected state {other:?}"),
            },
        }
    }

    pub(super) async fn cancel_raw(&self, job: &JobRef) -> Result<(), CancelError> {
        match self.rest.kill(&job.external_id.0).await {
            Ok(m) if m.success == Some(true) => Ok(()),
            Ok(m) => Err(CancelError::Refused {
                message: m
                    .message
                    .as_deref()
                    .map(first_line)
                    .unwrap_or_else(|| "kill refused".into()),
            }),
            Err(
                e @ (RestError::Unexpected { .. }
                | RestError::BadAddress { .. }
                | RestError::Redirect { .. }
                | RestError::Status {
                    status: 400..=499, ..
                }),
            ) => Err(CancelError::Refused {
                message: e.to_string(),
            }),
            Err(e) => Err(CancelError::Unavailable {
                reason: e.to_string(),
            }),
        }
    }

    pub(super) async fn terminal_status(
        &self,
        driver_id: &str,
        state: &DriverState,
        msg: &rest::RestMessage,
    ) -> JobStatus {
        match state {
            DriverState::Finished => JobStatus::Succeeded {
                result: json!({ "driver_id": driver_id, "driver_state": state.as_str(), "worker_id": msg.worker_id }),
            },
            DriverState::Killed => JobStatus::Failed { class: FailureClass::Killed, message: format!("driver {driver_id} was killed") },
            DriverState::Error => {
                let cause = msg.message.as_deref().and_then(cluster_exception).unwrap_or_default();
                let missing = ["NoSuchFileException", "FileNotFoundException", "does not exist"]
                    .iter()
                    .any(|p| cause.contains(p));
                if missing {
                    JobStatus::Failed {
                        class: FailureClass::Rejected,
                        message: format!(
                            "driver {driver_id} could not be launched: {cause} (check app_resource: every worker must \
                             be able to read {})",
                            self.job.app_resource
                        ),
                    }
                } else {
                    let cause = if cause.is_empty() { "no reason given".to_string() } else { cause };
                    JobStatus::Failed {
                        class: FailureClass::Other,
                        message: format!("driver {driver_id} ended in ERROR (could not launch, or its worker died): {cause}"),
                    }
                }
            }
            _ => match self.classify(driver_id).await {
                Classification::Oom { evidence } => JobStatus::Failed {
                    class: FailureClass::Oom,
                    message: format!("driver {driver_id} FAILED, out of memory: {evidence}"),
                },
                Classification::Other { summary } => JobStatus::Failed {
                    class: FailureClass::Other,
                    message: format!(
                        "driver {driver_id} FAILED: {}",
                        summary.unwrap_or_else(|| "non-zero exit, exception or aborted job; see `tether logs`".into())
                    ),
                },
                Classification::Unknown { reason } => JobStatus::Unknown {
                    reason: format!("driver {driver_id} FAILED but its log cannot be read to classify it: {reason}"),
                },
            },
        }
    }
}

/// `"Exception from the cluster:\njava.nio.file.NoSuchFileException: /x.jar\n\tat ..."` -> line 2.
fn cluster_exception(message: &str) -> Option<String> {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next()?;
    if first.starts_with("Exception from the cluster") {
        lines.next().map(str::to_string)
    } else {
        Some(first.to_string())
    }
}
