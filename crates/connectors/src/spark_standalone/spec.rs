//! The `[job]` and `[recovery]` tables of a `kind = "spark-standalone"` spec, and how they turn
//! into the `sparkProperties` of one submission (normal or recovery shape).
//!
//! ## Guarantees
//! - Unknown fields are errors (`deny_unknown_fields`), reported with file, line and column.
//! - The submission's tag always ends up in `spark.tether.tag` and in `spark.app.name` (alone, or
//!   after the user's own `spark.app.name`), whatever the user's `conf` says: adoption and the
//!   identity check depend on it.
//! - The bearer token never appears here: the spec only names the environment variable.
//! - `master_rest` and `master_ui` are `http://` or `https://` URLs with a host and no userinfo
//!   (`user:pass@` is refused, not stripped: credentials never go in a spec's URLs); a token
//!   (`token_env`) goes over plain `http://` only with `allow_insecure_token = true`.
use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};
use tether_core::{ids::Tag, units::HumanDuration};

use super::http::{shown, web_url};
use crate::spark::{
    conf::SparkConf,
    tag::{tag_conf, TagPlaces},
};
pub use crate::spark::{
    conf::{ConfError, ConfValue},
    recovery::{recovery_plan, RecoveryPlan, SparkRecovery},
    tag::{SHAPE_CONF as SHAPE_PROPERTY, TAG_CONF as TAG_PROPERTY},
};

/// `[job]` for `kind = "spark-standalone"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparkJob {
    /// Always `"spark-standalone"`.
    pub kind: String,
    /// The master's REST submission server, e.g. `http://spark-master:6066` (or `https://`).
    pub master_rest: String,
    /// The master's web UI (its `/json/` lists drivers and workers; needed for find-by-tag,
    /// logs and the identity check). Default: the REST scheme and host on port 8080.
    #[serde(default)]
    pub master_ui: Option<String>,
    /// The application jar as the workers can read it (`file:`, `hdfs:`, `http:` ...).
    pub app_resource: String,
    /// The driver's main class.
    pub main_class: String,
    /// Arguments of the main class.
    #[serde(default)]
    pub args: Vec<String>,
    /// `sparkProperties` of the submission.
    #[serde(default)]
    pub conf: BTreeMap<String, ConfValue>,
    /// Environment variables of the driver.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Name of an environment variable holding a bearer token for masters running Spark's JWS
    /// REST filter. The token itself never belongs in a spec.
    #[serde(default)]
    pub token_env: Option<String>,
    /// PEM file of CA certificates trusted for `https://` besides the system's roots (for a
    /// private CA). Read when the connector is built; a relative path is relative to the
    /// submitter's directory (`BuildContext::base_dir`).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Allows sending the `token_env` token over plain `http://`, where anyone on the network
    /// path can read it. Default false: a token needs `https://`.
    #[serde(default)]
    pub allow_insecure_token: bool,
    /// Timeout of one HTTP request to the master or a worker (default 10s).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
    /// `clientSparkVersion` sent with the submission (required by the server; default 4.3.0).
    #[serde(default = "default_client_version")]
    pub client_spark_version: String,
}

fn default_request_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
fn default_client_version() -> String {
    "4.3.0".into()
}

impl crate::spark::spec::CheckedJob for SparkJob {
    type Invalid = InvalidJob;
    fn check(&self) -> Result<(), InvalidJob> {
        self.validate()
    }
    fn field_of(e: &InvalidJob) -> &str {
        e.field()
    }
}

