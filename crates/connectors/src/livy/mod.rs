//! Apache Livy batches (`POST /batches`), tested on Livy 0.7.1-incubating over YARN.
//!
//! ```toml
//! [job]
//! kind = "livy"
//! url = "http://livy:8998"
//! file = "local:/jobs/etl.jar"            # or a .py; as Livy's host can read it
//! class_name = "com.example.Etl"
//! args = ["--date", "2026-11-22"]
//! executor_memory = "2g"
//! executor_cores = 2
//! queue = "etl"
//! # token_env = "TETHER_TOKEN_LIVY"       # bearer; or user + password_env (basic)
//! # ca_file = "/etc/tether/livy-ca.pem"
//! [job.conf]
//! "spark.yarn.maxAppAttempts" = "1"
//! ```
//!
//! The batch id (text: `"0"` is an id) is the external id; `GET /batches/{id}` follows it,
//! `DELETE /batches/{id}` kills it, `GET /batches/{id}/log` pages its log by line.
//!
//! ## Guarantees
//! - Every batch is created with `name = <tag>` and the tag in `spark.tether.tag` and
//!   `spark.yarn.tags`; [`Fence::confirm`](tether_core::connector::Fence::confirm) runs right
//!   before the `POST`, which is sent once.
//! - Livy refuses a second batch with a name it tracks (HTTP 400 "Duplicate session name",
//!   checked in `SessionManager.register` *before* the session starts, so nothing is launched):
//!   `submit` reads that answer as "it exists" and returns the existing batch's id.
//! - `status` never fails: transport errors, timeouts, 429 and 5xx are `Unknown`; 404 is
//!   `NotFound` (or `Failed { Killed }` for a batch this process deleted); a batch under the
//!   recorded id whose `name` is not our tag is `Mismatch` (Livy numbers batches from 0 again
//!   after a restart without recovery). `cancel` checks the name before it deletes.
//! - `dead`/`error` are classified by [`crate::spark::oom`] on the log tail, which on YARN ends
//!   with the application's diagnostics (-104, "beyond the 'PHYSICAL' memory limit").
//! - Credentials come from allowed variables only ([`crate::http::secret_from_env`]) and are
//!   scrubbed out of every text the connector returns.
//!
//! ## Assumptions
//! - Livy 0.7 or later; the batch `name` field exists since 0.7.
//!
//! ## Caveats
//! - The duplicate-name rule is **not** a lasting idempotency key: Livy frees a name when the
//!   batch is deleted, `livy.server.session.state-retain.sec` (default 600 s) after it ended, and
//!   on a restart without `livy.server.recovery.mode = recovery`. So [`Connector::idempotent_submit`]
//!   stays `false` and the engine looks the tag up ([`FindByTag`]) before submitting again; the
//!   look-up has the same horizon (Livy lists only what it tracks).
//! - After `cancel`, Livy forgets the batch (DELETE removes it): the `Killed` outcome is known
//!   to this process only; another process sees `NotFound`.
//! - Livy merges the driver's stdout and stderr into one log: both streams read it.
mod api;
mod build;
mod logs;
pub mod spec;

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use async_trait::async_trait;
use serde_json::json;
use tether_core::{
    connector::{
        is_recovery, CancelError, FindByTag, JobRef, Logs, RecoveryShape, SubmitError,
        SubmitRequest,
    },
    ids::{ExternalId, Tag},
    observe::{FailureClass, JobStatus, Lookup},
    Connector,
};

pub use api::{Api, Batch};
pub use build::LivyFactory;
use spec::LivyJob;

use crate::http::{HttpError, Outcome};
use crate::spark::{
    oom::{classify, Facts, Verdict},
    recovery::RecoveryPlan,
};
use crate::text;

/// The `kind` of this connector.
pub const KIND: &str = "livy";
/// List page size of find-by-tag.
const PAGE: u64 = 100;
/// Pages overlap by this much, so a batch deleted between two pages does not hide another.
const OVERLAP: u64 = 20;
/// Log lines the classifier reads (the end of the log).
const CLASSIFY_LINES: u64 = 2000;

/// The connector. Build it with [`LivyFactory`].
#[derive(Debug)]
pub struct Livy {
    job: LivyJob,
    api: Api,
    recovery: Option<RecoveryPlan>,
    /// Ids this process deleted (cancel), with their tag: the 404 that follows is our kill.
    deleted: Mutex<HashSet<(String, String)>>,
    /// `(id, tag)` -> terminal status (terminal states never change).
    finals: Mutex<HashMap<(String, String), JobStatus>>,
}

