//! Submit, status, cancel and find-by-tag against Livy: the raw answers, before [`Livy`]'s
//! `Connector` impl scrubs credentials out of them and escapes control characters.
use serde_json::json;
use tether_core::{
    connector::{CancelError, FindByTag, JobRef, SubmitError, SubmitRequest},
    ids::{ExternalId, Tag},
    observe::{FailureClass, JobStatus, Lookup},
};

use super::yarn::adopted;
use super::{Batch, Livy, CLASSIFY_LINES, OVERLAP, PAGE};
use crate::http::{HttpError, Outcome};
use crate::spark::oom::{classify, Facts, Verdict};

impl Livy {
    pub(super) async fn submit_raw(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        let tag = &req.submission.tag;
        let body = self.batch_body(req);
        // Right before the create: an owner frozen and taken over creates nothing.
        req.fence.confirm().await?;
        let url = self.api.batches_url();
        match self.api.create(&body).await {
            Ok(b) if b.name.as_deref().is_none_or(|n| n == tag.as_str()) => Ok(ExternalId(b.id)),
            Ok(b) => Err(SubmitError::Ambiguous {
                reason: format!(
                    "{url} created batch {} under the name {:?}, not {tag}: is something rewriting requests?",
                    b.id, b.name
                ),
            }),
            Err(HttpError::Status {
                status: 400,
                message,
                ..
            }) if message.contains("Duplicate session name") => {
                // Ours already exists (an earlier attempt whose answer was lost): adopt it.
                match FindByTag::find_by_tag(self, tag).await {
                    Lookup::Found { external_id } => Ok(external_id),
                    other => Err(SubmitError::Ambiguous {
                        reason: format!(
                            "{url} says a batch named {tag} exists ({message}) but the look-up found {other:?}"
                        ),
                    }),
                }
            }
            Err(HttpError::Status {
                status: 400,
                message,
                ..
            }) if message.contains("too many sessions") => Err(SubmitError::Unavailable {
                reason: format!(
                    "{url} is busy and created nothing ({message}); see livy.server.session.max-creation"
                ),
            }),
            Err(e @ HttpError::Connect { .. }) => Err(SubmitError::Unavailable {
                reason: format!("{e} (is Livy running, and is url its address?)"),
            }),
            Err(e) => Err(e.submit_error()),
        }
    }

    pub(super) async fn status_raw(&self, job: &JobRef) -> JobStatus {
        let id = job.external_id.0.as_str();
        let tag = job.submission.tag.as_str();
        if let Some(app) = adopted(id) {
            return self.adopted_status(app, tag).await;
        }
        let key = (id.to_string(), tag.to_string());
        if let Some(done) = self.finals.lock().expect("cache lock").get(&key) {
            return done.clone();
        }
        let batch = match self.api.get(id).await {
            Err(e) => {
                return JobStatus::Unknown {
                    reason: e.to_string(),
                }
            }
            Ok(None) if self.deleted.lock().expect("cache lock").contains(&key) => {
                return JobStatus::Failed {
                    class: FailureClass::Killed,
                    message: format!("batch {id} was deleted by tether's cancel"),
                }
            }
            Ok(None) => {
                let gone = JobStatus::NotFound {
                    detail: format!(
                        "Livy does not track batch {id} (deleted, forgotten after \
                         livy.server.session.state-retain.sec, or Livy restarted without recovery)"
                    ),
                };
                // Its YARN application may run on (a Livy crash): never lost while it does.
                return self.ask_yarn(tag, gone).await;
            }
            Ok(Some(b)) => b,
        };
        if batch.name.as_deref() != Some(tag) {
            let stranger = JobStatus::Mismatch {
                found: match &batch.name {
                    Some(n) => {
                        format!("batch {id} is named {n:?} (Livy reuses ids after a restart)")
                    }
                    None => format!("batch {id} has no name (not submitted by tether)"),
                },
            };
            return self.ask_yarn(tag, stranger).await;
        }
        let st = self.map_state(&batch).await;
        if st.is_terminal() {
            self.finals
                .lock()
                .expect("cache lock")
                .insert(key, st.clone());
        }
        st
    }

    /// The status of a batch Livy has not ended; `None` for any other state.
    pub(super) fn active_state(b: &Batch) -> Option<JobStatus> {
        let id = &b.id;
        match b.state.as_str() {
            "not_started" | "starting" | "recovering" => {
                Some(JobStatus::queued(format!("batch {id} {}", b.state)))
            }
            "running" | "busy" | "idle" | "shutting_down" => Some(JobStatus::running(format!(
                "batch {id} {} ({})",
                b.state,
                b.app_id.as_deref().unwrap_or("no app id yet")
            ))),
            _ => None,
        }
    }

