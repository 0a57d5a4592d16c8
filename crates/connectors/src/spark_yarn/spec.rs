//! The `[job]` table of a `kind = "spark-yarn"` spec, its checks, and the Spark conf of one
//! submission (normal or recovery shape).
//!
//! ## Guarantees
//! - Unknown fields are errors (`deny_unknown_fields`), reported with file, line and column.
//! - Every submission carries its tag in `spark.tether.tag` and (lower-cased, after the user's
//!   own tags) in `spark.yarn.tags`; a user conf setting `spark.tether.tag` or
//!   `spark.tether.shape` is an error naming the key.
//! - `spark.yarn.maxAppAttempts` is `max_app_attempts` (default 1: tether owns retries) and
//!   `spark.yarn.jars` defaults to `local:<spark_home>/jars/*` (no upload per submit).
use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};
use tether_core::{ids::Tag, units::HumanDuration};

use crate::spark::{
    conf::{ConfError, ConfValue, SparkConf},
    recovery::RecoveryPlan,
    spec::{jar_without_main_class, timeout_out_of_range, CheckedJob, TIMEOUT_RANGE},
    tag::{tag_conf, yarn_tags, TagPlaces, SHAPE_CONF, YARN_TAGS},
};

/// `[job]` for `kind = "spark-yarn"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YarnJob {
    /// Always `"spark-yarn"`.
    pub kind: String,
    /// The application: a jar (with `main_class`) or a `.py` file, as spark-submit reads it.
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
    /// The Hadoop configuration directory (`yarn-site.xml`, `core-site.xml`). Default: our
    /// `HADOOP_CONF_DIR`, else `YARN_CONF_DIR`.
    #[serde(default)]
    pub hadoop_conf_dir: Option<PathBuf>,
    /// The Spark distribution (default: our `SPARK_HOME`).
    #[serde(default)]
    pub spark_home: Option<PathBuf>,
    /// The YARN queue (`spark.yarn.queue`).
    #[serde(default)]
    pub queue: Option<String>,
    /// The ResourceManager's web/REST address. Default: `http://` +
    /// `yarn.resourcemanager.webapp.address` from `yarn-site.xml`.
    #[serde(default)]
    pub rm_url: Option<String>,
    /// `spark.yarn.maxAppAttempts` (default 1: tether owns retries).
    #[serde(default = "one")]
    pub max_app_attempts: u32,
    /// Hard limit on one spark-submit run (default 5m).
    #[serde(default = "default_submit_timeout")]
    pub submit_timeout: HumanDuration,
    /// Timeout of one request to the ResourceManager (default 10s).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
}

fn one() -> u32 {
    1
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
    /// No `app_resource`.
    #[error("must name the application, a jar (with main_class) or a .py file")]
    NoAppResource,
    /// A jar without `main_class`.
    #[error("{0} is a jar: name its main class, e.g. main_class = \"com.example.Etl\"")]
    NoMainClass(String),
    /// `max_app_attempts` is 0.
    #[error("must be at least 1 (1: tether alone retries, the recommended setting)")]
    MaxAppAttempts,
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
            InvalidJob::NoAppResource => "job.app_resource",
            InvalidJob::NoMainClass(_) => "job.main_class",
            InvalidJob::MaxAppAttempts => "job.max_app_attempts",
            InvalidJob::Timeout { field, .. } => field,
            InvalidJob::Conf(e) => e.field(),
        }
    }
}

impl CheckedJob for YarnJob {
    type Invalid = InvalidJob;
    fn check(&self) -> Result<(), InvalidJob> {
        self.validate()
    }
    fn field_of(e: &InvalidJob) -> &str {
        e.field()
    }
}

