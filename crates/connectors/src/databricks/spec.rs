//! The `[job]` and `[recovery]` tables of a `kind = "databricks"` spec, and the request body of
//! one submission (normal or recovery shape).
//!
//! ## Guarantees
//! - Unknown fields are errors (`deny_unknown_fields`), with file, line and column.
//! - `host` is an `https://` URL with a host and no userinfo: credentials always cross TLS.
//! - No credential is in a spec: it names environment variables (`token_env`, or
//!   `[job.oauth]` `client_id_env` / `client_secret_env`), read when the connector is built.
//! - Exactly one of a one-time run (`tasks`, through `runs/submit`) or `job_id` (`run-now`).
//! - The submission's tag is the request's `idempotency_token` and, for a one-time run, ends
//!   `run_name` (`<run_name> [<tag>]`), where the identity check reads it back.
use std::{collections::BTreeMap, path::PathBuf};

use serde::Deserialize;
use serde_json::{json, Map, Value};
use tether_core::{ids::Tag, units::HumanDuration};

use crate::http::{shown, web_url};

/// The task types a one-time run's task may have (exactly one each).
pub const TASK_TYPES: [&str; 4] = [
    "spark_python_task",
    "spark_jar_task",
    "notebook_task",
    "python_wheel_task",
];

/// `[job]` for `kind = "databricks"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabricksJob {
    /// Always `"databricks"`.
    pub kind: String,
    /// The workspace, `https://<workspace>.cloud.databricks.com` (https only).
    pub host: String,
    /// Variable holding a personal access token (`TETHER_TOKEN_*` or allowed by the worker).
    #[serde(default)]
    pub token_env: Option<String>,
    /// OAuth machine-to-machine (a service principal's client credentials).
    #[serde(default)]
    pub oauth: Option<OAuthM2M>,
    /// Extra CA certificates (PEM) trusted besides the system's (a proxy's private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Timeout of one HTTP request (default 30s).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
    /// One-time run: its name (the tag is appended).
    #[serde(default)]
    pub run_name: Option<String>,
    /// One-time run: its tasks, as the Jobs API takes them (`task_key`, one task type,
    /// `new_cluster` or `existing_cluster_id`, `libraries`, ...).
    #[serde(default)]
    pub tasks: Vec<Value>,
    /// One-time run: `timeout_seconds` of the run (0 or absent: none).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// An existing job to trigger with `run-now`.
    #[serde(default)]
    pub job_id: Option<u64>,
    /// `job_parameters` of a `run-now`.
    #[serde(default)]
    pub job_parameters: BTreeMap<String, String>,
}

/// `[job.oauth]`: the environment variables holding a service principal's credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthM2M {
    /// Variable holding the client id (the service principal's application id).
    pub client_id_env: String,
    /// Variable holding the OAuth secret.
    pub client_secret_env: String,
}

fn default_request_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}

/// `[recovery]` of a Databricks spec: how the next generation runs after an OOM failure.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabricksRecovery {
    /// `false`: an OOM failure is retried as it was.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Cores of the worker node type: the recovery shape sets `spark.task.cpus` to it, so each
    /// executor (one per worker on Databricks) runs one task with all its memory.
    #[serde(default)]
    pub worker_cores: Option<u32>,
    /// A larger worker node type for the recovery shape.
    #[serde(default)]
    pub node_type_id: Option<String>,
    /// A larger driver node type for the recovery shape.
    #[serde(default)]
    pub driver_node_type_id: Option<String>,
    /// Further `spark_conf` of the recovery shape (wins over `worker_cores`).
    #[serde(default)]
    pub spark_conf: BTreeMap<String, String>,
}

fn default_true() -> bool {
    true
}

impl Default for DatabricksRecovery {
    fn default() -> Self {
        DatabricksRecovery {
            enabled: true,
            worker_cores: None,
            node_type_id: None,
            driver_node_type_id: None,
            spark_conf: BTreeMap::new(),
        }
    }
}

impl DatabricksRecovery {
    /// Whether the recovery shape changes anything.
    pub fn changes_something(&self) -> bool {
        self.worker_cores.is_some()
            || self.node_type_id.is_some()
            || self.driver_node_type_id.is_some()
            || !self.spark_conf.is_empty()
    }

    /// What the recovery shape changes, for the run's history.
    pub fn describe(&self) -> String {
        let mut parts = vec![];
        if let Some(c) = self.worker_cores {
            parts.push(format!(
                "spark.task.cpus = {c} (the worker's cores: one task per executor)"
            ));
        }
        if let Some(n) = &self.node_type_id {
            parts.push(format!("node_type_id = {n}"));
        }
        if let Some(n) = &self.driver_node_type_id {
            parts.push(format!("driver_node_type_id = {n}"));
        }
        parts.extend(self.spark_conf.iter().map(|(k, v)| format!("{k} = {v}")));
        format!("new_cluster of every task: {}", parts.join(", "))
    }
}

