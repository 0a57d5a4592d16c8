//! Spark on YARN (cluster deploy mode): submitted with the spark-submit runner
//! ([`crate::spark::submit`]), followed and killed through the ResourceManager's REST API.
//!
//! ```toml
//! [job]
//! kind = "spark-yarn"
//! app_resource = "/jobs/etl.py"                # or a jar with main_class
//! # main_class = "com.example.Etl"
//! args = ["--date", "2026-11-22"]
//! # hadoop_conf_dir = "/etc/hadoop/conf"       # default: HADOOP_CONF_DIR, else YARN_CONF_DIR
//! # spark_home = "/opt/spark"                  # default: SPARK_HOME
//! # queue = "etl"
//! # rm_url = "http://rm:8088"                  # default: from yarn-site.xml
//! # max_app_attempts = 1                       # spark.yarn.maxAppAttempts: tether owns retries
//! [job.conf]
//! "spark.executor.memory" = "4g"
//!
//! [recovery.conf]                              # optional, as for spark-standalone
//! "spark.driver.memory" = "2g"
//! ```
//!
//! The external id is the YARN application id (`application_<ts>_<n>`) parsed from
//! spark-submit's output; `status` is `GET /ws/v1/cluster/apps/{id}` ([`state`] maps it),
//! `cancel` is `PUT .../state {"state":"KILLED"}`, find-by-tag is
//! `GET /ws/v1/cluster/apps?applicationTags=<tag>`.
//!
//! ## Guarantees
//! - Each submission carries its tag in `spark.yarn.tags` and `spark.tether.tag`
//!   ([`spec::YarnJob::submission_conf`]); `spark.yarn.submit.waitAppCompletion=false` (the
//!   runner), `spark.yarn.maxAppAttempts` = `max_app_attempts` (default 1).
//! - `submit` first looks the tag up: an application that already carries it is returned
//!   instead of a second one; a look-up without answer submits nothing (`Unavailable`). The
//!   fence is confirmed right before spark-submit starts.
//! - `status` never fails: RM unreachable, timeouts and 5xx are `Unknown`; an id the RM does not
//!   know is `NotFound`; an application without our tag is `Mismatch`.
//! - `cancel` kills only an application that carries our tag and has not ended.
//! - OOM: the diagnostics and container exit code (-104, -103, 137...) through
//!   [`crate::spark::oom`]; the recovery shape is [`crate::spark::recovery`]'s.
//!
//! ## Assumptions
//! - Simple authentication (Kerberos is refused at build time, see [`hadoop`]); the RM's REST
//!   API is reachable from tether without credentials.
//!
//! ## Caveats
//! - The RM forgets finished applications beyond `yarn.resourcemanager.max-completed-applications`
//!   (and across restarts without RM recovery): an old id may then come back `not found`.
//! - YARN tags are at most 100 characters; tether's tags are shorter.
mod build;
mod bulk;
pub mod hadoop;
pub mod logs;
pub mod rm;
pub mod spec;
pub mod state;

use std::path::PathBuf;

use async_trait::async_trait;
use tether_core::{
    connector::{
        is_recovery, CancelError, FindByTag, JobRef, LogChunk, LogCursor, LogError, LogStream,
        Logs, RecoveryShape, SubmitError, SubmitRequest,
    },
    ids::{ExternalId, Tag},
    observe::{JobStatus, Lookup},
    Connector,
};

use crate::spark::{
    recovery::RecoveryPlan,
    submit::{already_submitted, Cluster, SparkSubmit},
};
pub use build::YarnFactory;
use rm::{AppAnswer, Rm};
use spec::YarnJob;

/// The `kind` of this connector.
pub const KIND: &str = "spark-yarn";

/// The connector. Build it with [`YarnFactory`].
#[derive(Debug)]
pub struct SparkYarn {
    job: YarnJob,
    /// The Hadoop configuration directory handed to spark-submit.
    conf_dir: Option<PathBuf>,
    recovery: Option<RecoveryPlan>,
    rm: Rm,
}

impl SparkYarn {
    /// The spark-submit run of `req`.
    pub fn spark_submit(&self, req: &SubmitRequest) -> Result<SparkSubmit, SubmitError> {
        let plan = if is_recovery(req) {
            self.recovery.as_ref()
        } else {
            None
        };
        let mut run = SparkSubmit {
            spark_home: self.job.spark_home.clone(),
            cluster: Cluster::Yarn,
            master: "yarn".into(),
            main_class: self.job.main_class.clone(),
            app_resource: self.job.app_resource.clone(),
            args: self.job.args.clone(),
            conf: Default::default(),
            env_allow: vec![],
            env: vec![],
            timeout: self.job.submit_timeout.0,
            output_cap: 1 << 20,
        };
        let home = run.spark_home()?;
        run.conf = self
            .job
            .submission_conf(&req.submission.tag, plan, Some(&home))
            .map_err(|e| SubmitError::Rejected {
                message: e.to_string(),
            })?;
        if let Some(dir) = &self.conf_dir {
            let dir = dir.display().to_string();
            run.env.push(("HADOOP_CONF_DIR".into(), dir.clone()));
            run.env.push(("YARN_CONF_DIR".into(), dir));
        }
        Ok(run)
    }

    async fn lookup(&self, tag: &Tag) -> Lookup {
        match self.rm.apps_with_tag(tag.as_str()).await {
            Ok(apps) => {
                // The earliest, should a crash ever have left two: the one the engine may
                // already know.
                let mut ours: Vec<_> = apps
                    .into_iter()
                    .filter(|a| a.has_tag(tag.as_str()))
                    .collect();
                ours.sort_by_key(|a| app_order(&a.id));
                match ours.into_iter().next() {
                    Some(a) => Lookup::Found {
                        external_id: ExternalId(a.id),
                    },
                    None => Lookup::Absent,
                }
            }
            Err(e) => Lookup::Unknown {
                reason: e.to_string(),
            },
        }
    }
}