impl YarnJob {
    /// Checks what serde cannot (the first problem, naming its field).
    pub fn validate(&self) -> Result<(), InvalidJob> {
        let resource = self.app_resource.trim();
        if resource.is_empty() {
            return Err(InvalidJob::NoAppResource);
        }
        if let Some(jar) = jar_without_main_class(resource, self.main_class.as_deref()) {
            return Err(InvalidJob::NoMainClass(jar));
        }
        if self.max_app_attempts == 0 {
            return Err(InvalidJob::MaxAppAttempts);
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
        self.submission_conf(&Tag::from_stored("t"), None, None)?;
        Ok(())
    }

    /// The conf of one submission tagged `tag`: the user's, the recovery overrides (if
    /// `recovery`), then tether's keys (see the module's guarantees). `spark_home`: where
    /// `spark.yarn.jars` points by default.
    pub fn submission_conf(
        &self,
        tag: &Tag,
        recovery: Option<&RecoveryPlan>,
        spark_home: Option<&std::path::Path>,
    ) -> Result<SparkConf, ConfError> {
        let mut conf = SparkConf::from_spec("job.conf", &self.conf)?;
        let user_tags = conf.get(YARN_TAGS).map(str::to_string);
        if let Some(plan) = recovery {
            for (k, v) in &plan.overrides {
                conf.set(k.clone(), v.clone());
            }
        }
        conf.set(YARN_TAGS, yarn_tags(tag, user_tags.as_deref()));
        conf.set(
            "spark.yarn.maxAppAttempts",
            self.max_app_attempts.to_string(),
        );
        if let Some(queue) = &self.queue {
            conf.set("spark.yarn.queue", queue.clone());
        }
        if let Some(home) = spark_home {
            conf.set_default(
                "spark.yarn.jars",
                format!("local:{}/jars/*", home.display()),
            );
        }
        let shape = if recovery.is_some() {
            "recovery"
        } else {
            "normal"
        };
        let mut ours = tag_conf(TagPlaces::Yarn, tag);
        ours.push((SHAPE_CONF, shape.to_string()));
        conf.merge("job.conf", ours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spark::recovery::{recovery_plan, SparkRecovery};
    use tether_core::spec::parse_spec;

    const BASE: &str = "[job]\nkind='spark-yarn'\napp_resource='/jobs/etl.jar'\nmain_class='a.B'\n";

    fn parse(text: &str) -> YarnJob {
        parse_spec::<YarnJob, SparkRecovery>("s.toml", text)
            .unwrap()
            .job
    }

    #[test]
    fn tags_attempts_and_jars_are_set_and_recovery_applies() {
        let job = parse(&format!(
            "{BASE}queue='etl'\n[job.conf]\n'spark.yarn.tags'='team-a'\n'spark.executor.cores'=4\n"
        ));
        job.validate().unwrap();
        let tag = Tag::from_stored("tether-k-g2");
        let home = std::path::Path::new("/opt/spark");
        let plan = recovery_plan(&job.conf, &SparkRecovery::default());
        let c = job.submission_conf(&tag, Some(&plan), Some(home)).unwrap();
        assert_eq!(c.get("spark.yarn.tags"), Some("team-a,tether-k-g2"));
        assert_eq!(c.get("spark.tether.tag"), Some("tether-k-g2"));
        assert_eq!(c.get("spark.tether.shape"), Some("recovery"));
        assert_eq!(c.get("spark.yarn.maxAppAttempts"), Some("1"));
        assert_eq!(c.get("spark.yarn.queue"), Some("etl"));
        assert_eq!(c.get("spark.yarn.jars"), Some("local:/opt/spark/jars/*"));
        assert_eq!(c.get("spark.executor.cores"), Some("1"));
    }

    #[test]
    fn spec_errors_name_their_field() {
        let e = parse_spec::<YarnJob, SparkRecovery>("s.toml", &format!("{BASE}colour=1\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour") && e.contains("s.toml:5:1"), "{e}");
        let job = parse("[job]\nkind='spark-yarn'\napp_resource='/jobs/etl.jar'\n");
        assert_eq!(job.validate().unwrap_err().field(), "job.main_class");
        let job = parse("[job]\nkind='spark-yarn'\napp_resource='/jobs/etl.py'\n");
        assert!(job.validate().is_ok());
        let job = parse(&format!("{BASE}[job.conf]\n'spark.tether.tag'='x'\n"));
        let e = job.validate().unwrap_err();
        assert_eq!(e.field(), "job.conf");
        assert!(e.to_string().contains("spark.tether.tag"), "{e}");
        let job = parse(&format!("{BASE}max_app_attempts=0\n"));
        assert_eq!(job.validate().unwrap_err().field(), "job.max_app_attempts");
    }
}
