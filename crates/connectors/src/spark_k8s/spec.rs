//! The `[job]` table of a `kind = "spark-k8s"` spec, its checks, and the Spark conf of one
//! submission (normal or recovery shape).
//!
//! ## Guarantees
//! - Unknown fields are errors (`deny_unknown_fields`), reported with file, line and column.
//! - Every submission carries its tag in `spark.tether.tag`, in the `tether-tag` label of the
//!   driver and executor pods, and in the driver pod's name ([`crate::spark::tag`]); a user conf
//!   setting one of these, or a key the spec has a field for, is an error naming the key.
use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};
use tether_core::{ids::Tag, units::HumanDuration};

use crate::spark::{
    conf::{ConfError, ConfValue, SparkConf},
    recovery::RecoveryPlan,
    spec::{jar_without_main_class, timeout_out_of_range, CheckedJob, TIMEOUT_RANGE},
    tag::{tag_conf, TagPlaces, SHAPE_CONF},
};

/// The label key carrying the tag on the driver and executor pods.
pub const TAG_LABEL: &str = "tether-tag";

/// `[job]` for `kind = "spark-k8s"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sJob {
    /// Always `"spark-k8s"`.
    pub kind: String,
    /// The application as the driver pod reads it (`local:///opt/app/etl.jar`, `s3a://...`).
    pub app_resource: String,
    /// The driver's main class (jars only).
    #[serde(default)]
    pub main_class: Option<String>,
    /// Application arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Spark conf (`--conf k=v`).
    #[serde(default)]
    pub conf: BTreeMap<String, ConfValue>,
    /// The namespace of the driver and executor pods (default `default`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The container image of the driver and executors.
    pub image: String,
    /// The driver's service account (`spark.kubernetes.authenticate.driver.serviceAccountName`).
    #[serde(default)]
    pub service_account: Option<String>,
    /// Driver resources.
    #[serde(default)]
    pub driver: Resources,
    /// Executor resources.
    #[serde(default)]
    pub executor: Resources,
    /// A pod template file for the driver, as spark-submit reads it.
    #[serde(default)]
    pub driver_pod_template: Option<PathBuf>,
    /// A pod template file for the executors.
    #[serde(default)]
    pub executor_pod_template: Option<PathBuf>,
    /// The Spark distribution (default: our `SPARK_HOME`).
    #[serde(default)]
    pub spark_home: Option<PathBuf>,
    /// The kubeconfig file (default: `KUBECONFIG`, else `~/.kube/config`).
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[serde(default)]
    pub context: Option<String>,
    /// The Spark version of the image (`4.2.1`), for the recovery shape; default: what
    /// `spark-submit --version` of `spark_home` says.
    #[serde(default)]
    pub spark_version: Option<String>,
    /// Hard limit on one spark-submit run (default 5m).
    #[serde(default = "default_submit_timeout")]
    pub submit_timeout: HumanDuration,
    /// Timeout of one request to the API server (default 10s).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
}

/// `[job.driver]` / `[job.executor]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// `spark.{driver,executor}.cores`.
    #[serde(default)]
    pub cores: Option<u32>,
    /// `spark.{driver,executor}.memory` (`2g`).
    #[serde(default)]
    pub memory: Option<String>,
    /// `spark.executor.instances` (executors only).
    #[serde(default)]
    pub instances: Option<u32>,
}

fn default_namespace() -> String {
    "default".into()
}
fn default_submit_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(300))
}
fn default_request_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}

/// A `[job]` table serde accepted but tether cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidJob {
    /// A required text field is empty.
    #[error("must not be empty")]
    Empty(&'static str),
    /// A jar without `main_class`.
    #[error("{0} is a jar: name its main class, e.g. main_class = \"com.example.Etl\"")]
    NoMainClass(String),
    /// Not a DNS-1123 label.
    #[error(
        "{0:?} is not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63)"
    )]
    Namespace(String),
    /// `instances` on the driver.
    #[error("the driver is one pod: remove instances")]
    DriverInstances,
    /// A timeout outside its range.
    #[error("{value} is out of range: write a duration between 100ms and 1h")]
    Timeout {
        /// The spec field.
        field: &'static str,
        /// The duration as given.
        value: String,
    },
    /// A bad or reserved `[job.conf]` key.
    #[error(transparent)]
    Conf(#[from] ConfError),
}

impl InvalidJob {
    /// The spec field at fault.
    pub fn field(&self) -> &str {
        match self {
            InvalidJob::Empty(f) => f,
            InvalidJob::NoMainClass(_) => "job.main_class",
            InvalidJob::Namespace(_) => "job.namespace",
            InvalidJob::DriverInstances => "job.driver.instances",
            InvalidJob::Timeout { field, .. } => field,
            InvalidJob::Conf(e) => e.field(),
        }
    }
}

fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl CheckedJob for K8sJob {
    type Invalid = InvalidJob;
    fn check(&self) -> Result<(), InvalidJob> {
        self.validate()
    }
    fn field_of(e: &InvalidJob) -> &str {
        e.field()
    }
}

impl K8sJob {
    /// Checks what serde cannot (the first problem, naming its field).
    pub fn validate(&self) -> Result<(), InvalidJob> {
        let resource = self.app_resource.trim();
        if resource.is_empty() {
            return Err(InvalidJob::Empty("job.app_resource"));
        }
        if self.image.trim().is_empty() {
            return Err(InvalidJob::Empty("job.image"));
        }
        if let Some(jar) = jar_without_main_class(resource, self.main_class.as_deref()) {
            return Err(InvalidJob::NoMainClass(jar));
        }
        if !is_dns1123_label(&self.namespace) {
            return Err(InvalidJob::Namespace(self.namespace.clone()));
        }
        if self.driver.instances.is_some() {
            return Err(InvalidJob::DriverInstances);
        }
        if let Some((field, value)) = timeout_out_of_range(
            &TIMEOUT_RANGE,
            &[
                ("job.request_timeout", &self.request_timeout),
                ("job.submit_timeout", &self.submit_timeout),
            ],
        ) {
            return Err(InvalidJob::Timeout { field, value });
        }
        self.submission_conf(&Tag::from_stored("t"), None)?;
        Ok(())
    }

