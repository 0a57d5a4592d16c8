//! Spark standalone clusters, driven through the master's REST submission server.
//!
//! ```toml
//! max_submissions = 3
//!
//! [job]
//! kind = "spark-standalone"
//! master_rest = "http://spark-master:6066"     # the REST submission server
//! # master_ui = "http://spark-master:8080"     # default: REST host, port 8080
//! app_resource = "file:/jobs/etl.jar"          # as the workers can read it
//! main_class = "com.example.Etl"
//! args = ["--date", "2026-11-22"]
//! # token_env = "SPARK_REST_TOKEN"             # env var holding a bearer token (JWS filter)
//! # request_timeout = "10s"
//! [job.conf]                                   # sparkProperties
//! "spark.executor.memory" = "4g"
//! "spark.executor.cores" = "4"
//!
//! [recovery]                                   # optional
//! enabled = true                               # false: an OOM is retried unchanged
//! [recovery.conf]                              # overrides/extends the recovery shape
//! "spark.cores.max" = "4"
//! ```
//!
//! The driver runs in cluster mode (`POST /v1/submissions/create`); its driver id
//! (`driver-20261122105255-0000`) is the external id; `status/<id>` and `kill/<id>` follow it.
//! `tether logs` reads the driver's stdout/stderr from its worker's web UI.
//!
//! **Recovery shape** (Spark's recovery-mode executors, SPARK-55639, applied at submission
//! instead of inside the driver): after a generation failed with `oom`, the next one keeps
//! `spark.executor.memory` and sets `spark.executor.cores = max(1, ceil(spark.task.cpus))`
//! (default 1), so each executor JVM runs a single task with all its memory. It is described in
//! the run's history ([`RecoveryShape::describe`]). TOML cannot hold both `recovery = false` and a
//! `[recovery]` table, so it is switched off with `[recovery] enabled = false`, and
//! `[recovery.conf]` overrides or extends the default recovery properties.
//!
//! ## Guarantees
//! - Every submission carries its tag in `spark.tether.tag` and in `spark.app.name` (the user's
//!   app name, if any, comes first), plus the app jar in `spark.jars` so executors load its
//!   classes, `spark.submit.deployMode=cluster` and (unless set) `spark.driver.supervise=false`:
//!   tether owns retries.
//! - `status` never fails and never guesses: transport errors, timeouts, 5xx, a standby master,
//!   and driver state `UNKNOWN` are [`JobStatus::Unknown`]; `success: false` without a driver
//!   state is [`JobStatus::NotFound`].
//! - A driver under a recorded id whose launch command carries another tag (or none) is
//!   [`JobStatus::Mismatch`]. The verdict is cached per driver id, as the log read is costly.
//! - Submit errors: connection refused or a standby master -> `Unavailable` (nothing was sent);
//!   a timeout after sending or a 5xx -> `Ambiguous` (the engine then looks the tag up);
//!   HTTP 4xx or a server that is not Spark's -> `Rejected`, with what to fix.
//! - `submit` of a tag that already has a driver (submitted by this process, or found by tag)
//!   returns that driver's id instead of starting a second one.
//! - Failure classes: `FAILED` is `oom` or `other` according to the driver log (`unknown`,
//!   asked again, while the log's worker cannot be reached; `other` if the log is gone)
//!   ([`classify`]), `KILLED` is `killed`, `ERROR` is `rejected` when the jar cannot be found
//!   and `other` otherwise (e.g. the worker died).
//! - The bearer token is read from the environment variable named by `token_env` when the
//!   connector is built; it is sent to the REST server only and never appears in `Debug`
//!   output, errors or logs.
//!
//! ## Assumptions
//! - Spark 4.x standalone with `spark.master.rest.enabled=true` (the 4.1+ default); tested on
//!   4.3.0. The master web UI (`/json/`) and the workers' web UIs are reachable from tether.
//! - The workers' log pages are readable (`/log/?driverId=...`): find-by-tag, the identity check
//!   and the classifier read the driver's stderr there.
//!
//! ## Caveats
//! - When a driver's log cannot be read (worker unreachable), the identity check does not claim a
//!   mismatch: the driver is treated as ours, unverified, and checked again on the next status.
//! - Find-by-tag reads the launch command of every driver with our main class that the master
//!   still lists (newest first). It waits a few seconds for drivers that are queued or not yet
//!   launched by their worker, then answers `unknown` while one still is or its worker cannot be
//!   reached, and skips ended drivers whose worker is gone (their logs are
//!   gone too): a crash before the id was recorded whose driver also lost its worker may
//!   therefore lead to the same generation being submitted again.
//! - The master forgets ended drivers beyond `spark.deploy.retainedDrivers` (default 200): an
//!   id recorded long ago may then come back `not found`.
//! - Only `http://` is spoken (Spark's REST server has no TLS of its own).
//! - In standalone mode the number of executors is `spark.cores.max / spark.executor.cores`, so the
//!   recovery shape may start more (smaller-core, same-memory) executors than the normal one;
//!   cap it with `"spark.cores.max"` in `[recovery.conf]` if memory is tight.
pub mod classify;
pub mod logs;
pub mod rest;
pub mod spec;