impl Livy {
    /// A connector for `job` through `api`; `recovery: None` removes the recovery capability.
    pub fn new(job: LivyJob, api: Api, recovery: Option<RecoveryPlan>) -> Self {
        Livy {
            job,
            api,
            recovery,
            deleted: Mutex::new(HashSet::new()),
            finals: Mutex::new(HashMap::new()),
        }
    }

    fn secrets(&self) -> Vec<String> {
        self.api.client().auth().secrets()
    }

    /// The body of `POST /batches` for this request.
    pub fn batch_body(&self, req: &SubmitRequest) -> serde_json::Value {
        let plan = self.recovery.as_ref().filter(|_| is_recovery(req));
        self.job.batch_body(&req.submission.tag, plan)
    }

    async fn submit_raw(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
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

    async fn status_raw(&self, job: &JobRef) -> JobStatus {
        let id = job.external_id.0.as_str();
        let tag = job.submission.tag.as_str();
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
                return JobStatus::NotFound {
                    detail: format!(
                        "Livy does not track batch {id} (deleted, forgotten after \
                         livy.server.session.state-retain.sec, or Livy restarted without recovery)"
                    ),
                }
            }
            Ok(Some(b)) => b,
        };
        if batch.name.as_deref() != Some(tag) {
            return JobStatus::Mismatch {
                found: match &batch.name {
                    Some(n) => {
                        format!("batch {id} is named {n:?} (Livy reuses ids after a restart)")
                    }
                    None => format!("batch {id} has no name (not submitted by tether)"),
                },
            };
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

    async fn map_state(&self, b: &Batch) -> JobStatus {
        let id = &b.id;
        match b.state.as_str() {
            "not_started" | "starting" | "recovering" => {
                JobStatus::queued(format!("batch {id} {}", b.state))
            }
            "running" | "busy" | "idle" | "shutting_down" => JobStatus::running(format!(
                "batch {id} {} ({})",
                b.state,
                b.app_id.as_deref().unwrap_or("no app id yet")
            )),
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
    async fn failed(&self, b: &Batch) -> JobStatus {
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

    async fn cancel_raw(&self, job: &JobRef) -> Result<(), CancelError> {
        let id = job.external_id.0.as_str();
        let tag = job.submission.tag.as_str();
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

    async fn find_raw(&self, tag: &Tag) -> Lookup {
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
                return Lookup::Absent;
            }
            from += (page.sessions.len() as u64).saturating_sub(OVERLAP).max(1);
        }
    }
}

#[async_trait]
impl Connector for Livy {
    fn kind(&self) -> &str {
        KIND
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        let s = self.secrets();
        let s: Vec<&str> = s.iter().map(String::as_str).collect();
        self.submit_raw(req)
            .await
            .map_err(|e| text::clean_submit_error(e, &s))
    }

    async fn status(&self, job: &JobRef) -> JobStatus {
        let s = self.secrets();
        let s: Vec<&str> = s.iter().map(String::as_str).collect();
        text::clean_status(self.status_raw(job).await, &s)
    }

    async fn cancel(&self, job: &JobRef) -> Result<(), CancelError> {
        let s = self.secrets();
        let s: Vec<&str> = s.iter().map(String::as_str).collect();
        self.cancel_raw(job)
            .await
            .map_err(|e| text::clean_cancel_error(e, &s))
    }

    fn find_by_tag(&self) -> Option<&dyn FindByTag> {
        Some(self)
    }
    fn logs(&self) -> Option<&dyn Logs> {
        Some(self)
    }
    fn recovery(&self) -> Option<&dyn RecoveryShape> {
        self.recovery.as_ref().map(|_| self as &dyn RecoveryShape)
    }
}

#[async_trait]
impl FindByTag for Livy {
    async fn find_by_tag(&self, tag: &Tag) -> Lookup {
        match self.find_raw(tag).await {
            Lookup::Unknown { reason } => {
                let s = self.secrets();
                let s: Vec<&str> = s.iter().map(String::as_str).collect();
                Lookup::Unknown {
                    reason: text::clean(&reason, &s),
                }
            }
            other => other,
        }
    }
}

impl RecoveryShape for Livy {
    fn describe(&self) -> String {
        crate::spark::recovery::describe(self.recovery.as_ref())
    }
}
