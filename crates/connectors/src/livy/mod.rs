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
//! - Before a batch Livy no longer knows is reported not found or mismatched, and before
//!   find-by-tag answers absent, YARN is asked for the tag's application ([`yarn`]): one still
//!   running is followed there, never lost, so a Livy crash never runs a job twice.
//! - Bulk status: Livy's paged `GET /batches` judges every active batch at once (`bulk.rs`).
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
mod bulk;
mod logs;
mod ops;
pub mod spec;
pub mod yarn;

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use async_trait::async_trait;
use tether_core::{
    connector::{
        is_recovery, CancelError, FindByTag, JobRef, Logs, RecoveryShape, SubmitError,
        SubmitRequest,
    },
    ids::{ExternalId, Tag},
    observe::{JobStatus, Lookup},
    Connector,
};

pub use api::{Api, Batch};
pub use build::LivyFactory;
use spec::LivyJob;

use crate::spark::recovery::RecoveryPlan;
use crate::spark_yarn::rm::Rm;
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
    /// The ResourceManager Livy submits to, asked before a forgotten batch is called lost.
    rm: Option<Rm>,
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
            rm: None,
        }
    }

    /// The same, asking `rm` (the ResourceManager Livy submits to) before a batch Livy no
    /// longer knows is called lost or a tag absent (see [`yarn`]).
    pub fn with_rm(mut self, rm: Option<Rm>) -> Self {
        self.rm = rm;
        self
    }

    fn secrets(&self) -> Vec<String> {
        self.api.client().auth().secrets()
    }

    /// The body of `POST /batches` for this request.
    pub fn batch_body(&self, req: &SubmitRequest) -> serde_json::Value {
        let plan = self.recovery.as_ref().filter(|_| is_recovery(req));
        self.job.batch_body(&req.submission.tag, plan)
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

    fn bulk_status(&self) -> Option<&dyn tether_core::connector::BulkStatus> {
        Some(self)
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