use std::{collections::HashMap, sync::Arc, sync::Mutex, time::Duration};

use async_trait::async_trait;
use serde_json::json;
use tether_core::{
    connector::{
        is_recovery, CancelError, FindByTag, JobRef, LogChunk, LogError, LogStream, Logs,
        RecoveryShape, SubmitError, SubmitRequest,
    },
    ids::{ExternalId, Tag},
    observe::{FailureClass, JobStatus, Lookup},
    spec::{parse_spec, SpecError},
    Connector,
};

use crate::registry::{BuildContext, Built};
use classify::{classify_log, Verdict};
use logs::{DriverLogs, LogReadError};
use rest::{first_line, Rest, RestError, Secret};
use spec::{recovery_plan, spark_properties, RecoveryPlan, SparkJob, SparkRecovery};

/// The `kind` of this connector.
pub const KIND: &str = "spark-standalone";

/// How much of a failed driver's stderr the classifier reads (its end, if longer).
const CLASSIFY_MAX_BYTES: u64 = 16 << 20;

/// What the classifier says about a driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    /// Executors (or the driver) ran out of memory.
    Oom {
        /// The log line that shows it.
        evidence: String,
    },
    /// Any other failure.
    Other {
        /// The most telling log line, or why the log could not be read.
        summary: Option<String>,
    },
    /// The master or the worker could not be reached: ask again later.
    Unknown {
        /// Why.
        reason: String,
    },
}

/// The connector. Build it with [`from_spec`] (or [`SparkStandalone::new`]).
#[derive(Debug)]
pub struct SparkStandalone {
    job: SparkJob,
    recovery: Option<RecoveryPlan>,
    rest: Rest,
    logs: DriverLogs,
    /// Driver id -> tag read from its launch command (`None`: it carries no tether tag).
    tags: Mutex<HashMap<String, Option<String>>>,
    /// Driver id -> terminal status, once verified and classified (terminal states never change).
    finals: Mutex<HashMap<String, JobStatus>>,
}

/// Builds the connector and policy of a `kind = "spark-standalone"` spec.
pub fn from_spec(file: &str, text: &str, _ctx: &BuildContext) -> Result<Built, SpecError> {
    let spec = parse_spec::<SparkJob, SparkRecovery>(file, text)?;
    let value_err = |field: &str, message: String| SpecError::Value {
        file: file.into(),
        field: field.into(),
        message,
    };
    spec.job
        .validate()
        .map_err(|(field, message)| value_err(&field, message))?;
    let token = match &spec.job.token_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(t) if !t.trim().is_empty() => Some(Secret::new(t.trim().to_string())),
            _ => {
                return Err(value_err(
                    "job.token_env",
                    format!(
                        "environment variable {var} is not set (or empty): export it with the master's bearer token \
                         (the spec names the variable, never the token)"
                    ),
                ))
            }
        },
    };
    let recovery = spec.recovery.clone().unwrap_or_default();
    let enabled = recovery.enabled;
    let connector = SparkStandalone::new(spec.job.clone(), &recovery, token)
        .map_err(|m| value_err("job", m))?;
    Ok(Built {
        connector: Arc::new(connector),
        policy: spec.policy(Duration::from_secs(2), enabled),
        durable: spec.durable,
    })
}