    pub(super) async fn map_state(&self, b: &Batch) -> JobStatus {
        if let Some(active) = Self::active_state(b) {
            return active;
        }
        let id = &b.id;
        match b.state.as_str() {
            "success" => JobStatus::Succeeded {
                result: json!({ "batch_id": id, "state": b.state, "app_id": b.app_id, "app_info": b.app_info }),
            },
            "killed" => JobStatus::Failed {
                class: FailureClass::Killed,
                message: format!("batch {id} was killed"),
            },
            "dead" | "error" => self.failed(b).await,
            other => JobStatus::Unknown {
                reason: format!("batch {id} has a state tether does not know: {other:?}"),
            },
        }
    }

    /// A `dead`/`error` batch, classified on its log tail (YARN diagnostics included).
    pub(super) async fn failed(&self, b: &Batch) -> JobStatus {
        let id = &b.id;
        let lines = match self.api.log(id, None, CLASSIFY_LINES).await {
            Ok(Some(p)) => p.log,
            Ok(None) => b.log.clone(),
            Err(e) if e.outcome() != Outcome::Definite => {
                return JobStatus::Unknown {
                    reason: format!(
                        "batch {id} is {} but its log cannot be read to classify it: {e}",
                        b.state
                    ),
                }
            }
            Err(_) => b.log.clone(),
        };
        let text = lines.join("\n");
        match classify(Facts {
            log: Some(&text),
            ..Facts::default()
        }) {
            Verdict::Oom { evidence, .. } => JobStatus::Failed {
                class: FailureClass::Oom,
                message: format!("batch {id} {}, out of memory: {evidence}", b.state),
            },
            Verdict::Other { summary } => JobStatus::Failed {
                class: FailureClass::Other,
                message: format!(
                    "batch {id} {}: {}",
                    b.state,
                    summary.unwrap_or_else(|| "see `tether logs`".into())
                ),
            },
        }
    }

    pub(super) async fn cancel_raw(&self, job: &JobRef) -> Result<(), CancelError> {
        let id = job.external_id.0.as_str();
        let tag = job.submission.tag.as_str();
        if let Some(app) = adopted(id) {
            return self.adopted_cancel(app, job).await;
        }
        let refused = |e: HttpError| match e.outcome() {
            Outcome::Definite => CancelError::Refused {
                message: e.to_string(),
            },
            _ => CancelError::Unavailable {
                reason: e.to_string(),
            },
        };
        // Never delete someone else's batch that took over the id.
        let b = match self.api.get(id).await.map_err(refused)? {
            None => {
                return Err(CancelError::Refused {
                    message: format!(
                        "Livy does not track batch {id} (already deleted or forgotten)"
                    ),
                })
            }
            Some(b) => b,
        };
        if b.name.as_deref() != Some(tag) {
            return Err(CancelError::Refused {
                message: format!("batch {id} is named {:?}, not {tag}: not deleted", b.name),
            });
        }
        if matches!(b.state.as_str(), "success" | "dead" | "killed" | "error") {
            return Err(CancelError::Refused {
                message: format!("batch {id} already ended ({})", b.state),
            });
        }
        let key = (id.to_string(), tag.to_string());
        let deleted = match self.api.delete(id).await {
            Ok(found) => found,
            Err(e) => {
                if e.may_have_arrived() {
                    // Livy may be stopping it (the answer comes only once the app is killed):
                    // a 404 that follows is most likely our kill, not a lost batch.
                    self.deleted.lock().expect("cache lock").insert(key);
                }
                return Err(refused(e));
            }
        };
        if deleted {
            self.deleted.lock().expect("cache lock").insert(key);
            Ok(())
        } else {
            Err(CancelError::Refused {
                message: format!("Livy does not track batch {id} any more"),
            })
        }
    }

    pub(super) async fn find_raw(&self, tag: &Tag) -> Lookup {
        let mut from = 0;
        let mut first_total = None;
        loop {
            let page = match self.api.list(from, PAGE).await {
                Ok(p) => p,
                Err(e) => {
                    return Lookup::Unknown {
                        reason: e.to_string(),
                    }
                }
            };
            if let Some(b) = page
                .sessions
                .iter()
                .find(|b| b.name.as_deref() == Some(tag.as_str()))
            {
                return Lookup::Found {
                    external_id: ExternalId(b.id.clone()),
                };
            }
            let first = *first_total.get_or_insert(page.total);
            if page.sessions.is_empty() || from + (page.sessions.len() as u64) >= page.total {
                if first > page.total + OVERLAP {
                    return Lookup::Unknown {
                        reason: format!(
                            "Livy's batch list shrank from {first} to {} while tether read it; asking again",
                            page.total
                        ),
                    };
                }
                // Livy may have forgotten it (a crash) while its YARN application lives on.
                return self.find_on_yarn(tag).await;
            }
            from += (page.sessions.len() as u64).saturating_sub(OVERLAP).max(1);
        }
    }
}
