//! The `[job]` table of a `kind = "livy"` spec, and the JSON body of `POST /batches` it makes
//! for one submission (normal or recovery shape).
//!
//! ## Guarantees
//! - Unknown fields are errors (`deny_unknown_fields`), reported with file, line and column.
//! - The body's `name` is the submission's tag, and `conf` carries it in `spark.tether.tag` and
//!   `spark.yarn.tags` (after the user's own tags) whatever the user's `conf` says: the duplicate
//!   name rule, find-by-tag and the identity check depend on it.
//! - Credentials never appear here: the spec names environment variables only, and a password
//!   or token goes over plain `http://` only with `allow_insecure_credentials = true`.
use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tether_core::{ids::Tag, units::HumanDuration};

use crate::http::{shown, web_url};
use crate::spark::{
    conf::{ConfError, ConfValue, SparkConf},
    recovery::{recovery_plan, RecoveryPlan, SparkRecovery},
    tag::{tag_conf, yarn_tags, TagPlaces, SHAPE_CONF, YARN_TAGS},
};

/// `[job]` for `kind = "livy"`. Field names follow Livy's `POST /batches` body, in snake case.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivyJob {
    /// Always `"livy"`.
    pub kind: String,
    /// Livy's address, e.g. `http://livy:8998` (or `https://`).
    pub url: String,
    /// The application (jar or `.py`) as Livy's host can read it (`local:`, `hdfs:`, a path in
    /// `livy.file.local-dir-whitelist`).
    #[serde(alias = "jar")]
    pub file: String,
    /// The main class (jobs in a jar).
    #[serde(default)]
    pub class_name: Option<String>,
    /// Arguments of the application.
    #[serde(default)]
    pub args: Vec<String>,
    /// Spark properties.
    #[serde(default)]
    pub conf: BTreeMap<String, ConfValue>,
    /// `driverMemory`, e.g. `"1g"`.
    #[serde(default)]
    pub driver_memory: Option<String>,
    /// `driverCores`.
    #[serde(default)]
    pub driver_cores: Option<u32>,
    /// `executorMemory`, e.g. `"2g"`.
    #[serde(default)]
    pub executor_memory: Option<String>,
    /// `executorCores`.
    #[serde(default)]
    pub executor_cores: Option<u32>,
    /// `numExecutors`.
    #[serde(default)]
    pub num_executors: Option<u32>,
    /// The YARN queue.
    #[serde(default)]
    pub queue: Option<String>,
    /// `proxyUser` (Livy must be allowed to impersonate).
    #[serde(default)]
    pub proxy_user: Option<String>,
    /// Extra jars.
    #[serde(default)]
    pub jars: Vec<String>,
    /// Extra Python files.
    #[serde(default)]
    pub py_files: Vec<String>,
    /// Extra files.
    #[serde(default)]
    pub files: Vec<String>,
    /// Bearer auth: the variable holding the token (`TETHER_TOKEN_*` or allowed by the worker).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Basic auth: the user name (with `password_env`).
    #[serde(default)]
    pub user: Option<String>,
    /// Basic auth: the variable holding the password (same rule as `token_env`).
    #[serde(default)]
    pub password_env: Option<String>,
    /// PEM file of extra trusted CAs for `https://` (relative: to the submitter's directory).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Allows credentials over plain `http://`. Default false.
    #[serde(default)]
    pub allow_insecure_credentials: bool,
    /// Timeout of one HTTP request to Livy (default 10s).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
    /// The YARN ResourceManager's web address (e.g. `http://rm:8088`) Livy submits to: where
    /// tether looks for the batch's application when Livy no longer knows the batch. Default:
    /// from `hadoop_conf_dir`'s (or `HADOOP_CONF_DIR`'s) `yarn-site.xml`.
    #[serde(default)]
    pub rm_url: Option<String>,
    /// Directory of the cluster's `yarn-site.xml` (relative: to the submitter's directory).
    #[serde(default)]
    pub hadoop_conf_dir: Option<PathBuf>,
}

fn default_request_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}

