//! The spark-submit runner: submits an application in cluster deploy mode by running
//! `spark-submit` from a Spark distribution, for the backends that have no REST submission API
//! of their own (YARN, Kubernetes; standalone too, through its REST gateway).
//!
//! ## Guarantees
//! - spark-submit runs with a **cleared environment** plus [`ENV_ALLOW`] (and the caller's
//!   [`SparkSubmit::env_allow`]) copied from ours, and `SPARK_HOME`: tether's tokens and other
//!   secrets never reach it or the job.
//! - It does not wait for the application: `--conf <cluster's waitAppCompletion key>=false`
//!   ([`Cluster::wait_key`]).
//! - spark-submit dies with tether (Linux `PR_SET_PDEATHSIG`, kept across the launcher scripts'
//!   `exec`s): a SIGKILLed tether leaves no spark-submit behind that could create the
//!   application after the next run's look-up by tag found none.
//! - A **hard timeout**: on expiry the whole process group (spark-submit's launcher scripts and
//!   their JVM) is killed with SIGKILL and reaped; nothing is left behind.
//! - Output is read concurrently from stdout and stderr, each capped at
//!   [`SparkSubmit::output_cap`] (the rest is drained and dropped, so the child never blocks).
//! - The id is taken from the output with the cluster's pattern ([`outcome::find_id`]).
//! - Errors are the engine's [`SubmitError`]: spark-submit cannot start, no Spark distribution,
//!   or spark-submit refused its arguments -> `Rejected`; connection refused before anything was
//!   sent -> `Unavailable`; timeout, killed, any other failure, or exit 0 without an id ->
//!   `Ambiguous` (the engine then looks the tag up).
//! - Values of secret conf keys ([`super::conf::is_secret_key`]) are scrubbed from every text
//!   returned (errors, [`Submitted::output`]).
//!
//! - Values of secret conf keys are not arguments (on Linux): they reach spark-submit in an
//!   in-memory properties file only it inherits ([`props`]), so the host's process list never
//!   shows them.
//!
//! ## Caveats
//! - Other conf values are passed as `--conf k=v` arguments, readable in this host's process list
//!   for the seconds spark-submit runs.
//! - For standalone, `spark.master.rest.enabled=true` is added (unless set) so spark-submit uses
//!   the master's REST gateway when the master URL names its REST port; spark-submit falls back
//!   to the legacy RPC gateway by itself when that port is not REST.
pub mod outcome;
pub mod props;

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use tether_core::{connector::SubmitError, ids::ExternalId};
use tokio::{
    io::{AsyncRead, AsyncReadExt},
    process::Command,
};

use super::conf::{is_secret_key, SparkConf};
use crate::text;

/// Environment variables spark-submit gets from ours (when set); everything else is cleared.
pub const ENV_ALLOW: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "JAVA_HOME",
    "SPARK_CONF_DIR",
    "HADOOP_HOME",
    "HADOOP_CONF_DIR",
    "YARN_CONF_DIR",
    "HADOOP_USER_NAME",
    "KRB5_CONFIG",
    "KRB5CCNAME",
    "KUBECONFIG",
];

/// Which cluster manager spark-submit talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cluster {
    /// A standalone master (`spark://`).
    Standalone,
    /// YARN (`yarn`).
    Yarn,
    /// Kubernetes (`k8s://`).
    Kubernetes,
}

impl Cluster {
    /// The conf key that makes spark-submit return once the application is submitted.
    pub fn wait_key(self) -> &'static str {
        match self {
            Cluster::Standalone => "spark.standalone.submit.waitAppCompletion",
            Cluster::Yarn => "spark.yarn.submit.waitAppCompletion",
            Cluster::Kubernetes => "spark.kubernetes.submission.waitAppCompletion",
        }
    }
}

/// What a tag look-up before spark-submit means (every spark-submit backend looks first): the
/// job `what` (e.g. "an application") carrying `tag` that already exists, or none (submit), or
/// `Unavailable` when the backend could not say (submitting then could start a second job).
pub fn already_submitted(
    tag: &tether_core::ids::Tag,
    what: &str,
    found: tether_core::observe::Lookup,
) -> Result<Option<ExternalId>, SubmitError> {
    use tether_core::observe::Lookup;
    match found {
        Lookup::Found { external_id } => Ok(Some(external_id)),
        Lookup::Unknown { reason } => Err(SubmitError::Unavailable {
            reason: format!(
                "cannot tell whether {what} with tag {tag} exists ({reason}); nothing was submitted"
            ),
        }),
        _ => Ok(None),
    }
}

