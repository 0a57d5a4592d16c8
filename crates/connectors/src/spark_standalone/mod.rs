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
//! # token_env = "TETHER_TOKEN_SPARK"           # env var holding a bearer token (JWS filter)
//! # ca_file = "/etc/tether/spark-ca.pem"       # extra CA for https:// (besides system roots)
//! # allow_insecure_token = false               # true: a token may go over plain http://
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
//!   ([`crate::spark::oom`]), `KILLED` is `killed`, `ERROR` is `rejected` when the jar cannot be found
//!   and `other` otherwise (e.g. the worker died).
//! - The bearer token is read from the environment variable named by `token_env` (only
//!   `TETHER_TOKEN_*`, or names in
//!   [`crate::registry::BuildContext::token_env_allow`]) when the connector is
//!   built; it is sent to the REST server only (over `https://` unless `allow_insecure_token`)
//!   and never appears in `Debug` output; every text the connector returns has it replaced by
//!   `***` and control characters escaped ([`crate::text::clean`]).
//! - A driver is ours only if its launch command shows our tag *and* the spec's main class and
//!   arguments ([`logs::app_differs`]); otherwise find-by-tag skips it and status says
//!   `Mismatch`.
//! - HTTP: no redirects, capped bodies, percent-encoded ids, checked worker addresses
//!   ([`http`]).
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
//!   reached, and skips ended drivers whose worker is gone or that never had one (killed while
//!   queued; their logs are
//!   gone too): a crash before the id was recorded whose driver also lost its worker may
//!   therefore lead to the same generation being submitted again.
//! - The master forgets ended drivers beyond `spark.deploy.retainedDrivers` (default 200): an
//!   id recorded long ago may then come back `not found`.
//! - Spark's REST server has no TLS of its own: `https://` needs a TLS-terminating proxy (or
//!   Spark's SSL settings for the UIs); `master_ui` defaults to the REST scheme and host, port
//!   8080.
//! - A launch line cut by the read (64 KiB) or with arguments Spark redacted cannot show the
//!   arguments: such a driver with our tag is still adopted (unverifiable, not different).
//! - In standalone mode the number of executors is `spark.cores.max / spark.executor.cores`, so the
//!   recovery shape may start more (smaller-core, same-memory) executors than the normal one;
//!   cap it with `"spark.cores.max"` in `[recovery.conf]` if memory is tight.
mod build;
mod bulk;
mod find;
pub use crate::http;
pub mod logs;
mod ops;
pub mod rest;
pub mod spec;
pub mod state;
pub mod wire;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use serde_json::json;
use tether_core::{
    connector::{
        is_recovery, BulkStatus, CancelError, FindByTag, JobRef, Logs, RecoveryShape, SubmitError,
        SubmitRequest,
    },
    ids::{ExternalId, Tag},
    observe::JobStatus,
    Connector,
};

use crate::spark::oom::{classify_log, Verdict};
use crate::text;
use build::read_ca;
pub use build::{from_spec, NewError, SparkFactory, TOKEN_ENV_PREFIX};
use logs::{app_differs, DriverLogs, LogReadError};
use rest::{Rest, Secret};
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
        /// Which call failed and how (unreachable, timeout, HTTP 5xx).
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
    /// Driver id -> what its launch command showed (or what we submitted under it).
    tags: Mutex<Tags>,
    /// Scrubbed out of every text the connector returns.
    token: Option<Secret>,
    /// Driver id -> terminal status, once verified and classified (terminal states never change).
    finals: Mutex<HashMap<String, JobStatus>>,
    /// The master's `/json/`, fetched fresh and shared by concurrent find-by-tag and bulk calls.
    listing: bulk::Listing,
}

/// What a driver's launch command showed about it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    /// Its `spark.tether.tag` (`None`: not submitted by tether). Shared with [`Tags::ours`].
    tag: Option<Arc<str>>,
    /// `Some(how)`: it runs another main class or other arguments than this spec's.
    other_app: Option<String>,
}

impl Seen {
    /// Ours: our tag and (as far as the log shows) our application.
    fn is(&self, tag: &str) -> bool {
        self.tag.as_deref() == Some(tag) && self.other_app.is_none()
    }
}

/// What each driver's launch command showed, and the drivers that are ours by tag: a submit
/// looks its tag up in O(1) instead of walking every driver seen. A worker keeps one entry per
/// driver it polls: ids and tags are shared between the two maps, not copied.
#[derive(Debug, Default)]
struct Tags {
    by_id: HashMap<Arc<str>, Seen>,
    /// Tag -> the driver carrying it with this spec's application (the latest remembered).
    ours: HashMap<Arc<str>, Arc<str>>,
}

impl Tags {
    fn get(&self, id: &str) -> Option<&Seen> {
        self.by_id.get(id)
    }
    fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }
    fn insert(&mut self, id: &str, seen: Seen) {
        let id: Arc<str> = Arc::from(id);
        if let (Some(tag), None) = (&seen.tag, &seen.other_app) {
            self.ours.insert(tag.clone(), id.clone());
        }
        self.by_id.insert(id, seen);
    }
    /// The driver carrying `tag` with this spec's application, if one was seen.
    fn known(&self, tag: &str) -> Option<ExternalId> {
        self.ours.get(tag).map(|id| ExternalId(id.to_string()))
    }
}

impl SparkStandalone {
    /// A connector for `job`; `recovery.enabled = false` removes the recovery capability.
    /// Reads `job.ca_file` if set.
    pub fn new(
        job: SparkJob,
        recovery: &SparkRecovery,
        token: Option<Secret>,
    ) -> Result<Self, NewError> {
        let ca_pem = read_ca(&job)?;
        Self::with_ca(job, recovery, token, ca_pem.as_deref())
    }