/// A `[job]` table serde accepted but tether cannot use; [`InvalidJob::field`] names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidJob {
    /// `url` is not an http(s) URL with a host (and no userinfo).
    #[error("{shown} {problem}: write Livy's address, e.g. \"http://livy:8998\"")]
    Url {
        /// The address as given, userinfo hidden.
        shown: String,
        /// What is wrong with it.
        problem: String,
    },
    /// No `file`.
    #[error("must name the application, e.g. \"local:/jobs/etl.jar\" or \"hdfs:///jobs/etl.py\"")]
    NoFile,
    /// Both bearer and basic credentials, or half of basic.
    #[error("{0}")]
    Auth(&'static str),
    /// Credentials would cross plain http.
    #[error(
        "credentials are set but url is plain http://, so they would cross the network readable by anyone \
         on the path: use https:// (with ca_file for a private CA), or set allow_insecure_credentials = true \
         if that path is trusted"
    )]
    InsecureCredentials,
    /// `request_timeout` outside 100ms..=10m.
    #[error("{0} is out of range: write a duration between 100ms and 10m")]
    RequestTimeout(String),
    /// A bad or reserved `[job.conf]` key.
    #[error(transparent)]
    Conf(#[from] ConfError),
    /// `rm_url` is not an http(s) URL with a host (and no userinfo).
    #[error("{shown} {problem}: write the ResourceManager's web address, e.g. \"http://rm:8088\"")]
    RmUrl {
        /// The address as given, userinfo hidden.
        shown: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl InvalidJob {
    /// The spec field at fault, e.g. `job.url`.
    pub fn field(&self) -> &str {
        match self {
            InvalidJob::Url { .. } => "job.url",
            InvalidJob::NoFile => "job.file",
            InvalidJob::Auth(_) => "job.password_env",
            InvalidJob::InsecureCredentials => "job.allow_insecure_credentials",
            InvalidJob::RequestTimeout(_) => "job.request_timeout",
            InvalidJob::Conf(e) => e.field(),
            InvalidJob::RmUrl { .. } => "job.rm_url",
        }
    }
}

impl LivyJob {
    /// Checks what serde cannot: the first problem.
    pub fn validate(&self) -> Result<(), InvalidJob> {
        let url = web_url(&self.url).map_err(|problem| InvalidJob::Url {
            shown: shown(&self.url),
            problem,
        })?;
        if let Some(rm) = &self.rm_url {
            web_url(rm).map_err(|problem| InvalidJob::RmUrl {
                shown: shown(rm),
                problem,
            })?;
        }
        if self.file.trim().is_empty() {
            return Err(InvalidJob::NoFile);
        }
        let basic = self.user.is_some() || self.password_env.is_some();
        if basic && self.token_env.is_some() {
            return Err(InvalidJob::Auth(
                "give either token_env (bearer) or user and password_env (basic), not both",
            ));
        }
        if self.user.is_some() != self.password_env.is_some() {
            return Err(InvalidJob::Auth(
                "basic auth needs both user and password_env (the variable holding the password)",
            ));
        }
        if (basic || self.token_env.is_some())
            && url.scheme() == "http"
            && !self.allow_insecure_credentials
        {
            return Err(InvalidJob::InsecureCredentials);
        }
        let (min, max) = (
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(600),
        );
        if self.request_timeout.0 < min || self.request_timeout.0 > max {
            return Err(InvalidJob::RequestTimeout(self.request_timeout.to_string()));
        }
        let reserved = tag_conf(TagPlaces::ConfOnly, &Tag::from_stored(""))
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .chain([(SHAPE_CONF.to_string(), String::new())]);
        SparkConf::from_spec("job.conf", &self.conf)?.merge("job.conf", reserved)?;
        Ok(())
    }

    /// The conf as Spark will see it: `[job.conf]` plus the executor fields under their Spark
    /// keys (spark-submit's `--executor-cores` wins over `--conf`), for the recovery plan.
    fn effective_conf(&self) -> BTreeMap<String, ConfValue> {
        let mut c = self.conf.clone();
        if let Some(n) = self.executor_cores {
            c.insert("spark.executor.cores".into(), ConfValue::Int(n.into()));
        }
        if let Some(m) = &self.executor_memory {
            c.insert("spark.executor.memory".into(), ConfValue::Text(m.clone()));
        }
        c
    }

    /// The recovery plan of this job.
    pub fn recovery_plan(&self, recovery: &SparkRecovery) -> RecoveryPlan {
        recovery_plan(&self.effective_conf(), recovery)
    }

    /// The body of `POST /batches` for the submission tagged `tag`.
    pub fn batch_body(&self, tag: &Tag, recovery: Option<&RecoveryPlan>) -> Value {
        let mut conf: BTreeMap<String, String> = self
            .conf
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        let mut executor_cores = self.executor_cores.map(|n| n.to_string());
        let mut executor_memory = self.executor_memory.clone();
        let mut driver_memory = self.driver_memory.clone();
        let mut driver_cores = self.driver_cores.map(|n| n.to_string());
        if let Some(plan) = recovery {
            for (k, v) in &plan.overrides {
                // The body's fields become spark-submit flags, which win over --conf.
                match k.as_str() {
                    "spark.executor.cores" if executor_cores.is_some() => {
                        executor_cores = Some(v.clone())
                    }
                    "spark.executor.memory" if executor_memory.is_some() => {
                        executor_memory = Some(v.clone())
                    }
                    // A driver OOM's `[recovery.conf]` (e.g. a bigger spark.driver.memory)
                    // would otherwise lose to the normal shape's `--driver-memory`.
                    "spark.driver.memory" if driver_memory.is_some() => {
                        driver_memory = Some(v.clone())
                    }
                    "spark.driver.cores" if driver_cores.is_some() => {
                        driver_cores = Some(v.clone())
                    }
                    _ => {}
                }
                conf.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in tag_conf(TagPlaces::ConfOnly, tag) {
            conf.insert(k.into(), v);
        }
        let user_tags = conf.get(YARN_TAGS).cloned();
        conf.insert(YARN_TAGS.into(), yarn_tags(tag, user_tags.as_deref()));
        let shape = if recovery.is_some() {
            "recovery"
        } else {
            "normal"
        };
        conf.insert(SHAPE_CONF.into(), shape.into());
        let mut body = Map::new();
        body.insert("name".into(), json!(tag.as_str()));
        body.insert("file".into(), json!(self.file));
        body.insert("args".into(), json!(self.args));
        body.insert("conf".into(), json!(conf));
        let mut opt = |key: &str, v: Option<Value>| {
            if let Some(v) = v {
                body.insert(key.into(), v);
            }
        };
        opt("className", self.class_name.as_ref().map(|v| json!(v)));
        opt("driverMemory", driver_memory.map(|v| json!(v)));
        opt(
            "driverCores",
            driver_cores
                .and_then(|v| v.parse::<u32>().ok())
                .map(|v| json!(v)),
        );
        opt("executorMemory", executor_memory.map(|v| json!(v)));
        opt(
            "executorCores",
            executor_cores
                .and_then(|v| v.parse::<u32>().ok())
                .map(|v| json!(v)),
        );
        opt("numExecutors", self.num_executors.map(|v| json!(v)));
        opt("queue", self.queue.as_ref().map(|v| json!(v)));
        opt("proxyUser", self.proxy_user.as_ref().map(|v| json!(v)));
        for (key, list) in [
            ("jars", &self.jars),
            ("pyFiles", &self.py_files),
            ("files", &self.files),
        ] {
            if !list.is_empty() {
                body.insert(key.into(), json!(list));
            }
        }
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_core::spec::parse_spec;

    const BASE: &str = "[job]\nkind='livy'\nurl='http://livy:8998'\nfile='local:/j.jar'\n";

    fn parse(text: &str) -> LivyJob {
        parse_spec::<LivyJob, SparkRecovery>("l.toml", text)
            .unwrap()
            .job
    }

    #[test]
    fn body_carries_the_tag_as_name_and_in_conf() {
        let job = parse(&format!(
            "{BASE}class_name='a.B'\nargs=['1']\nexecutor_cores=4\nexecutor_memory='1g'\nqueue='q'\n\
             [job.conf]\n'spark.yarn.tags'='mine'\n"
        ));
        job.validate().unwrap();
        let tag = Tag::from_stored("tether-k-g1");
        let b = job.batch_body(&tag, None);
        assert_eq!(b["name"], "tether-k-g1");
        assert_eq!(b["className"], "a.B");
        assert_eq!(b["executorCores"], 4);
        assert_eq!(b["queue"], "q");
        assert_eq!(b["conf"]["spark.tether.tag"], "tether-k-g1");
        assert_eq!(b["conf"]["spark.yarn.tags"], "mine,tether-k-g1");
        assert_eq!(b["conf"]["spark.tether.shape"], "normal");
        assert!(
            b.get("jars").is_none() && b.get("proxyUser").is_none(),
            "{b}"
        );
    }

    #[test]
    fn recovery_shape_overrides_the_executor_cores_field_and_keeps_memory() {
        let job = parse(&format!(
            "{BASE}executor_cores=4\nexecutor_memory='1g'\n[job.conf]\n'spark.task.cpus'=2\n"
        ));
        let plan = job.recovery_plan(&SparkRecovery::default());
        assert!(
            plan.description.contains("spark.executor.cores 4 -> 2")
                && plan.description.contains("spark.executor.memory 1g kept"),
            "{}",
            plan.description
        );
        let b = job.batch_body(&Tag::from_stored("t-g2"), Some(&plan));
        assert_eq!(b["executorCores"], 2);
        assert_eq!(b["executorMemory"], "1g");
        assert_eq!(b["conf"]["spark.executor.cores"], "2");
        assert_eq!(b["conf"]["spark.tether.shape"], "recovery");
    }

    #[test]
    fn recovery_conf_driver_memory_replaces_the_driver_memory_field() {
        let job = parse(&format!("{BASE}driver_memory='512m'\ndriver_cores=1\n"));
        let plan = job.recovery_plan(&SparkRecovery {
            enabled: true,
            conf: [
                (
                    "spark.driver.memory".to_string(),
                    ConfValue::Text("2g".into()),
                ),
                (
                    "spark.driver.cores".to_string(),
                    ConfValue::Text("2".into()),
                ),
            ]
            .into(),
        });
        let b = job.batch_body(&Tag::from_stored("t-g2"), Some(&plan));
        assert_eq!(b["driverMemory"], "2g", "{b}");
        assert_eq!(b["driverCores"], 2, "{b}");
        assert_eq!(b["conf"]["spark.driver.memory"], "2g");
        let normal = job.batch_body(&Tag::from_stored("t-g1"), None);
        assert_eq!(normal["driverMemory"], "512m");
        assert_eq!(normal["driverCores"], 1);
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            ("url='spark://m:7077'\n", "job.url"),
            (
                "token_env='TETHER_TOKEN_L'\n",
                "job.allow_insecure_credentials",
            ),
            ("user='u'\n", "job.password_env"),
            ("request_timeout='1h'\n", "job.request_timeout"),
        ];
        for (extra, field) in cases {
            let text = if let Some(url) = extra.strip_prefix("url=") {
                BASE.replace("'http://livy:8998'\n", url)
            } else {
                format!("{BASE}{extra}")
            };
            let e = parse(&text).validate().unwrap_err();
            assert_eq!(e.field(), field, "{extra}: {e}");
        }
        let e = parse(&format!("{BASE}[job.conf]\n'spark.tether.tag'='x'\n"))
            .validate()
            .unwrap_err();
        assert_eq!(e.field(), "job.conf");
        let e = parse_spec::<LivyJob, SparkRecovery>("l.toml", &format!("{BASE}colour=1\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour") && e.contains("l.toml"), "{e}");
        let job = parse(&format!(
            "{BASE}user='u'\npassword_env='TETHER_TOKEN_P'\nallow_insecure_credentials=true\n"
        ));
        job.validate().unwrap();
    }
}