/// One spark-submit run.
#[derive(Debug, Clone)]
pub struct SparkSubmit {
    /// The Spark distribution (`$SPARK_HOME`); `None`: our `SPARK_HOME`.
    pub spark_home: Option<PathBuf>,
    /// The cluster manager.
    pub cluster: Cluster,
    /// `--master`, e.g. `spark://m:6066`, `yarn`, `k8s://https://api:6443`.
    pub master: String,
    /// `--class` (none for Python applications).
    pub main_class: Option<String>,
    /// The application jar or file, as the cluster can read it.
    pub app_resource: String,
    /// Application arguments.
    pub args: Vec<String>,
    /// Spark conf (user's merged with tether's keys).
    pub conf: SparkConf,
    /// Environment variables passed through besides [`ENV_ALLOW`].
    pub env_allow: Vec<String>,
    /// Environment variables set for spark-submit over the passed-through ones (e.g. a spec's
    /// `HADOOP_CONF_DIR`). Not for secrets: the job may see them.
    pub env: Vec<(String, String)>,
    /// Hard limit on the whole run.
    pub timeout: Duration,
    /// Bytes kept of each of stdout and stderr.
    pub output_cap: usize,
}

/// A submitted application.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// Its id (driver id, YARN application id, driver pod name).
    pub id: ExternalId,
    /// spark-submit's output (stderr then stdout, capped, secrets scrubbed).
    pub output: String,
}

impl SparkSubmit {
    /// The Spark distribution to use, or why there is none.
    pub fn spark_home(&self) -> Result<PathBuf, SubmitError> {
        let home = match &self.spark_home {
            Some(h) => h.clone(),
            None => match std::env::var_os("SPARK_HOME").filter(|h| !h.is_empty()) {
                Some(h) => PathBuf::from(h),
                None => {
                    return Err(SubmitError::Rejected {
                        message: "no Spark distribution: set spark_home in the spec or SPARK_HOME in tether's \
                                  environment"
                            .into(),
                    })
                }
            },
        };
        Ok(home)
    }

    /// spark-submit's arguments (after the program name). With `properties_file`, secret conf
    /// values are left to that file ([`props`]) and it is named with `--properties-file`;
    /// without, every conf pair is a `--conf` argument.
    pub fn arguments(&self, properties_file: Option<&str>) -> Vec<String> {
        let mut a = vec![
            "--master".to_string(),
            self.master.clone(),
            "--deploy-mode".into(),
            "cluster".into(),
        ];
        if let Some(class) = &self.main_class {
            a.extend(["--class".into(), class.clone()]);
        }
        let mut conf = self.conf.clone();
        conf.set(self.cluster.wait_key(), "false");
        if self.cluster == Cluster::Standalone {
            conf.set_default("spark.master.rest.enabled", "true");
        }
        for (k, v) in conf.iter() {
            if properties_file.is_none() || !is_secret_key(k) {
                a.extend(["--conf".into(), format!("{k}={v}")]);
            }
        }
        if let Some(file) = properties_file {
            a.extend(["--properties-file".into(), file.to_string()]);
        }
        a.push(self.app_resource.clone());
        a.extend(self.args.iter().cloned());
        a
    }

    /// The in-memory properties file holding the secret conf, when there is any ([`props`]).
    #[cfg(target_os = "linux")]
    fn secret_file(&self, home: &Path) -> Result<Option<std::os::fd::OwnedFd>, SubmitError> {
        let pairs: Vec<(&str, &str)> = self.conf.iter().filter(|(k, _)| is_secret_key(k)).collect();
        if pairs.is_empty() {
            return Ok(None);
        }
        let defaults_path = props::defaults_path(home, &self.env);
        let defaults = props::read_defaults(&defaults_path).map_err(|e| SubmitError::Rejected {
            message: format!(
                "cannot read {} (spark-submit's defaults, kept beside the secret conf): {e}",
                shown_path(&defaults_path)
            ),
        })?;
        props::memory_file(&props::text(&defaults, &pairs))
            .map(Some)
            .map_err(|e| SubmitError::Rejected {
                message: format!("cannot create the in-memory file for the secret conf: {e}"),
            })
    }

    /// Values scrubbed out of every text returned.
    fn secrets(&self) -> Vec<&str> {
        self.conf
            .iter()
            .filter(|(k, _)| is_secret_key(k))
            .map(|(_, v)| v)
            .collect()
    }

