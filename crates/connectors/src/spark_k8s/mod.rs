//! Spark on Kubernetes (cluster deploy mode): submitted with the spark-submit runner
//! ([`crate::spark::submit`]), then followed, searched and cancelled through the Kubernetes API
//! with `kube` ([`api`]).
//!
//! ```toml
//! [job]
//! kind = "spark-k8s"
//! app_resource = "local:///opt/app/etl.jar"    # as the driver pod reads it
//! main_class = "com.example.Etl"
//! image = "registry.example.com/spark:4.3.0"
//! namespace = "etl"                           # default "default"
//! # service_account = "spark"
//! # kubeconfig = "~/.kube/config"             # default: KUBECONFIG, else ~/.kube/config
//! # context = "prod"                          # default: the kubeconfig's current context
//! # spark_home = "/opt/spark"                 # default: SPARK_HOME
//! # driver_pod_template = "driver.yaml"       # executor_pod_template too
//! [job.driver]
//! memory = "2g"
//! [job.executor]
//! cores = 4
//! memory = "8g"
//! instances = 3
//! [job.conf]
//! "spark.kubernetes.executor.request.cores" = "3500m"
//! ```
//!
//! The external id is the driver pod's name, which tether chooses: the tag made DNS-1123
//! ([`crate::spark::tag::driver_pod_name`]). `status` reads that pod ([`state`]), `cancel`
//! deletes it (Spark's owner references take the executors, service and conf map with it),
//! find-by-tag lists driver pods by the `tether-tag` label, logs are the driver pod's log.
//!
//! ## Guarantees
//! - Idempotent submit: the API server refuses a second pod of one name (`409 AlreadyExists`),
//!   so a crash between submit and id record heals by submitting the same tag again; `submit`
//!   also looks the tag up first and returns a driver pod that already carries it, and after
//!   a spark-submit that failed without an id it looks for the pod by name before failing.
//! - spark-submit's exit code is never taken for the job's outcome: only the driver pod's.
//! - `status` never fails: API server unreachable, timeouts, 5xx are `Unknown`; a pod the API
//!   server does not have is `NotFound`; a pod without our tag label is `Mismatch`.
//! - `cancel` deletes only a driver pod that carries our tag; a pod already gone is cancelled.
//!
//! - Spark's own recovery (level 1, Spark ≥ 4.2) is reported, not driven: after each active poll
//!   the executor pods give the history each executor lost to OOM and each recovery-mode
//!   executor ([`events`]).
//!
//! ## Caveats
//! - Logs are read whole and paged by byte offset: a driver log of many megabytes is fetched
//!   at every page (kube's `sinceTime` cursor is not used yet).
//! - The recovery shape ([`recovery`]) uses Spark 4.2's native flag when `spark_version`, else
//!   `spark-submit --version` of the distribution (read at the first recovery submission,
//!   [`crate::spark::version`]), says ≥ 4.2; that version is the submitter's, assumed the image's.
mod api;
mod build;
mod bulk;
pub mod events;
pub mod recovery;
pub mod spec;
pub mod state;

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

pub use api::{KubeError, KubeTarget};
pub use build::K8sFactory;

use crate::spark::{
    recovery::{RecoveryPlan, SparkRecovery},
    submit::{already_submitted, Cluster, SparkSubmit},
    tag::{driver_pod_name, label_value},
    version,
};
use api::Kube;
use recovery::{k8s_recovery_plan, major_minor};
use spec::{K8sJob, TAG_LABEL};

/// The `kind` of this connector.
pub const KIND: &str = "spark-k8s";

/// The connector. Build it with [`K8sFactory`].
#[derive(Debug)]
pub struct SparkK8s {
    job: K8sJob,
    /// The `[recovery]` settings when a recovery plan exists (see [`SparkK8s::plan`]).
    recovery: Option<SparkRecovery>,
    kube: Kube,
}

impl SparkK8s {
    /// The spark-submit run of `req`, with the Spark version known now (the spec's, or one
    /// read before): see [`SparkK8s::plan`].
    pub fn spark_submit(&self, req: &SubmitRequest) -> Result<SparkSubmit, SubmitError> {
        self.spark_submit_at(req, self.known_version())
    }