/// `application_<cluster start>_<n>` in submission order.
pub(crate) fn app_order(id: &str) -> (u64, u64) {
    let mut parts = id.trim_start_matches("application_").split('_');
    let mut num = || {
        parts
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(u64::MAX)
    };
    (num(), num())
}

#[async_trait]
impl Connector for SparkYarn {
    fn kind(&self) -> &str {
        KIND
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        let tag = &req.submission.tag;
        if let Some(id) = already_submitted(tag, "an application", self.lookup(tag).await)? {
            return Ok(id);
        }
        let run = self.spark_submit(req)?;
        // The look-up took a while: an owner frozen meanwhile and taken over creates nothing.
        req.fence.confirm().await?;
        run.run().await.map(|s| s.id)
    }

    async fn status(&self, job: &JobRef) -> JobStatus {
        let id = job.external_id.0.as_str();
        let status = match self.rm.app(id).await {
            Ok(AppAnswer::Found(app)) => state::status_of(
                &app,
                job.submission.tag.as_str(),
                self.job.main_class.as_deref(),
            ),
            Ok(AppAnswer::NotFound(message)) => JobStatus::NotFound {
                detail: format!("{}: {message}", self.rm.base()),
            },
            Err(e) => JobStatus::Unknown {
                reason: e.to_string(),
            },
        };
        // The RM's diagnostics are multi-line: control characters escaped, as every backend's.
        crate::text::clean_status(status, &[])
    }

    async fn cancel(&self, job: &JobRef) -> Result<(), CancelError> {
        let id = job.external_id.0.as_str();
        let unavailable = |e: crate::http::HttpError| CancelError::Unavailable {
            reason: crate::text::clean(&e.to_string(), &[]),
        };
        let app = match self.rm.app(id).await.map_err(unavailable)? {
            AppAnswer::Found(app) => app,
            AppAnswer::NotFound(m) => {
                return Err(CancelError::Refused {
                    message: crate::text::clean(&format!("application {id}: {m}"), &[]),
                })
            }
        };
        if !app.has_tag(job.submission.tag.as_str()) {
            return Err(CancelError::Refused {
                message: format!(
                    "application {id} does not carry tag {}: not ours, not killed",
                    job.submission.tag
                ),
            });
        }
        if app.is_final() {
            return Ok(());
        }
        self.rm.kill(id).await.map_err(|e| match e.outcome() {
            crate::http::Outcome::Definite => CancelError::Refused {
                message: crate::text::clean(&e.to_string(), &[]),
            },
            _ => unavailable(e),
        })
    }

    fn bulk_status(&self) -> Option<&dyn tether_core::connector::BulkStatus> {
        Some(self)
    }
    fn find_by_tag(&self) -> Option<&dyn FindByTag> {
        Some(self)
    }
    fn recovery(&self) -> Option<&dyn RecoveryShape> {
        self.recovery.as_ref().map(|_| self as &dyn RecoveryShape)
    }
    fn logs(&self) -> Option<&dyn Logs> {
        Some(self)
    }
}

#[async_trait]
impl Logs for SparkYarn {
    async fn read_logs(
        &self,
        job: &JobRef,
        stream: LogStream,
        cursor: &LogCursor,
        max: usize,
    ) -> Result<LogChunk, LogError> {
        let clean = |s: String| crate::text::clean(&s, &[]);
        let id = job.external_id.0.as_str();
        // YARN's NodeManager serves a log file from its start: the cursor is a byte offset.
        let offset = cursor.byte_offset()?;
        let app = match self.rm.app(id).await {
            Ok(AppAnswer::Found(app)) => app,
            Ok(AppAnswer::NotFound(m)) => return Err(LogError::NotFound { reason: clean(m) }),
            Err(e) => {
                return Err(LogError::Unavailable {
                    reason: clean(e.to_string()),
                })
            }
        };
        if !app.has_tag(job.submission.tag.as_str()) {
            return Err(LogError::NotFound {
                reason: format!("application {id} does not carry tag {}", job.submission.tag),
            });
        }
        let Some(am_logs) = app.am_container_logs.filter(|l| !l.is_empty()) else {
            return Err(LogError::Unavailable {
                reason: format!(
                    "application {id} has no driver container yet ({})",
                    app.state
                ),
            });
        };
        let (nm, container) =
            logs::am_container(&am_logs).map_err(|r| LogError::NotFound { reason: clean(r) })?;
        let file = if stream == LogStream::Stdout {
            "stdout"
        } else {
            "stderr"
        };
        let data = logs::read(self.rm.client(), &nm, &container, file, offset, max)
            .await
            .map_err(|e| match e {
                logs::ReadError::Unavailable(r) => LogError::Unavailable { reason: clean(r) },
                logs::ReadError::NotFound(r) => LogError::NotFound { reason: clean(r) },
            })?;
        Ok(LogChunk {
            next: LogCursor::at_byte(offset + data.len() as u64),
            data,
        })
    }
}

#[async_trait]
impl FindByTag for SparkYarn {
    async fn find_by_tag(&self, tag: &Tag) -> Lookup {
        match self.lookup(tag).await {
            Lookup::Unknown { reason } => Lookup::Unknown {
                reason: crate::text::clean(&reason, &[]),
            },
            other => other,
        }
    }
}

impl RecoveryShape for SparkYarn {
    fn describe(&self) -> String {
        crate::spark::recovery::describe(self.recovery.as_ref())
    }
}