    /// Runs spark-submit and returns the application id (see the module's guarantees).
    pub async fn run(&self) -> Result<Submitted, SubmitError> {
        let secrets = self.secrets();
        // Secrets out and control characters escaped in what reaches errors and history.
        let clean = |s: &str| text::clean(s, &secrets);
        self.run_raw(&secrets).await.map_err(|e| match e {
            SubmitError::Rejected { message } => SubmitError::Rejected {
                message: clean(&message),
            },
            SubmitError::Unavailable { reason } => SubmitError::Unavailable {
                reason: clean(&reason),
            },
            SubmitError::Ambiguous { reason } => SubmitError::Ambiguous {
                reason: clean(&reason),
            },
            other => other,
        })
    }

    async fn run_raw(&self, secrets: &[&str]) -> Result<Submitted, SubmitError> {
        // Lines kept (read line by line below), secrets out.
        let scrub = |s: &str| text::scrub(s, secrets);
        let home = self.spark_home()?;
        let program = home.join("bin").join("spark-submit");
        // Held until spark-submit is done: its launcher and its JVM each read the file.
        #[cfg(target_os = "linux")]
        let secret_file = self.secret_file(&home)?;
        #[cfg(target_os = "linux")]
        let file_path = secret_file.as_ref().map(|fd| {
            use std::os::fd::AsRawFd;
            format!("/dev/fd/{}", fd.as_raw_fd())
        });
        #[cfg(not(target_os = "linux"))]
        let file_path: Option<String> = None;
        let mut cmd = Command::new(&program);
        cmd.args(self.arguments(file_path.as_deref()))
            .env_clear()
            .envs(allowed_env(&self.env_allow))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("SPARK_HOME", &home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so the timeout can kill the scripts and the JVM together.
            .process_group(0)
            .kill_on_drop(true);
        die_with_parent(&mut cmd);
        #[cfg(target_os = "linux")]
        if let Some(fd) = &secret_file {
            use std::os::fd::AsRawFd;
            props::inherit(&mut cmd, fd.as_raw_fd());
        }
        let mut child = cmd.spawn().map_err(|e| SubmitError::Rejected {
            message: format!(
                "cannot start {}: {e} (is spark_home / SPARK_HOME a Spark distribution?)",
                shown_path(&program)
            ),
        })?;
        let pgid = child.id();
        let (out, err) = (child.stdout.take(), child.stderr.take());
        let cap = self.output_cap;
        let work = async {
            let (out, err) = tokio::join!(read_capped(out, cap), read_capped(err, cap));
            let status = child.wait().await;
            (status, out, err)
        };
        let (status, out, err) = match tokio::time::timeout(self.timeout, work).await {
            Ok(done) => done,
            Err(_) => {
                if let Some(pgid) = pgid {
                    kill_group(pgid);
                }
                // Reap it (the group is SIGKILLed: this returns at once).
                let _ = child.wait().await;
                return Err(SubmitError::Ambiguous {
                    reason: format!(
                        "spark-submit did not finish within {:?} and was killed (the application may have been \
                         submitted)",
                        self.timeout
                    ),
                });
            }
        };
        let output = scrub(&format!(
            "{}{}",
            String::from_utf8_lossy(&err),
            String::from_utf8_lossy(&out)
        ));
        let status: ExitStatus = status.map_err(|e| SubmitError::Ambiguous {
            reason: format!("cannot wait for spark-submit: {e}"),
        })?;
        match outcome::find_id(self.cluster, &output) {
            Some(id) => Ok(Submitted {
                id: ExternalId(id),
                output,
            }),
            None => Err(outcome::failure(status.code(), &output)),
        }
    }
}

/// Our values of the allowed variables.
pub(super) fn allowed_env(extra: &[String]) -> Vec<(String, std::ffi::OsString)> {
    ENV_ALLOW
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().cloned())
        .filter_map(|k| std::env::var_os(&k).map(|v| (k, v)))
        .collect()
}

/// Reads `r` to its end, keeping the first `cap` bytes.
async fn read_capped(r: Option<impl AsyncRead + Unpin>, cap: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut r) = r else { return kept };
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

fn shown_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// Makes the child get SIGKILL when the thread that spawned it (a runtime worker, which lives
/// as long as tether's runtime) dies: a crash of tether leaves no submission in flight.
#[cfg(target_os = "linux")]
pub(super) fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl, which is
    // async-signal-safe and touches no memory of the parent.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn die_with_parent(_: &mut Command) {}

/// SIGKILL to a process group.
fn kill_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    // SAFETY: killpg takes two integers and touches no memory of ours; the group is the child's
    // own (process_group(0)), not yet reaped, so its id cannot have been reused.
    #[allow(unsafe_code)]
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}
