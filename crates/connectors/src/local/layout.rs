//! The files of one local submission and their formats.
//!
//! ```text
//! <jobs_dir>/local.lock              the local slot: shared by normal jobs, exclusive for recovery
//! <jobs_dir>/<tag>/job.json          what to run (written by the connector before starting)
//! <jobs_dir>/<tag>/supervisor.lock   held (flock) by the one supervisor of this tag
//! <jobs_dir>/<tag>/supervisor.json   the supervisor's identity, then the job's pid/pgid
//! <jobs_dir>/<tag>/cancel            present once a cancel was asked for
//! <jobs_dir>/<tag>/stdout.log        the job's standard output
//! <jobs_dir>/<tag>/stderr.log        the job's standard error
//! <jobs_dir>/<tag>/supervisor.log    the supervisor's own complaints (if any)
//! <jobs_dir>/<tag>/status.json       how the job ended (written once, atomically)
//! ```
//!
//! ## Guarantees
//! - Directories are `0700` and files `0600`, opened without following links, and records are
//!   trusted only when owned by this user (see [`super::files`]).
//! - Every JSON record is written atomically ([`super::identity::write_atomic`]); a reader sees
//!   a whole record or none.
//! - Records carry a `version`; readers reject versions they do not know instead of guessing.
//!
//! ## Assumptions
//! - The directory name is the tag (tags are `[a-z0-9-]`, see `tether_core::ids::Tag`).
//!
//! ## Caveats
//! - Nothing here is ever deleted by tether: old job directories accumulate until pruned.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use tether_core::journal::Shape;

use super::identity::Identity;

/// Version of the record formats below.
pub const FORMAT_VERSION: u32 = 1;

/// A record that exists but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Unreadable or unparsable.
    #[error("{path}: {source}")]
    Unreadable {
        /// The record's file.
        path: PathBuf,
        /// The underlying error, kept as the source.
        source: std::io::Error,
    },
    /// Written by a tether with another record format.
    #[error("{path} has format version {found}, this tether knows {FORMAT_VERSION}: use the tether version that started the job")]
    Version {
        /// The record's file.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
}

/// Path of the local slot lock of a jobs directory.
pub fn slot_lock(jobs_dir: &Path) -> PathBuf {
    jobs_dir.join("local.lock")
}

/// The directory of one submission.
#[derive(Debug, Clone)]
pub struct JobDir(PathBuf);

impl JobDir {
    /// The directory for `tag`, or `None` when the tag could not be a directory name of ours
    /// (empty, `.`/`..`, or containing `/`): such a tag was never submitted here.
    pub fn new(jobs_dir: &Path, tag: &str) -> Option<JobDir> {
        let ok = !tag.is_empty()
            && tag != "."
            && tag != ".."
            && !tag.contains('/')
            && !tag.contains('\0');
        ok.then(|| JobDir(jobs_dir.join(tag)))
    }
    /// Wraps an existing directory path (the supervisor gets it on its command line).
    pub fn at(path: PathBuf) -> JobDir {
        JobDir(path)
    }
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// `job.json`.
    pub fn job(&self) -> PathBuf {
        self.0.join("job.json")
    }
    /// `supervisor.lock`.
    pub fn supervisor_lock(&self) -> PathBuf {
        self.0.join("supervisor.lock")
    }
    /// `supervisor.json`.
    pub fn supervisor(&self) -> PathBuf {
        self.0.join("supervisor.json")
    }
    /// `cancel`.
    pub fn cancel(&self) -> PathBuf {
        self.0.join("cancel")
    }
    /// `stdout.log`.
    pub fn stdout(&self) -> PathBuf {
        self.0.join("stdout.log")
    }
    /// `stderr.log`.
    pub fn stderr(&self) -> PathBuf {
        self.0.join("stderr.log")
    }
    /// `supervisor.log`.
    pub fn supervisor_log(&self) -> PathBuf {
        self.0.join("supervisor.log")
    }
    /// `status.json`.
    pub fn status(&self) -> PathBuf {
        self.0.join("status.json")
    }
}

/// What the connector asks the supervisor to run (`job.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDescription {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// The run this submission belongs to.
    pub run_key: String,
    /// Its generation.
    pub generation: u32,
    /// Its tag (also the directory name).
    pub tag: String,
    /// Its shape: `recovery` takes the local slot exclusively.
    pub shape: Shape,
    /// Program and arguments (no shell).
    pub command: Vec<String>,
    /// Variables set on top of the environment tether was started with.
    pub env: BTreeMap<String, String>,
    /// Working directory (absolute), or the one tether was started in.
    pub workdir: Option<PathBuf>,
    /// Memory limit of the job's process group, in bytes.
    pub memory_limit: Option<u64>,
    /// Wall-clock limit, in milliseconds from the job's start (waiting for the slot excluded).
    pub timeout_ms: Option<u64>,
    /// Time between SIGTERM and SIGKILL on cancel and timeout, in milliseconds.
    pub grace_ms: u64,
    /// The jobs directory (where the slot lock lives).
    pub jobs_dir: PathBuf,
    /// Program and leading arguments that start the supervisor (for the launcher stage).
    pub supervisor: Vec<String>,
}

/// The supervisor's identity and, once started, its job's (`supervisor.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupervisorRecord {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// The tag of the submission.
    pub tag: String,
    /// The supervisor process; its [`Identity::external_id`] is the submission's external id.
    pub supervisor: Identity,
    /// The job's process, once the slot was obtained and the job started.
    pub job: Option<JobProcess>,
    /// Set while the job waits for the local slot (so `submit` need not wait for the start).
    #[serde(default)]
    pub waiting_for_slot: bool,
}

/// The job's process as the supervisor started it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobProcess {
    /// Pid of the job's main process.
    pub pid: i32,
    /// Its process group (equal to `pid`: the job leads its own session).
    pub pgid: i32,
    /// Its start time in clock ticks (guards signals against pid reuse).
    pub start_time: u64,
    /// Wall-clock start, ms since the epoch.
    pub started_at_ms: u64,
    /// How the memory limit is enforced: `cgroup-v2`, `watchdog` or `none`.
    pub memory_enforcement: String,
}

/// How the job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// It exited by itself (any code).
    Exited,
    /// It was killed by a signal nobody of ours sent.
    Signaled,
    /// Killed for exceeding `memory_limit` (by the watchdog or the cgroup's OOM killer).
    Oom,
    /// Killed for exceeding `timeout`.
    Timeout,
    /// Killed because a cancel was asked for.
    Cancelled,
    /// The program could not be started (not found, not executable, bad workdir).
    SpawnFailed,
}

/// The outcome the supervisor writes once the job ended (`status.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusRecord {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// Why it ended.
    pub reason: EndReason,
    /// Exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Terminating signal, when killed by one.
    pub signal: Option<i32>,
    /// Highest resident memory seen for the whole process group, in bytes.
    pub peak_rss_bytes: u64,
    /// Wall-clock start of the job, ms since the epoch (`None` if it never started).
    pub started_at_ms: Option<u64>,
    /// Wall-clock end, ms since the epoch.
    pub ended_at_ms: u64,
    /// Run time in ms (0 if it never started).
    pub duration_ms: u64,
    /// How memory was watched: `cgroup-v2`, `watchdog` or `none`.
    pub memory_enforcement: String,
    /// Human explanation.
    pub message: String,
    /// For [`EndReason::SpawnFailed`]: the `errno` of the failed start, when there was one.
    #[serde(default)]
    pub errno: Option<i32>,
}