impl SparkStandalone {
    /// A connector for `job`; `recovery.enabled = false` removes the recovery capability.
    pub fn new(
        job: SparkJob,
        recovery: &SparkRecovery,
        token: Option<Secret>,
    ) -> Result<Self, String> {
        let rest = Rest::new(
            &job.master_rest,
            &job.master_ui(),
            token,
            job.request_timeout.0,
        )?;
        let plan = recovery.enabled.then(|| recovery_plan(&job, recovery));
        Ok(SparkStandalone {
            logs: DriverLogs::new(rest.clone()),
            job,
            recovery: plan,
            rest,
            tags: Mutex::new(HashMap::new()),
            finals: Mutex::new(HashMap::new()),
        })
    }

    /// The JSON body of `POST /v1/submissions/create` for this request.
    pub fn create_request(&self, req: &SubmitRequest) -> serde_json::Value {
        let plan = if is_recovery(req) {
            self.recovery.as_ref()
        } else {
            None
        };
        json!({
            "action": "CreateSubmissionRequest",
            "clientSparkVersion": self.job.client_spark_version,
            "appResource": self.job.app_resource,
            "mainClass": self.job.main_class,
            "appArgs": self.job.args,
            "sparkProperties": spark_properties(&self.job, &req.submission.tag, plan),
            "environmentVariables": self.job.env,
        })
    }

    /// Reads a driver's log and says whether it failed for lack of memory.
    pub async fn classify(&self, driver_id: &str) -> Classification {
        let worker = match self.logs.worker_of(driver_id).await {
            Ok(w) => w,
            Err(e) => return log_error_to_classification(e),
        };
        match self
            .logs
            .stderr_text(driver_id, &worker, CLASSIFY_MAX_BYTES)
            .await
        {
            Ok(text) => match classify_log(&text) {
                Verdict::Oom { evidence } => Classification::Oom { evidence },
                Verdict::Other { summary } => Classification::Other { summary },
            },
            Err(e) => log_error_to_classification(e),
        }
    }

    /// Reads (and caches) the tag in a driver's launch command. `Err`: not readable now.
    async fn tag_of(
        &self,
        driver_id: &str,
        worker_ui: &str,
    ) -> Result<Option<String>, LogReadError> {
        if let Some(t) = self.tags.lock().expect("cache lock").get(driver_id) {
            return Ok(t.clone());
        }
        let info = self.logs.launch_info(worker_ui, driver_id).await?;
        self.tags
            .lock()
            .expect("cache lock")
            .insert(driver_id.to_string(), info.tag.clone());
        Ok(info.tag)
    }

    /// `Some(found)` when the driver is provably not ours; `None` when it is ours or unverifiable.
    async fn identity_mismatch(
        &self,
        driver_id: &str,
        worker_id: Option<&str>,
        expected: &Tag,
    ) -> Option<String> {
        let cached = self
            .tags
            .lock()
            .expect("cache lock")
            .get(driver_id)
            .cloned();
        let tag = match cached {
            Some(t) => t,
            None => {
                // Queued drivers have no log yet; unreadable logs do not prove anything.
                let worker_id = worker_id?;
                let ui = self.logs.worker_ui(worker_id).await.ok()?;
                self.tag_of(driver_id, &ui).await.ok()?
            }
        };
        match tag {
            Some(t) if t == expected.as_str() => None,
            Some(t) => Some(format!("driver {driver_id} with tag {t}")),
            None => Some(format!(
                "driver {driver_id} without a tether tag (not submitted by tether)"
            )),
        }
    }