    /// The Spark distribution of this spec: `spark_home`, else our `SPARK_HOME`.
    fn spark_home(&self) -> Option<std::path::PathBuf> {
        self.job.spark_home.clone().or_else(|| {
            std::env::var_os("SPARK_HOME")
                .filter(|h| !h.is_empty())
                .map(Into::into)
        })
    }

    /// The spec's `spark_version`, else the one `spark-submit --version` gave earlier.
    fn known_version(&self) -> Option<(u32, u32)> {
        if let Some(v) = &self.job.spark_version {
            return major_minor(v);
        }
        major_minor(&version::cached(&self.spark_home()?)?)
    }

    /// The spec's `spark_version`, else `spark-submit --version` of the distribution (once per
    /// distribution); unreadable → `None`, the shape every Spark understands.
    async fn version(&self) -> Option<(u32, u32)> {
        if let Some(v) = self.known_version() {
            return Some(v);
        }
        let home = self.spark_home()?;
        // Unreadable (no distribution yet, no banner): the shape every Spark understands,
        // and spark-submit itself will say what is wrong with the distribution.
        let v = version::spark_version(&home, self.job.submit_timeout.0).await;
        major_minor(&v.ok()?)
    }

    /// The normal executors' cores, if the spec says (`executor.cores`, `spark.executor.cores`).
    fn normal_cores(&self) -> Option<u32> {
        self.job.executor.cores.or_else(|| {
            self.job
                .conf
                .get("spark.executor.cores")
                .and_then(|v| v.to_string().trim().parse().ok())
        })
    }

    /// The recovery plan on Spark `version` (`None`: not known), if recovery is on.
    pub fn plan(&self, version: Option<(u32, u32)>) -> Option<RecoveryPlan> {
        let r = self.recovery.as_ref()?;
        k8s_recovery_plan(&self.job.conf, self.job.executor.cores, r, version)
    }

    fn spark_submit_at(
        &self,
        req: &SubmitRequest,
        version: Option<(u32, u32)>,
    ) -> Result<SparkSubmit, SubmitError> {
        let plan = if is_recovery(req) {
            self.plan(version)
        } else {
            None
        };
        let conf = self
            .job
            .submission_conf(&req.submission.tag, plan.as_ref())
            .map_err(|e| SubmitError::Rejected {
                message: e.to_string(),
            })?;
        let target = self.kube.target();
        let mut env = vec![];
        if let Some(path) = &target.path {
            env.push(("KUBECONFIG".to_string(), path.display().to_string()));
        }
        Ok(SparkSubmit {
            spark_home: self.job.spark_home.clone(),
            cluster: Cluster::Kubernetes,
            master: format!("k8s://{}", target.server),
            main_class: self.job.main_class.clone(),
            app_resource: self.job.app_resource.clone(),
            args: self.job.args.clone(),
            conf,
            env_allow: vec![],
            env,
            timeout: self.job.submit_timeout.0,
            output_cap: 1 << 20,
        })
    }

    /// The driver pod carrying `tag`, if any.
    async fn lookup(&self, tag: &Tag) -> Lookup {
        let selector = format!("{TAG_LABEL}={},spark-role=driver", label_value(tag));
        match self.kube.pods_with(&selector).await {
            Ok(pods) => {
                let mut names: Vec<String> =
                    pods.into_iter().filter_map(|p| p.metadata.name).collect();
                // The tag's own pod name first, should anything else carry the label.
                let own = driver_pod_name(tag);
                names.sort_by_key(|n| (*n != own, n.clone()));
                match names.into_iter().next() {
                    Some(n) => Lookup::Found {
                        external_id: ExternalId(n),
                    },
                    None => Lookup::Absent,
                }
            }
            Err(e) => Lookup::Unknown {
                reason: crate::text::clean(&e.to_string(), &[]),
            },
        }
    }
}

