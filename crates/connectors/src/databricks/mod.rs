//! The `databricks` backend: Databricks Jobs API 2.2 one-time runs (`runs/submit`) or runs of
//! an existing job (`run-now`), over HTTPS with a personal access token or OAuth M2M.
//!
//! ## Guarantees
//! - Every submission carries `idempotency_token = <tag>` (a tag is at most 63 characters;
//!   Databricks allows 64): Databricks launches exactly one run per token and answers a repeat
//!   with the existing run's id. So a submit whose answer was lost (a crash, a timeout, a dropped
//!   connection, a 429/5xx) is healed by sending it again with the same token
//!   ([`Connector::idempotent_submit`]), and the submit request itself is retried on 429/5xx with
//!   `Retry-After` honoured: the same token, never a second run. A new generation has a new tag,
//!   hence a new token and a new run: a failed run is never handed back (Airflow #64828).
//! - The identity of a run under a recorded id is checked: a one-time run's `run_name` ends with
//!   ` [<tag>]`, a `run-now` run has the spec's `job_id`; anything else is a mismatch.
//! - No credential is written anywhere: the spec names variables, the token lives in memory,
//!   and every text returned (errors, statuses, log errors) is scrubbed of it ([`crate::text`]).
//!
//! ## Caveats
//! - No find-by-tag: `runs/list` cannot filter by token or name, and paging through a busy
//!   workspace's history to find one run is slow and rate-limited. The idempotency token makes
//!   the look-up unnecessary (decision row "connector submits idempotently").
//! - A token whose run was deleted is refused by Databricks; tether cannot tell whether it
//!   ever ran, so the submission is `SubmitError::Lost` naming the deletion: the run goes on as
//!   for any lost job (the next generation, with a new token, unless `on_lost = "fail"`).
//! - A 429's `Retry-After` longer than the client's retry budget (10 s) becomes an `unknown`
//!   status quoting it; the engine then asks again on its own backoff.
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{json, Value};
use tether_core::{
    connector::{
        is_recovery, CancelError, JobRef, LogChunk, LogCursor, LogError, LogStream, Logs,
        RecoveryShape, SubmitError, SubmitRequest,
    },
    ids::ExternalId,
    observe::JobStatus,
    Connector,
};

use crate::{
    http::{Answer, Auth, Client, HttpError, Safety},
    text,
};

mod build;
mod bulk;
pub mod spec;
pub mod state;

pub use build::DatabricksFactory;
use spec::{DatabricksJob, DatabricksRecovery};
use state::{Mapped, RunInfo};

/// Cap of a JSON answer (`runs/get-output` holds up to 5 MB of logs).
const JSON_CAP: usize = 16 << 20;

/// A Databricks workspace, for one spec.
#[derive(Debug)]
pub struct Databricks {
    job: DatabricksJob,
    recovery: Option<DatabricksRecovery>,
    http: Client,
    host: String,
}

impl Databricks {
    /// A connector for `job` through `http`; `recovery` when the recovery shape applies.
    pub fn new(job: DatabricksJob, recovery: Option<DatabricksRecovery>, http: Client) -> Self {
        let host = job.host.trim_end_matches('/').to_string();
        Databricks {
            job,
            recovery,
            http,
            host,
        }
    }

