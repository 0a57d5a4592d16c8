//! The real Spark cluster the Spark tests run against, and outside views of it.
//!
//! - With `TETHER_SPARK_ENV=<dir>/cluster.env` (written by `scripts/spark-cluster start <dir>`),
//!   the tests use that cluster (CI shares one across test binaries).
//! - Without it, the first test that needs a cluster starts one with `scripts/spark-cluster
//!   start` in a temporary directory. A watchdog process stops it (by the pids the script
//!   recorded) as soon as this test process is gone, however it ended: a `static` is never
//!   dropped, and a test binary may be killed.
//! - If no cluster can be had, the test panics: a Spark test never passes without Spark.
//!
//! Shared by `crates/connectors/tests/spark_*.rs` and `crates/cli/tests/spark_crash.rs`, hence
//! no dependencies beyond std and serde_json (HTTP through `curl`).
#![allow(dead_code)]
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// Generous bound for anything on this 2-core machine to happen.
pub const T: Duration = Duration::from_secs(300);

/// A running cluster's coordinates.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub rest: String,
    pub ui: String,
    pub worker_ui: String,
    pub jar: String,
    pub dir: PathBuf,
    pub master_pid: String,
    /// The Spark distribution the cluster runs (`SPARK_HOME`), for spark-submit.
    pub spark_home: Option<PathBuf>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("repo root")
        .to_path_buf()
}

fn parse_env(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read the cluster env {}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The cluster, started on first use if `TETHER_SPARK_ENV` is not set.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let env_file = match std::env::var("TETHER_SPARK_ENV") {
            Ok(p) if !p.is_empty() => PathBuf::from(p),
            _ => start_own_cluster(),
        };
        let e = parse_env(&env_file);
        let get = |k: &str| {
            e.get(k)
                .cloned()
                .unwrap_or_else(|| panic!("{} lacks {k}", env_file.display()))
        };
        Cluster {
            rest: get("SPARK_MASTER_REST"),
            ui: get("SPARK_MASTER_UI"),
            worker_ui: get("SPARK_WORKER_UI"),
            jar: get("SPARK_JOB_JAR"),
            dir: PathBuf::from(get("SPARK_FIXTURE_DIR")),
            master_pid: get("SPARK_MASTER_PID"),
            spark_home: e.get("SPARK_HOME").map(PathBuf::from),
        }
    })
}