impl SparkJob {
    /// Checks what serde cannot: the first problem, which names its field
    /// ([`InvalidJob::field`]).
    pub fn validate(&self) -> Result<(), InvalidJob> {
        let rest = web_url(&self.master_rest).map_err(|problem| InvalidJob::MasterRest {
            shown: shown(&self.master_rest),
            problem,
        })?;
        if let Some(ui) = &self.master_ui {
            web_url(ui).map_err(|problem| InvalidJob::MasterUi {
                shown: shown(ui),
                problem,
            })?;
        }
        if self.token_env.is_some() && rest.scheme() == "http" && !self.allow_insecure_token {
            return Err(InvalidJob::InsecureToken);
        }
        let (min, max) = (
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(600),
        );
        if self.request_timeout.0 < min || self.request_timeout.0 > max {
            return Err(InvalidJob::RequestTimeout(self.request_timeout.to_string()));
        }
        if self.app_resource.trim().is_empty() {
            return Err(InvalidJob::NoAppResource);
        }
        // The jar's URL is printed in messages and stored with the spec: no password in it.
        if reqwest::Url::parse(&self.app_resource).is_ok_and(|u| u.password().is_some()) {
            return Err(InvalidJob::AppResourcePassword(shown(&self.app_resource)));
        }
        if self.main_class.trim().is_empty() {
            return Err(InvalidJob::NoMainClass);
        }
        // Keys Spark can take, and none of tether's own (the tag keys must be ours alone).
        let tether_keys = tag_conf(TagPlaces::ConfOnly, &Tag::from_stored(""))
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .chain([(SHAPE_PROPERTY.to_string(), String::new())]);
        SparkConf::from_spec("job.conf", &self.conf)?.merge("job.conf", tether_keys)?;
        Ok(())
    }

    /// The master UI address: `master_ui`, or the REST scheme and host with port 8080.
    pub fn master_ui(&self) -> String {
        if let Some(ui) = &self.master_ui {
            return ui.trim_end_matches('/').to_string();
        }
        match web_url(&self.master_rest) {
            Ok(mut url) => {
                // Cannot fail for http(s) URLs with a host (checked by `web_url`).
                let _ = url.set_port(Some(8080));
                url.set_path("");
                url.set_query(None);
                url.set_fragment(None);
                url.to_string().trim_end_matches('/').to_string()
            }
            Err(_) => self.master_rest.clone(),
        }
    }
}

/// A `[job]` table serde accepted but tether cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidJob {
    /// `master_rest` is not an http(s) URL with a host (and no userinfo).
    #[error(
        "{shown} {problem}: write the REST submission server's address, e.g. \"http://spark-master:6066\" \
         (not spark://...:7077)"
    )]
    MasterRest {
        /// The address as given, userinfo hidden.
        shown: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `master_ui` is not an http(s) URL with a host (and no userinfo).
    #[error("{shown} {problem}: write the master web UI, e.g. \"http://spark-master:8080\"")]
    MasterUi {
        /// The address as given, userinfo hidden.
        shown: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A token would cross plain http.
    #[error(
        "token_env is set but master_rest is plain http://, so the bearer token would cross the network \
         readable by anyone on the path: use an https:// address (with ca_file for a private CA), or set \
         allow_insecure_token = true if that path is trusted"
    )]
    InsecureToken,
    /// `request_timeout` outside 100ms..=10m.
    #[error("{0} is out of range: write a duration between 100ms and 10m")]
    RequestTimeout(String),
    /// No `app_resource`.
    #[error("must name the application jar, e.g. \"file:/jobs/etl.jar\"")]
    NoAppResource,
    /// `app_resource` carries a password (shown hidden).
    #[error(
        "{0} carries a password (user:pass@): credentials never go in a spec; let the workers \
         authenticate another way (e.g. a Hadoop/HTTP credential on the worker)"
    )]
    AppResourcePassword(String),
    /// No `main_class`.
    #[error("must name the driver's main class, e.g. \"com.example.Etl\"")]
    NoMainClass,
    /// A bad or reserved `[job.conf]` key.
    #[error(transparent)]
    Conf(#[from] ConfError),
}

impl InvalidJob {
    /// The spec field at fault, e.g. `job.master_rest`.
    pub fn field(&self) -> &str {
        match self {
            InvalidJob::MasterRest { .. } => "job.master_rest",
            InvalidJob::MasterUi { .. } => "job.master_ui",
            InvalidJob::InsecureToken => "job.allow_insecure_token",
            InvalidJob::RequestTimeout(_) => "job.request_timeout",
            InvalidJob::NoAppResource | InvalidJob::AppResourcePassword(_) => "job.app_resource",
            InvalidJob::NoMainClass => "job.main_class",
            InvalidJob::Conf(e) => e.field(),
        }
    }
}