    fn clean(&self, s: &str) -> String {
        let secrets = self.http.auth().secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        text::clean(s, &secrets)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(String, Answer), HttpError> {
        let url = format!("{}/api/2.2/jobs/{path}", self.host);
        let answer = self
            .http
            .exchange(Safety::Idempotent, &url, JSON_CAP, |c| {
                let req = c.request(method.clone(), &url);
                match body {
                    Some(b) => req.json(b),
                    None => req,
                }
            })
            .await?;
        if answer.status == 401 || answer.status == 403 {
            // An expired or revoked OAuth token: the next request fetches a new one.
            if let Auth::OAuth2(o) = self.http.auth() {
                o.forget().await;
            }
        }
        Ok((url, answer))
    }

    /// `runs/get` of `id`: the run, or the status to report instead.
    async fn get(&self, id: u64) -> Result<RunInfo, JobStatus> {
        let unknown = |reason: String| JobStatus::Unknown {
            reason: self.clean(&reason),
        };
        let (url, answer) = self
            .call(Method::GET, &format!("runs/get?run_id={id}"), None)
            .await
            .map_err(|e| unknown(e.to_string()))?;
        if answer.status == 404 || is_missing(&answer) {
            return Err(JobStatus::NotFound {
                detail: self.clean(&format!(
                    "Databricks has no run {id} (deleted, or never made)"
                )),
            });
        }
        let wait = crate::http::retry_after(&answer.headers, std::time::SystemTime::now());
        let answer = self.http.success(&url, answer).map_err(|e| {
            let after = wait.map_or(String::new(), |w| {
                format!("; Databricks asks to wait {w:?}")
            });
            unknown(format!("{e}{after}"))
        })?;
        serde_json::from_slice(&answer.body)
            .map_err(|e| unknown(format!("{url} answered a body that is not a run: {e}")))
    }

    /// `runs/get-output` of every task run: (task key, output), in task order.
    async fn outputs(&self, run: &RunInfo) -> Result<Vec<(String, Value)>, String> {
        let mut out = vec![];
        for t in &run.tasks {
            let Some(id) = t.run_id else { continue };
            let (url, answer) = self
                .call(Method::GET, &format!("runs/get-output?run_id={id}"), None)
                .await
                .map_err(|e| e.to_string())?;
            let answer = self.http.success(&url, answer).map_err(|e| e.to_string())?;
            let v: Value =
                serde_json::from_slice(&answer.body).map_err(|e| format!("{url}: {e}"))?;
            out.push((t.task_key.clone().unwrap_or_default(), v));
        }
        Ok(out)
    }

    fn identity(&self, run: &RunInfo, job: &JobRef) -> Result<(), String> {
        let tag = job.submission.tag.as_str();
        let ours = match self.job.job_id {
            Some(j) => run.job_id == Some(j),
            None => run
                .run_name
                .as_deref()
                .is_some_and(|n| n == tag || n.ends_with(&format!(" [{tag}]"))),
        };
        if ours {
            return Ok(());
        }
        Err(match (self.job.job_id, &run.run_name) {
            (Some(_), _) => format!("a run of job {:?}", run.job_id),
            (None, Some(n)) => format!("run named {n:?}"),
            (None, None) => "a run without a name".into(),
        })
    }
}

fn is_missing(a: &Answer) -> bool {
    let v: Value = serde_json::from_slice(&a.body).unwrap_or_default();
    let message = v["message"].as_str().unwrap_or_default();
    v["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        || (a.status == 400 && message.contains("does not exist"))
}

fn run_id(job: &JobRef) -> Result<u64, JobStatus> {
    job.external_id.0.parse().map_err(|_| JobStatus::NotFound {
        detail: format!(
            "{:?} is not a Databricks run id",
            text::escape_controls(&job.external_id.0)
        ),
    })
}

#[async_trait]
impl Connector for Databricks {
    fn kind(&self) -> &str {
        "databricks"
    }

    fn default_poll_interval(&self) -> Duration {
        // Jobs API rate limits are per workspace: a fleet polling every 2 s would hit them.
        Duration::from_secs(10)
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        let tag = &req.submission.tag;
        if tag.as_str().chars().count() > 64 {
            return Err(SubmitError::Rejected {
                message: format!(
                    "tag {tag} is longer than the 64 characters of an idempotency_token"
                ),
            });
        }
        let recovery = if is_recovery(req) {
            self.recovery.as_ref()
        } else {
            None
        };
        let body = self.job.body(tag, recovery);
        let path = if self.job.job_id.is_some() {
            "run-now"
        } else {
            "runs/submit"
        };
        req.fence.confirm().await?;
        let (url, answer) =
            self.call(Method::POST, path, Some(&body))
                .await
                .map_err(|e| match e.submit_error() {
                    SubmitError::Rejected { message } => SubmitError::Rejected {
                        message: self.clean(&message),
                    },
                    SubmitError::Unavailable { reason } => SubmitError::Unavailable {
                        reason: self.clean(&reason),
                    },
                    other => SubmitError::Ambiguous {
                        reason: self.clean(&other.to_string()),
                    },
                })?;
        if answer.status == 401 || answer.status == 403 {
            // Not authenticated: nothing was created; a refreshed token may pass.
            let e = self
                .http
                .success(&url, answer)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            return Err(SubmitError::Unavailable {
                reason: self.clean(&format!(
                    "{e} (check the token or the service principal's permissions)"
                )),
            });
        }
        let status = answer.status;
        let deleted = status == 400 && String::from_utf8_lossy(&answer.body).contains("deleted");
        let answer = self.http.success(&url, answer).map_err(|e| match (deleted, e.submit_error()) {
            (true, _) => SubmitError::Lost { message: self.clean(&format!(
                "{e}: the run of idempotency token {tag} was deleted in Databricks, so whether it ran cannot be known")) },
            (false, SubmitError::Rejected { message }) => SubmitError::Rejected { message: self.clean(&message) },
            (false, SubmitError::Unavailable { reason }) => SubmitError::Unavailable { reason: self.clean(&reason) },
            (false, other) => SubmitError::Ambiguous { reason: self.clean(&other.to_string()) },
        })?;
        let v: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        match v["run_id"].as_u64() {
            Some(id) => Ok(ExternalId(id.to_string())),
            // Accepted, but unreadable: the run may exist; the same token finds it again.
            None => Err(SubmitError::Ambiguous {
                reason: format!("{url} answered HTTP {status} without a run_id"),
            }),
        }
    }

    async fn status(&self, job: &JobRef) -> JobStatus {
        let id = match run_id(job) {
            Ok(id) => id,
            Err(st) => return st,
        };
        let run = match self.get(id).await {
            Ok(r) => r,
            Err(st) => return st,
        };
        if let Err(found) = self.identity(&run, job) {
            return JobStatus::Mismatch {
                found: self.clean(&found),
            };
        }
        let page = run.run_page_url.clone().unwrap_or_default();
        match run.map("") {
            Mapped::Queued(s) => JobStatus::queued(self.clean(format!("{s} {page}").trim())),
            Mapped::Running(s) => JobStatus::running(self.clean(format!("{s} {page}").trim())),
            Mapped::Unknown(r) => JobStatus::Unknown {
                reason: self.clean(&r),
            },
            Mapped::Succeeded => match self.outputs(&run).await {
                Ok(outs) => {
                    let tasks: Vec<Value> = outs.iter().map(|(k, o)| json!({"task_key": k,
                        "notebook_output": o["notebook_output"], "logs_truncated": o["logs_truncated"]})).collect();
                    JobStatus::Succeeded {
                        result: json!({"run_id": id, "run_page_url": page, "tasks": tasks}),
                    }
                }
                Err(e) => JobStatus::Unknown {
                    reason: self.clean(&format!(
                        "the run succeeded but its output cannot be read: {e}"
                    )),
                },
            },
            Mapped::Failed(..) => {
                // The tasks' errors often say more (an OutOfMemoryError in a trace): best effort.
                let extra = self
                    .outputs(&run)
                    .await
                    .unwrap_or_default()
                    .iter()
                    .map(|(_, o)| {
                        format!(
                            "{}\n{}",
                            o["error"].as_str().unwrap_or_default(),
                            o["error_trace"].as_str().unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                match run.map(&extra) {
                    Mapped::Failed(class, message) => JobStatus::Failed {
                        class,
                        message: self.clean(format!("{message} {page}").trim()),
                    },
                    _ => JobStatus::Unknown {
                        reason: "the run's state changed while it was read".into(),
                    },
                }
            }
        }
    }

    async fn cancel(&self, job: &JobRef) -> Result<(), CancelError> {
        let Ok(id) = job.external_id.0.parse::<u64>() else {
            return Ok(());
        };
        let (url, answer) = self
            .call(Method::POST, "runs/cancel", Some(&json!({"run_id": id})))
            .await
            .map_err(|e| CancelError::Unavailable {
                reason: self.clean(&e.to_string()),
            })?;
        if answer.status == 404 || is_missing(&answer) {
            return Ok(());
        }
        let retry = crate::http::retryable(answer.status);
        self.http
            .success(&url, answer)
            .map(|_| ())
            .map_err(|e| match retry {
                true => CancelError::Unavailable {
                    reason: self.clean(&e.to_string()),
                },
                false => CancelError::Refused {
                    message: self.clean(&e.to_string()),
                },
            })
    }

    fn bulk_status(&self) -> Option<&dyn tether_core::connector::BulkStatus> {
        Some(self)
    }
    fn logs(&self) -> Option<&dyn Logs> {
        Some(self)
    }

    fn recovery(&self) -> Option<&dyn RecoveryShape> {
        self.recovery.as_ref().map(|r| r as &dyn RecoveryShape)
    }

    fn idempotent_submit(&self) -> bool {
        true
    }
}

impl RecoveryShape for DatabricksRecovery {
    fn describe(&self) -> String {
        DatabricksRecovery::describe(self)
    }
}

#[async_trait]
impl Logs for Databricks {
    /// Stdout: the driver output of each task (`runs/get-output` `logs`, truncated by
    /// Databricks to its last 5 MB); stderr: each task's `error` and `error_trace`. Available
    /// once a task ended. Cursors are byte offsets into that text.
    async fn read_logs(
        &self,
        job: &JobRef,
        stream: LogStream,
        cursor: &LogCursor,
        max: usize,
    ) -> Result<LogChunk, LogError> {
        let from = cursor.byte_offset()?;
        let id = run_id(job).map_err(|e| LogError::NotFound { reason: e.label() })?;
        let run = self.get(id).await.map_err(|st| match st {
            JobStatus::NotFound { detail } => LogError::NotFound { reason: detail },
            other => LogError::Unavailable {
                reason: other.label(),
            },
        })?;
        let outs = self
            .outputs(&run)
            .await
            .map_err(|e| LogError::Unavailable {
                reason: self.clean(&e),
            })?;
        let mut all = String::new();
        for (key, o) in outs {
            let body = match stream {
                LogStream::Stdout => o["logs"].as_str().unwrap_or_default().to_string(),
                LogStream::Stderr => [o["error"].as_str(), o["error_trace"].as_str()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("\n"),
            };
            if !body.is_empty() {
                all.push_str(&format!("==== task {key} ====\n{body}\n"));
            }
        }
        let secrets = self.http.auth().secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let bytes = text::scrub_bytes(all.as_bytes(), &secrets);
        let start = (from as usize).min(bytes.len());
        let end = start.saturating_add(max).min(bytes.len());
        Ok(LogChunk {
            data: bytes[start..end].to_vec(),
            next: LogCursor::at_byte(end as u64),
        })
    }
}
