//! The real YARN the Spark-on-YARN tests run against (`scripts/yarn-cluster`), and outside views
//! of it through the ResourceManager's REST API.
//!
//! - With `TETHER_YARN_ENV=<dir>/cluster.env` (written by `scripts/yarn-cluster start <dir>`;
//!   `scripts/test` starts one and sets it), the tests use that cluster.
//! - Without it, [`cluster_or_skip`] says so on stderr and the test returns early: a YARN takes
//!   ~110 MB of jars and 300 MB of memory, so a plain `cargo test` does not start one behind the
//!   developer's back. CI always sets it.
//!
//! No dependencies beyond std and serde_json (HTTP through `curl`, as `spark_support`).
#![allow(dead_code)]
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// Generous bound for anything on this 2-core machine to happen.
pub const T: Duration = Duration::from_secs(300);

/// A running YARN's coordinates, from its `cluster.env`.
#[derive(Debug, Clone)]
pub struct Yarn {
    pub rm_url: String,
    pub hadoop_conf_dir: String,
    pub java_home: String,
    pub spark_home: String,
    pub job_jar: String,
    pub dir: PathBuf,
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("repo root")
        .to_path_buf()
}

/// The cluster named by `TETHER_YARN_ENV`, or None (after saying why on stderr).
pub fn cluster_or_skip(test: &str) -> Option<Yarn> {
    let path = match std::env::var("TETHER_YARN_ENV") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            eprintln!(
                "SKIPPED {test}: TETHER_YARN_ENV is not set. Start a YARN with \
                 `scripts/yarn-cluster start /tmp/yarn` and set TETHER_YARN_ENV=/tmp/yarn/cluster.env \
                 (scripts/test does both)"
            );
            return None;
        }
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "TETHER_YARN_ENV={} cannot be read ({e}); is the cluster started?",
            path.display()
        )
    });
    let e: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let get = |k: &str| {
        e.get(k)
            .map(|v| v.to_string())
            .unwrap_or_else(|| panic!("{} lacks {k}", path.display()))
    };
    Some(Yarn {
        rm_url: get("YARN_RM_URL"),
        hadoop_conf_dir: get("HADOOP_CONF_DIR"),
        java_home: get("JAVA_HOME"),
        spark_home: get("SPARK_HOME"),
        job_jar: get("SPARK_JOB_JAR"),
        dir: PathBuf::from(get("YARN_FIXTURE_DIR")),
    })
}

/// A fresh YARN application tag: lower case (YARN lower-cases tags) and unique per call.
pub fn fresh_tag(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("tether-test-{what}-{}-{nanos}", std::process::id())
}

impl Yarn {
    /// `spark-submit --master yarn --deploy-mode cluster` of `resource` (a jar with `class`, or
    /// a `.py` file), tagged `tag`, returning once YARN accepted it (no wait for the end).
    pub fn submit(&self, tag: &str, class: Option<&str>, resource: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(format!("{}/bin/spark-submit", self.spark_home));
        cmd.env("HADOOP_CONF_DIR", &self.hadoop_conf_dir)
            .env("YARN_CONF_DIR", &self.hadoop_conf_dir)
            .env("JAVA_HOME", &self.java_home)
            .env("SPARK_HOME", &self.spark_home)
            .args(["--master", "yarn", "--deploy-mode", "cluster"])
            // The jars are on this machine: no upload of ~400 MB per submit.
            .args([
                "--conf",
                &format!("spark.yarn.jars=local:{}/jars/*", self.spark_home),
            ])
            .args(["--conf", "spark.yarn.submit.waitAppCompletion=false"])
            .args(["--conf", &format!("spark.yarn.tags={tag}")])
            .args(["--conf", "spark.yarn.maxAppAttempts=1"])
            .args(["--driver-memory", "512m", "--executor-memory", "512m"])
            .args(["--num-executors", "1"]);
        if let Some(c) = class {
            cmd.args(["--class", c]);
        }
        let out = cmd
            .arg(resource)
            .args(args)
            .output()
            .expect("run spark-submit");
        assert!(
            out.status.success(),
            "spark-submit failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The RM's apps carrying `tag` (`GET /ws/v1/cluster/apps?applicationTags=`), tolerating
    /// `"apps": null` (no app yet).
    pub fn apps_with_tag(&self, tag: &str) -> Vec<serde_json::Value> {
        let url = format!("{}/ws/v1/cluster/apps?applicationTags={tag}", self.rm_url);
        let out = Command::new("curl")
            .args([
                "-fsS",
                "--max-time",
                "20",
                "-H",
                "Accept: application/json",
                &url,
            ])
            .output()
            .expect("run curl");
        assert!(
            out.status.success(),
            "GET {url} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("RM apps answer is JSON");
        j["apps"]["app"].as_array().cloned().unwrap_or_default()
    }

    /// Waits (up to [`T`]) until every app with `tag` has ended (FINISHED, FAILED or KILLED)
    /// and returns them all.
    pub fn wait_ended(&self, tag: &str) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + T;
        loop {
            let apps = self.apps_with_tag(tag);
            let ended = |a: &serde_json::Value| {
                matches!(a["state"].as_str(), Some("FINISHED" | "FAILED" | "KILLED"))
            };
            if !apps.is_empty() && apps.iter().all(ended) {
                return apps;
            }
            assert!(
                Instant::now() < deadline,
                "apps tagged {tag} did not end within {T:?}: {apps:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}