/// The `sparkProperties` of one submission.
///
/// Besides the user's conf: the tag (see module docs), cluster deploy mode, and the app jar in
/// `spark.jars` (as `spark-submit` does) so executors can load the job's classes.
pub fn spark_properties(
    job: &SparkJob,
    tag: &Tag,
    recovery: Option<&RecoveryPlan>,
) -> BTreeMap<String, String> {
    let mut p: BTreeMap<String, String> = job
        .conf
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    if let Some(plan) = recovery {
        p.extend(plan.overrides.clone());
    }
    let name = match p.get("spark.app.name") {
        Some(user) if !user.trim().is_empty() => format!("{user} {tag}"),
        _ => tag.to_string(),
    };
    p.insert("spark.app.name".into(), name);
    for (k, v) in tag_conf(TagPlaces::ConfOnly, tag) {
        p.insert(k.into(), v);
    }
    p.insert(
        SHAPE_PROPERTY.into(),
        if recovery.is_some() {
            "recovery"
        } else {
            "normal"
        }
        .into(),
    );
    p.entry("spark.submit.deployMode".into())
        .or_insert_with(|| "cluster".into());
    // tether owns retries: a supervised driver would be relaunched behind its back.
    p.entry("spark.driver.supervise".into())
        .or_insert_with(|| "false".into());
    let jars = p.get("spark.jars").cloned().unwrap_or_default();
    if !jars.split(',').any(|j| j.trim() == job.app_resource) {
        let joined = if jars.trim().is_empty() {
            job.app_resource.clone()
        } else {
            format!("{},{jars}", job.app_resource)
        };
        p.insert("spark.jars".into(), joined);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_core::spec::parse_spec;

    fn parse(text: &str) -> (SparkJob, Option<SparkRecovery>) {
        let s = parse_spec::<SparkJob, SparkRecovery>("s.toml", text).unwrap();
        (s.job, s.recovery)
    }

    const BASE: &str =
        "[job]\nkind='spark-standalone'\nmaster_rest='http://m:6066'\napp_resource='file:/j.jar'\n\
                        main_class='a.B'\n";

    #[test]
    fn recovery_shape_defaults_to_task_cpus_and_keeps_memory() {
        let (job, _) = parse(&format!(
            "{BASE}[job.conf]\n'spark.executor.cores'=4\n'spark.executor.memory'='512m'\n"
        ));
        let plan = recovery_plan(
            &job.conf,
            &SparkRecovery {
                enabled: true,
                conf: BTreeMap::new(),
            },
        );
        assert_eq!(plan.overrides.get("spark.executor.cores").unwrap(), "1");
        assert!(!plan.overrides.contains_key("spark.executor.memory"));
        assert_eq!(
            plan.description,
            "spark.executor.cores 4 -> 1 (= spark.task.cpus 1), spark.executor.memory 512m kept"
        );
        let tag = Tag::from_stored("tether-x-g2");
        let p = spark_properties(&job, &tag, Some(&plan));
        assert_eq!(p["spark.executor.cores"], "1");
        assert_eq!(p["spark.executor.memory"], "512m");
        assert_eq!(p[SHAPE_PROPERTY], "recovery");
    }

    #[test]
    fn recovery_shape_follows_fractional_task_cpus_and_overrides() {
        let (job, rec) = parse(&format!(
            "{BASE}[job.conf]\n'spark.task.cpus'='1.5'\n[recovery.conf]\n'spark.cores.max'=2\n'spark.executor.memory'='1g'\n"
        ));
        let rec = rec.unwrap();
        assert!(rec.enabled);
        let plan = recovery_plan(&job.conf, &rec);
        assert_eq!(plan.overrides["spark.executor.cores"], "2");
        assert_eq!(plan.overrides["spark.cores.max"], "2");
        assert!(
            plan.description
                .contains("spark.executor.memory unset -> 1g"),
            "{}",
            plan.description
        );
        let (_, rec) = parse(&format!("{BASE}[recovery]\nenabled=false\n"));
        assert!(!rec.unwrap().enabled);
    }

    #[test]
    fn tag_app_name_and_jars_are_always_set() {
        let (job, _) = parse(&format!(
            "{BASE}[job.conf]\n'spark.app.name'='etl'\n'spark.jars'='file:/dep.jar'\n"
        ));
        let p = spark_properties(&job, &Tag::from_stored("tether-k-g1"), None);
        assert_eq!(p["spark.app.name"], "etl tether-k-g1");
        assert_eq!(p[TAG_PROPERTY], "tether-k-g1");
        assert_eq!(p["spark.jars"], "file:/j.jar,file:/dep.jar");
        assert_eq!(p["spark.submit.deployMode"], "cluster");
        let (job, _) = parse(BASE);
        let p = spark_properties(&job, &Tag::from_stored("t"), None);
        assert_eq!(p["spark.app.name"], "t");
        assert_eq!(p["spark.jars"], "file:/j.jar");
    }

    #[test]
    fn validation_and_ui_address() {
        let (mut job, _) = parse(BASE);
        assert_eq!(job.master_ui(), "http://m:8080");
        assert!(job.validate().is_ok());
        job.master_rest = "spark://m:7077".into();
        assert!(job
            .validate()
            .unwrap_err()
            .to_string()
            .contains("REST submission server"));
        job.master_rest = "https://m:6066".into();
        assert!(job.validate().is_ok());
        assert_eq!(job.master_ui(), "https://m:8080");
        job.master_rest = "http://[::1]:6066/".into();
        assert_eq!(job.master_ui(), "http://[::1]:8080");
        let e = parse_spec::<SparkJob, SparkRecovery>("s.toml", &format!("{BASE}colour='red'\n"))
            .unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }

    #[test]
    fn request_timeout_is_range_checked() {
        for bad in ["0s", "50ms", "1h"] {
            let (job, _) = parse(&format!("{BASE}request_timeout='{bad}'\n"));
            let e = job.validate().unwrap_err();
            let (field, message) = (e.field().to_string(), e.to_string());
            assert_eq!(field, "job.request_timeout");
            assert!(message.contains("out of range"), "{message}");
        }
        let (job, _) = parse(&format!("{BASE}request_timeout='30s'\n"));
        assert!(job.validate().is_ok());
    }

    #[test]
    fn userinfo_in_urls_is_refused_without_echoing_it() {
        let (mut job, _) = parse(BASE);
        job.master_rest = "http://admin:hunter2@m:6066".into();
        let e = job.validate().unwrap_err();
        let (field, msg) = (e.field().to_string(), e.to_string());
        assert_eq!(field, "job.master_rest");
        assert!(
            msg.contains("user name or password") && !msg.contains("hunter2"),
            "{msg}"
        );
        assert!(msg.contains("***@m:6066"), "{msg}");
        job.master_rest = "http://m:6066".into();
        job.master_ui = Some("https://u:pw@m:8080/".into());
        let e = job.validate().unwrap_err();
        let (field, msg) = (e.field().to_string(), e.to_string());
        assert_eq!(field, "job.master_ui");
        assert!(!msg.contains("pw@"), "{msg}");
        job.master_ui = None;
        job.app_resource = "https://ci:t0ps3cret@artifacts.example/etl.jar".into();
        let e = job.validate().unwrap_err();
        let (field, msg) = (e.field().to_string(), e.to_string());
        assert_eq!(field, "job.app_resource");
        assert!(
            !msg.contains("t0ps3cret") && msg.contains("***@artifacts"),
            "{msg}"
        );
        job.app_resource = "hdfs://etl@namenode:8020/jars/etl.jar".into();
        assert!(job.validate().is_ok());
    }

    #[test]
    fn a_token_needs_https_or_an_explicit_opt_in() {
        let (mut job, _) = parse(BASE);
        job.token_env = Some("TETHER_TOKEN_SPARK".into());
        let e = job.validate().unwrap_err();
        let (field, msg) = (e.field().to_string(), e.to_string());
        assert_eq!(field, "job.allow_insecure_token");
        assert!(msg.contains("https://"), "{msg}");
        job.allow_insecure_token = true;
        assert!(job.validate().is_ok());
        job.allow_insecure_token = false;
        job.master_rest = "https://m:6066".into();
        assert!(job.validate().is_ok());
    }
}