/// A `[job]` table serde accepted but tether cannot use: (field, what to do).
pub type Invalid = (&'static str, String);

impl DatabricksJob {
    /// Checks what serde cannot; the error names the field.
    pub fn validate(&self) -> Result<(), Invalid> {
        let url = web_url(&self.host).map_err(|p| {
            let e = format!(
                "{} {p}: write the workspace URL, e.g. \"https://adb-123.4.azuredatabricks.net\"",
                shown(&self.host)
            );
            ("job.host", e)
        })?;
        if url.scheme() != "https" {
            return Err((
                "job.host",
                format!(
                    "{} is not https://: a Databricks token never crosses plain HTTP",
                    shown(&self.host)
                ),
            ));
        }
        match (&self.token_env, &self.oauth) {
            (Some(_), Some(_)) => return Err(("job.oauth", "give token_env (a personal access token) or [job.oauth], not both".into())),
            (None, None) => return Err(("job.token_env", "name the variable holding a personal access token (token_env), or give [job.oauth] client_id_env and client_secret_env".into())),
            _ => {}
        }
        let t = self.request_timeout.0;
        if t < std::time::Duration::from_millis(100) || t > std::time::Duration::from_secs(600) {
            return Err((
                "job.request_timeout",
                format!(
                    "{} is out of range: write a duration between 100ms and 10m",
                    self.request_timeout
                ),
            ));
        }
        match (self.job_id, self.tasks.is_empty()) {
            (Some(_), false) => Err((
                "job.job_id",
                "give job_id (run an existing job) or tasks (a one-time run), not both".into(),
            )),
            (None, true) => Err((
                "job.tasks",
                "give tasks (a one-time run, [[job.tasks]]) or job_id (run an existing job)".into(),
            )),
            (Some(_), true) => Ok(()),
            (None, false) => self
                .tasks
                .iter()
                .enumerate()
                .try_for_each(|(i, t)| check_task(i, t)),
        }
    }

    /// The body of `runs/submit` (or `run-now`) for `tag`, in the recovery shape if `recovery`.
    pub fn body(&self, tag: &Tag, recovery: Option<&DatabricksRecovery>) -> Value {
        if let Some(job_id) = self.job_id {
            return json!({"job_id": job_id, "job_parameters": self.job_parameters,
                "idempotency_token": tag.as_str()});
        }
        let tasks: Vec<Value> = self
            .tasks
            .iter()
            .map(|t| match recovery {
                Some(r) => reshape(t, r),
                None => t.clone(),
            })
            .collect();
        let mut body = json!({"run_name": self.run_name_for(tag), "tasks": tasks,
            "idempotency_token": tag.as_str()});
        if let Some(s) = self.timeout_seconds {
            body["timeout_seconds"] = json!(s);
        }
        body
    }

    /// `<run_name> [<tag>]`, or the tag alone.
    pub fn run_name_for(&self, tag: &Tag) -> String {
        match self
            .run_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            Some(name) => format!("{name} [{tag}]"),
            None => tag.to_string(),
        }
    }

    /// Whether any task makes its own cluster (where a recovery shape can apply).
    pub fn has_new_cluster(&self) -> bool {
        self.tasks.iter().any(|t| t.get("new_cluster").is_some())
    }
}

fn check_task(i: usize, t: &Value) -> Result<(), Invalid> {
    let field = "job.tasks";
    let Some(obj) = t.as_object() else {
        return Err((field, format!("task {i} is not a table")));
    };
    if obj
        .get("task_key")
        .and_then(Value::as_str)
        .is_none_or(|k| k.trim().is_empty())
    {
        return Err((field, format!("task {i} has no task_key")));
    }
    let types: Vec<&str> = TASK_TYPES
        .into_iter()
        .filter(|k| obj.contains_key(*k))
        .collect();
    if types.len() != 1 {
        return Err((
            field,
            format!(
                "task {i} must have exactly one of {} (it has {})",
                TASK_TYPES.join(", "),
                types.len()
            ),
        ));
    }
    if obj.contains_key("new_cluster") == obj.contains_key("existing_cluster_id") {
        return Err((
            field,
            format!("task {i} must have exactly one of new_cluster and existing_cluster_id"),
        ));
    }
    Ok(())
}

/// A task with the recovery shape applied to its `new_cluster` (a task on an existing cluster
/// is left as it is: tether cannot reshape a cluster it does not make).
fn reshape(task: &Value, r: &DatabricksRecovery) -> Value {
    let mut task = task.clone();
    let Some(cluster) = task.get_mut("new_cluster").and_then(Value::as_object_mut) else {
        return task;
    };
    if let Some(n) = &r.node_type_id {
        cluster.insert("node_type_id".into(), json!(n));
    }
    if let Some(n) = &r.driver_node_type_id {
        cluster.insert("driver_node_type_id".into(), json!(n));
    }
    let conf = cluster
        .entry("spark_conf")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(conf) = conf.as_object_mut() {
        if let Some(c) = r.worker_cores {
            conf.insert("spark.task.cpus".into(), json!(c.to_string()));
        }
        for (k, v) in &r.spark_conf {
            conf.insert(k.clone(), json!(v));
        }
    }
    task
}

#[cfg(test)]
mod tests;