    fn with_ca(
        job: SparkJob,
        recovery: &SparkRecovery,
        token: Option<Secret>,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, NewError> {
        let rest = Rest::new(
            &job.master_rest,
            &job.master_ui(),
            token.clone(),
            job.request_timeout.0,
            ca_pem,
        )
        .map_err(|message| match &job.ca_file {
            Some(path) if ca_pem.is_some() => NewError::BadCa {
                path: path.clone(),
                message,
            },
            _ => NewError::Client(message),
        })?;
        Ok(Self::with_rest(job, recovery, token, rest))
    }

    /// A connector for `job` talking through `rest` (whose client may be shared).
    fn with_rest(
        job: SparkJob,
        recovery: &SparkRecovery,
        token: Option<Secret>,
        rest: Rest,
    ) -> Self {
        let plan = recovery.enabled.then(|| recovery_plan(&job.conf, recovery));
        SparkStandalone {
            logs: DriverLogs::new(rest.clone()),
            job,
            recovery: plan,
            rest,
            tags: Mutex::default(),
            finals: Mutex::new(HashMap::new()),
            listing: bulk::Listing::default(),
            token,
        }
    }

    /// Backend text made safe to return: the token scrubbed, control characters escaped.
    fn clean(&self, text: &str) -> String {
        let secrets: Vec<&str> = self.token.iter().map(Secret::expose).collect();
        text::clean(text, &secrets)
    }

    /// [`Self::clean`] on every text of a status.
    fn clean_status(&self, status: JobStatus) -> JobStatus {
        match status {
            JobStatus::Active { state, detail } => JobStatus::Active {
                state,
                detail: self.clean(&detail),
            },
            JobStatus::Succeeded { result } => JobStatus::Succeeded {
                result: self.clean_json(result),
            },
            JobStatus::Failed { class, message } => JobStatus::Failed {
                class,
                message: self.clean(&message),
            },
            JobStatus::NotFound { detail } => JobStatus::NotFound {
                detail: self.clean(&detail),
            },
            JobStatus::Mismatch { found } => JobStatus::Mismatch {
                found: self.clean(&found),
            },
            JobStatus::Unknown { reason } => JobStatus::Unknown {
                reason: self.clean(&reason),
            },
        }
    }

    /// [`Self::clean`] on every string of a JSON value.
    fn clean_json(&self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.clean(&s)),
            Value::Array(a) => Value::Array(a.into_iter().map(|v| self.clean_json(v)).collect()),
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .map(|(k, v)| (self.clean(&k), self.clean_json(v)))
                    .collect(),
            ),
            other => other,
        }
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
                Verdict::Oom { evidence, .. } => Classification::Oom { evidence },
                Verdict::Other { summary } => Classification::Other { summary },
            },
            Err(e) => log_error_to_classification(e),
        }
    }

    /// Reads (and caches) what a driver's launch command shows: its tag, and whether it runs
    /// this spec's main class and arguments. `Err`: not readable now.
    async fn seen_of(&self, driver_id: &str, worker_ui: &str) -> Result<Seen, LogReadError> {
        if let Some(t) = self.tags.lock().expect("cache lock").get(driver_id) {
            return Ok(t.clone());
        }
        let info = self.logs.launch_info(worker_ui, driver_id).await?;
        let seen = Seen {
            other_app: app_differs(&info, &self.job.main_class, &self.job.args),
            tag: info.tag.map(Arc::from),
        };
        self.tags
            .lock()
            .expect("cache lock")
            .insert(driver_id, seen.clone());
        Ok(seen)
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
        let seen = match cached {
            Some(t) => t,
            None => {
                // Queued drivers have no log yet; unreadable logs do not prove anything.
                let worker_id = worker_id?;
                let ui = self.logs.worker_ui(worker_id).await.ok()?;
                self.seen_of(driver_id, &ui).await.ok()?
            }
        };
        match (seen.tag, seen.other_app) {
            (Some(t), None) if *t == *expected.as_str() => None,
            // Same tag, other application: another store's run with the same key, not ours.
            (Some(t), Some(how)) if *t == *expected.as_str() => Some(format!(
                "driver {driver_id} with tag {t} but another application: {how}"
            )),
            (Some(t), _) => Some(format!("driver {driver_id} with tag {t}")),
            (None, _) => Some(format!(
                "driver {driver_id} without a tether tag (not submitted by tether)"
            )),
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

#[async_trait]
impl Connector for SparkStandalone {
    fn kind(&self) -> &str {
        KIND
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        self.submit_raw(req).await.map_err(|e| match e {
            SubmitError::Rejected { message } => SubmitError::Rejected {
                message: self.clean(&message),
            },
            SubmitError::Unavailable { reason } => SubmitError::Unavailable {
                reason: self.clean(&reason),
            },
            SubmitError::Ambiguous { reason } => SubmitError::Ambiguous {
                reason: self.clean(&reason),
            },
            // Ours (the lease), not the backend's words.
            other => other,
        })
    }

    async fn status(&self, job: &JobRef) -> JobStatus {
        self.clean_status(self.status_raw(job).await)
    }

    async fn cancel(&self, job: &JobRef) -> Result<(), CancelError> {
        self.cancel_raw(job).await.map_err(|e| match e {
            CancelError::Unavailable { reason } => CancelError::Unavailable {
                reason: self.clean(&reason),
            },
            CancelError::Refused { message } => CancelError::Refused {
                message: self.clean(&message),
            },
        })
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
    fn bulk_status(&self) -> Option<&dyn BulkStatus> {
        Some(self)
    }
}

impl RecoveryShape for SparkStandalone {
    fn describe(&self) -> String {
        crate::spark::recovery::describe(self.recovery.as_ref())
    }
}