    async fn terminal_status(
        &self,
        driver_id: &str,
        state: &str,
        msg: &rest::RestMessage,
    ) -> JobStatus {
        match state {
            "FINISHED" => JobStatus::Succeeded {
                result: json!({ "driver_id": driver_id, "driver_state": state, "worker_id": msg.worker_id }),
            },
            "KILLED" => JobStatus::Failed { class: FailureClass::Killed, message: format!("driver {driver_id} was killed") },
            "ERROR" => {
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

fn log_error_to_classification(e: LogReadError) -> Classification {
    match e {
        LogReadError::Unreachable(reason) => Classification::Unknown { reason },
        other => Classification::Other {
            summary: Some(format!("(driver log unavailable: {other})")),
        },
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

#[async_trait]
impl Connector for SparkStandalone {
    fn kind(&self) -> &str {
        KIND
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        // Spark has no idempotency key: a tag that already has a driver gets that driver back
        // instead of a second one. A look-up that cannot answer means: create nothing now, ask
        // again (never create on a guess).
        let tag = req.submission.tag.as_str();
        let known = self
            .tags
            .lock()
            .expect("cache lock")
            .iter()
            .find_map(|(id, t)| (t.as_deref() == Some(tag)).then(|| ExternalId(id.clone())));
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
                        self.tags.lock().expect("cache lock").insert(id.clone(), Some(req.submission.tag.to_string()));
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
            Err(e @ RestError::Http { status, .. }) if status >= 500 => {
                Err(SubmitError::Ambiguous { reason: e.to_string() })
            }
            Err(e @ (RestError::Http { .. } | RestError::NotSpark { .. })) => {
                Err(SubmitError::Rejected { message: e.to_string() })
            }
            Err(e) => Err(SubmitError::Ambiguous { reason: e.to_string() }),
        }
    }

    async fn status(&self, job: &JobRef) -> JobStatus {
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
        if msg.success != Some(true) || msg.driver_state.is_none() {
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
        }
        let state = msg.driver_state.clone().unwrap_or_default();
        if let Some(found) = self
            .identity_mismatch(id, msg.worker_id.as_deref(), &job.submission.tag)
            .await
        {
            return JobStatus::Mismatch { found };
        }
        match state.as_str() {
            "SUBMITTED" => JobStatus::Active {
                detail: "SUBMITTED (queued for a worker)".into(),
            },
            "RUNNING" | "RELAUNCHING" => JobStatus::Active { detail: state },
            "FINISHED" | "FAILED" | "ERROR" | "KILLED" => {
                let st = self.terminal_status(id, &state, &msg).await;
                if st.is_terminal() {
                    self.finals
                        .lock()
                        .expect("cache lock")
                        .insert(id.to_string(), st.clone());
                }
                st
            }
            "UNKNOWN" => JobStatus::Unknown {
                reason: format!("driver {id} is UNKNOWN to the master (it is recovering)"),
            },
            other => JobStatus::Unknown {
                reason: format!("driver {id} has an unexpected state {other:?}"),
            },
        }
    }

    async fn cancel(&self, job: &JobRef) -> Result<(), CancelError> {
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
                e @ (RestError::NotSpark { .. }
                | RestError::Http {
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
impl FindByTag for SparkStandalone {
    async fn find_by_tag(&self, tag: &Tag) -> Lookup {
        // A driver is queued (no worker, so no log to read its tag from) for moments only when
        // the cluster has room: wait a little for it rather than answer `unknown` at once.
        for attempt in 0..QUEUED_RETRIES {
            match self.scan_for_tag(tag).await {
                Scan::Decided(lookup) => return lookup,
                Scan::Queued(reason) if attempt + 1 == QUEUED_RETRIES => {
                    return Lookup::Unknown { reason }
                }
                Scan::Queued(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
        Lookup::Unknown {
            reason: "unreachable".into(),
        }
    }
}

/// Attempts of a tag search while a candidate driver is still queued.
const QUEUED_RETRIES: u32 = 5;

enum Scan {
    Decided(Lookup),
    /// Only drivers not launched yet (queued, or on their way to a worker) stand between us
    /// and an answer.
    Queued(String),
}

impl SparkStandalone {
    async fn scan_for_tag(&self, tag: &Tag) -> Scan {
        let known = self
            .tags
            .lock()
            .expect("cache lock")
            .iter()
            .find_map(|(id, t)| {
                (t.as_deref() == Some(tag.as_str())).then(|| ExternalId(id.clone()))
            });
        let state = match self.rest.master_state().await {
            Ok(s) => s,
            Err(e) => {
                return Scan::Decided(Lookup::Unknown {
                    reason: e.to_string(),
                })
            }
        };
        self.logs.remember_workers(&state);
        if let Some(id) = known {
            // Submitted through this connector: found if the master still lists it.
            if state.drivers().any(|d| d.id == id.0) {
                return Scan::Decided(Lookup::Found { external_id: id });
            }
        }
        let mut candidates: Vec<_> = state
            .drivers()
            .filter(|d| d.mainclass == self.job.main_class)
            .collect();
        // Newest first: a crash right after the POST leaves our driver among the latest.
        candidates.sort_by(|a, b| b.id.cmp(&a.id));
        let mut unreadable: Option<String> = None;
        let mut queued: Option<String> = None;
        for d in candidates {
            let terminal = matches!(d.state.as_str(), "FINISHED" | "FAILED" | "ERROR" | "KILLED");
            let cached = self.tags.lock().expect("cache lock").get(&d.id).cloned();
            let read = match cached {
                Some(t) => Ok(t),
                None if d.worker.is_empty() || d.worker == "None" => {
                    Err(LogReadError::NotStarted(d.id.clone()))
                }
                None => match state.worker_ui(&d.worker) {
                    Some(w) => self.tag_of(&d.id, &w.webuiaddress).await,
                    None => Err(LogReadError::Missing(format!(
                        "worker {} of driver {} is gone",
                        d.worker, d.id
                    ))),
                },
            };
            match read {
                Ok(Some(t)) if t == tag.as_str() => {
                    return Scan::Decided(Lookup::Found {
                        external_id: ExternalId(d.id.clone()),
                    })
                }
                Ok(_) => {}
                // An ended driver whose log is gone cannot be checked, and may stay so forever.
                Err(LogReadError::Missing(_)) if terminal => {}
                // The master calls a driver RUNNING as soon as it sends it to a worker, before
                // the worker has written its log: missing for now, not for good.
                Err(e @ (LogReadError::NotStarted(_) | LogReadError::Missing(_))) => {
                    queued.get_or_insert_with(|| {
                        format!("cannot read the tag of driver {}: {e}", d.id)
                    });
                }
                Err(e) => {
                    unreadable.get_or_insert_with(|| {
                        format!("cannot read the tag of driver {}: {e}", d.id)
                    });
                }
            }
        }
        match (unreadable, queued) {
            (Some(reason), _) => Scan::Decided(Lookup::Unknown { reason }),
            (None, Some(reason)) => Scan::Queued(reason),
            (None, None) => Scan::Decided(Lookup::Absent),
        }
    }
}

#[async_trait]
impl Logs for SparkStandalone {
    async fn read_logs(
        &self,
        job: &JobRef,
        stream: LogStream,
        offset: u64,
        max: usize,
    ) -> Result<LogChunk, LogError> {
        let id = job.external_id.0.as_str();
        let to_log_error = |e: LogReadError| match e {
            LogReadError::Unreachable(reason) => LogError::Unavailable { reason },
            other => LogError::NotFound {
                reason: other.to_string(),
            },
        };
        let worker = self.logs.worker_of(id).await.map_err(to_log_error)?;
        let ui = self.logs.worker_ui(&worker).await.map_err(to_log_error)?;
        let log_type = match stream {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        };
        let s = self
            .logs
            .read_at(&ui, id, log_type, offset, max as u64)
            .await
            .map_err(to_log_error)?;
        Ok(LogChunk {
            next_offset: s.end.max(offset),
            data: s.data,
        })
    }
}

impl RecoveryShape for SparkStandalone {
    fn describe(&self) -> String {
        self.recovery
            .as_ref()
            .map(|p| p.description.clone())
            .unwrap_or_else(|| "recovery disabled".into())
    }
}