    /// The conf of one submission tagged `tag`: the user's, the recovery overrides (if
    /// `recovery`), then the spec's fields and tether's keys (see the module's guarantees).
    pub fn submission_conf(
        &self,
        tag: &Tag,
        recovery: Option<&RecoveryPlan>,
    ) -> Result<SparkConf, ConfError> {
        let mut conf = SparkConf::from_spec("job.conf", &self.conf)?;
        if let Some(plan) = recovery {
            for (k, v) in &plan.overrides {
                conf.set(k.clone(), v.clone());
            }
        }
        let shape = if recovery.is_some() {
            "recovery"
        } else {
            "normal"
        };
        let mut ours: Vec<(&str, String)> = tag_conf(TagPlaces::Kubernetes, tag);
        ours.push((SHAPE_CONF, shape.to_string()));
        ours.push(("spark.kubernetes.namespace", self.namespace.clone()));
        ours.push(("spark.kubernetes.container.image", self.image.clone()));
        let path = |p: &PathBuf| p.display().to_string();
        let optional = [
            (
                "spark.kubernetes.authenticate.driver.serviceAccountName",
                self.service_account.clone(),
            ),
            ("spark.kubernetes.context", self.context.clone()),
            (
                "spark.kubernetes.driver.podTemplateFile",
                self.driver_pod_template.as_ref().map(path),
            ),
            (
                "spark.kubernetes.executor.podTemplateFile",
                self.executor_pod_template.as_ref().map(path),
            ),
            (
                "spark.driver.cores",
                self.driver.cores.map(|c| c.to_string()),
            ),
            ("spark.driver.memory", self.driver.memory.clone()),
            ("spark.executor.memory", self.executor.memory.clone()),
            (
                "spark.executor.instances",
                self.executor.instances.map(|c| c.to_string()),
            ),
        ];
        ours.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
        // Executor cores: the spec's, unless the recovery shape changed them.
        if let Some(c) = self.executor.cores {
            if recovery.is_none_or(|p| !p.overrides.contains_key("spark.executor.cores")) {
                ours.push(("spark.executor.cores", c.to_string()));
            }
        }
        conf.merge("job.conf", ours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spark::recovery::SparkRecovery;
    use tether_core::spec::parse_spec;

    const BASE: &str = "[job]\nkind='spark-k8s'\napp_resource='local:///opt/app/etl.jar'\nmain_class='a.B'\nimage='spark:4.3'\n";

    fn parse(text: &str) -> K8sJob {
        parse_spec::<K8sJob, SparkRecovery>("s.toml", text)
            .unwrap()
            .job
    }

    #[test]
    fn the_spec_becomes_spark_conf_with_the_tag_in_labels_and_pod_name() {
        let job = parse(&format!(
            "{BASE}namespace='etl'\nservice_account='spark'\n[job.driver]\nmemory='2g'\n[job.executor]\ncores=4\ninstances=3\n"
        ));
        job.validate().unwrap();
        let tag = Tag::from_stored("tether-k-x-g2");
        let c = job.submission_conf(&tag, None).unwrap();
        assert_eq!(c.get("spark.kubernetes.namespace"), Some("etl"));
        assert_eq!(c.get("spark.kubernetes.container.image"), Some("spark:4.3"));
        assert_eq!(
            c.get("spark.kubernetes.authenticate.driver.serviceAccountName"),
            Some("spark")
        );
        assert_eq!(
            c.get("spark.kubernetes.driver.pod.name"),
            Some("tether-k-x-g2-driver")
        );
        assert_eq!(
            c.get("spark.kubernetes.driver.label.tether-tag"),
            Some("tether-k-x-g2")
        );
        assert_eq!(
            c.get("spark.kubernetes.executor.label.tether-tag"),
            Some("tether-k-x-g2")
        );
        assert_eq!(c.get("spark.driver.memory"), Some("2g"));
        assert_eq!(c.get("spark.executor.cores"), Some("4"));
        assert_eq!(c.get("spark.executor.instances"), Some("3"));
        assert_eq!(c.get("spark.tether.shape"), Some("normal"));
    }

    #[test]
    fn spec_errors_name_their_field() {
        let e = parse_spec::<K8sJob, SparkRecovery>("s.toml", &format!("{BASE}colour=1\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour") && e.contains("s.toml:6:1"), "{e}");
        let e = parse_spec::<K8sJob, SparkRecovery>(
            "s.toml",
            "[job]\nkind='spark-k8s'\napp_resource='x.py'\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("image"), "{e}");
        let job = parse(&format!("{BASE}namespace='Bad_NS'\n"));
        assert_eq!(job.validate().unwrap_err().field(), "job.namespace");
        let job = parse(&format!(
            "{BASE}[job.conf]\n'spark.kubernetes.driver.pod.name'='x'\n"
        ));
        let e = job.validate().unwrap_err();
        assert!(
            e.to_string().contains("spark.kubernetes.driver.pod.name"),
            "{e}"
        );
        let job = parse(&format!(
            "{BASE}[job.conf]\n'spark.kubernetes.namespace'='x'\n"
        ));
        assert_eq!(job.validate().unwrap_err().field(), "job.conf");
        let job = parse(&format!("{BASE}[job.driver]\ninstances=2\n"));
        assert_eq!(job.validate().unwrap_err().field(), "job.driver.instances");
    }
}