#[async_trait]
impl Connector for SparkK8s {
    fn kind(&self) -> &str {
        KIND
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        let tag = &req.submission.tag;
        if let Some(id) = already_submitted(tag, "a driver pod", self.lookup(tag).await)? {
            return Ok(id);
        }
        let version = if is_recovery(req) {
            self.version().await
        } else {
            None
        };
        let run = self.spark_submit_at(req, version)?;
        req.fence.confirm().await?;
        match run.run().await {
            Ok(s) => Ok(s.id),
            Err(e) => {
                // A 409 (a submit raced us, or an earlier one's answer was lost) or a cut
                // output: the pod of our name and tag, if it exists, is the job.
                match self.lookup(tag).await {
                    Lookup::Found { external_id } => Ok(external_id),
                    _ => Err(e),
                }
            }
        }
    }

    async fn status(&self, job: &JobRef) -> JobStatus {
        let name = job.external_id.0.as_str();
        let status = match self.kube.pod(name).await {
            Ok(pod) => state::status_of(&pod, &label_value(&job.submission.tag)),
            Err(e) if e.is_not_found() => JobStatus::NotFound {
                detail: e.to_string(),
            },
            Err(e) => JobStatus::Unknown {
                reason: e.to_string(),
            },
        };
        crate::text::clean_status(status, &[])
    }

    async fn cancel(&self, job: &JobRef) -> Result<(), CancelError> {
        let name = job.external_id.0.as_str();
        let clean = |s: String| crate::text::clean(&s, &[]);
        let pod = match self.kube.pod(name).await {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e @ KubeError::Answered { .. }) => {
                return Err(CancelError::Refused {
                    message: clean(e.to_string()),
                })
            }
            Err(e) => {
                return Err(CancelError::Unavailable {
                    reason: clean(e.to_string()),
                })
            }
        };
        let want = label_value(&job.submission.tag);
        if state::label(&pod, TAG_LABEL) != Some(want.as_str()) {
            return Err(CancelError::Refused {
                message: format!(
                    "pod {name} does not carry label {TAG_LABEL}={want}: not ours, not deleted"
                ),
            });
        }
        match self.kube.delete(name).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e @ KubeError::Answered { .. }) => Err(CancelError::Refused {
                message: clean(e.to_string()),
            }),
            Err(e) => Err(CancelError::Unavailable {
                reason: clean(e.to_string()),
            }),
        }
    }

    fn idempotent_submit(&self) -> bool {
        true
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
    fn bulk_status(&self) -> Option<&dyn tether_core::connector::BulkStatus> {
        Some(self)
    }
    fn events(&self) -> Option<&dyn tether_core::connector::BackendEvents> {
        Some(self)
    }
}

#[async_trait]
impl Logs for SparkK8s {
    /// The driver pod's log (Kubernetes keeps one log per container: both streams are it).
    async fn read_logs(
        &self,
        job: &JobRef,
        _stream: LogStream,
        cursor: &LogCursor,
        max: usize,
    ) -> Result<LogChunk, LogError> {
        let clean = |s: String| crate::text::clean(&s, &[]);
        let offset = cursor.byte_offset()?;
        let name = job.external_id.0.as_str();
        let text = self.kube.log(name).await.map_err(|e| match e {
            e if e.is_not_found() => LogError::NotFound {
                reason: clean(e.to_string()),
            },
            e => LogError::Unavailable {
                reason: clean(e.to_string()),
            },
        })?;
        let bytes = text.into_bytes();
        let start = (offset as usize).min(bytes.len());
        let end = start.saturating_add(max).min(bytes.len());
        Ok(LogChunk {
            next: LogCursor::at_byte(end as u64),
            data: bytes[start..end].to_vec(),
        })
    }
}

#[async_trait]
impl FindByTag for SparkK8s {
    async fn find_by_tag(&self, tag: &Tag) -> Lookup {
        self.lookup(tag).await
    }
}

impl RecoveryShape for SparkK8s {
    fn describe(&self) -> String {
        let known = self.known_version();
        let mut said = crate::spark::recovery::describe(self.plan(known).as_ref());
        if known.is_none() {
            said.push_str(&format!(
                " (Spark version not known yet: on Spark ≥ 4.2, per spark-submit --version at submit, \
                 {} instead)",
                crate::spark::recovery::describe(self.plan(Some((4, 2))).as_ref())
            ));
        }
        said
    }
}