fn start_own_cluster() -> PathBuf {
    let root = repo_root();
    let base = std::env::temp_dir().join(format!("tether-spark-test-{}", std::process::id()));
    let script = root.join("scripts/spark-cluster");
    eprintln!(
        "spark tests: TETHER_SPARK_ENV not set, starting a cluster in {}",
        base.display()
    );
    // The watchdog first, so that even a start that fails half-way is cleaned up.
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {script} stop {dir} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        script = shell_quote(&script.display().to_string()),
        dir = shell_quote(&base.display().to_string()),
    );
    // Never waited for on purpose: it must outlive this process to clean up after it.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the cluster watchdog");
    let out = Command::new(&script)
        .arg("start")
        .arg(&base)
        .stdin(Stdio::null())
        .output()
        .expect("run spark-cluster");
    assert!(
        out.status.success(),
        "scripts/spark-cluster start failed; Spark tests need a real cluster:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    base.join("cluster.env")
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `curl -sS <url>` body, or None on failure.
pub fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The master's `/json/`.
pub fn master_json() -> serde_json::Value {
    let c = cluster();
    let body = curl(&format!("{}/json/", c.ui)).expect("master /json/ unreachable");
    serde_json::from_str(&body).expect("master /json/ is JSON")
}

/// `(driver id, state)` of every driver the master lists.
pub fn drivers() -> Vec<(String, String)> {
    let j = master_json();
    ["activedrivers", "completeddrivers"]
        .iter()
        .flat_map(|k| j[*k].as_array().cloned().unwrap_or_default())
        .map(|d| {
            (
                d["id"].as_str().unwrap_or("").to_string(),
                d["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The first line of a driver's stderr if it is the worker's launch command (read from the
/// worker's work dir, not through tether); None while the driver has not been launched.
fn launch_line_on_disk(driver_id: &str) -> Option<String> {
    let p = cluster().dir.join("work").join(driver_id).join("stderr");
    let text = std::fs::read_to_string(p).ok()?;
    text.lines()
        .next()
        .filter(|l| l.starts_with("Launch Command:"))
        .map(str::to_string)
}

/// The tether tag in a launched driver's command line (None: not launched, or no tag).
pub fn driver_tag_on_disk(driver_id: &str) -> Option<String> {
    let line = launch_line_on_disk(driver_id)?;
    let start = line.find("\"-Dspark.tether.tag=")? + "\"-Dspark.tether.tag=".len();
    Some(line[start..start + line[start..].find('"')?].to_string())
}

/// A driver's launch command line (first line of its stderr), from the worker's work dir;
/// waits (up to [`T`]) for the worker to launch it.
pub fn launch_command(driver_id: &str) -> String {
    let p = cluster().dir.join("work").join(driver_id).join("stderr");
    let deadline = Instant::now() + T;
    loop {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .next()
            .filter(|l| l.starts_with("Launch Command:"))
        {
            return line.to_string();
        }
        if Instant::now() > deadline {
            return String::new();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Drivers listed by the master whose launch command carries a tag starting with `prefix`
/// (a run's tags share the prefix `tether-<key slug>-<hash>-g`). Waits until none of the
/// master's drivers is still queued, so that every driver is counted.
pub fn drivers_with_tag_prefix(prefix: &str) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + T;
    loop {
        let all = drivers();
        let queued = all.iter().any(|(_, st)| st == "SUBMITTED");
        // Drivers that ran have a launch command; ERROR or KILLED ones may never have launched.
        let unreadable = all.iter().any(|(id, st)| {
            matches!(st.as_str(), "RUNNING" | "FINISHED" | "FAILED")
                && launch_line_on_disk(id).is_none()
        });
        if (!queued && !unreadable) || Instant::now() > deadline {
            return all
                .into_iter()
                .filter_map(|(id, st)| {
                    let tag = driver_tag_on_disk(&id)?;
                    tag.starts_with(prefix).then_some((id, st, tag))
                })
                .collect();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A `kind = "spark-standalone"` spec for the test job.
/// `args`: the job's arguments; `conf`: extra `[job.conf]` lines; `top`: policy lines;
/// `tail`: anything after `[job.conf]` (e.g. a `[recovery]` table).
pub fn spec(rest: &str, args: &[&str], conf: &str, top: &str, tail: &str) -> String {
    let c = cluster();
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "{top}\n[job]\nkind = \"spark-standalone\"\nmaster_rest = \"{rest}\"\nmaster_ui = \"{ui}\"\n\
         app_resource = \"file:{jar}\"\nmain_class = \"dev.tether.testjob.TestJob\"\nargs = [{args}]\n\
         request_timeout = \"15s\"\n[job.conf]\n\"spark.driver.memory\" = \"450m\"\n\
         \"spark.executor.memory\" = \"512m\"\n{conf}\n{tail}\n",
        ui = c.ui,
        jar = c.jar,
        args = args.join(", "),
    )
}

/// Conf lines of the skew job's normal shape: one 4-core executor, 4 tasks at once.
pub const SKEW_CONF: &str = "\"spark.executor.cores\" = \"4\"\n\"spark.cores.max\" = \"4\"\n\
                             \"spark.task.maxFailures\" = \"2\"\n";
/// Arguments of the skew job: partition 0 holds 280 MB, the 3 others 110 MB, for 4 s.
pub const SKEW_ARGS: &[&str] = &["skew", "280", "110", "4", "4000"];
