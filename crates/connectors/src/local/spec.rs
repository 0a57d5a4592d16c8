//! The `[job]` and `[recovery]` tables of a local spec, their validation, and what each shape
//! runs.
//!
//! ```toml
//! [job]
//! kind = "local"
//! command = ["python3", "train.py"]   # required: program and arguments, no shell
//! env = { SEED = "1" }                # optional, set on top of the scrubbed environment
//! workdir = "/data/run"               # optional, relative to the submitter's directory
//! memory_limit = "512MiB"             # optional: the job's processes together
//! timeout = "10m"                     # optional: wall clock from the job's start
//!
//! [recovery]                          # optional: applies after an out-of-memory failure
//! enabled = true                      # false: no recovery shape at all
//! args = ["train.py", "--batch", "8"] # or command = [...] for the whole command
//! env = { BATCH = "8" }               # merged over job.env
//! memory_limit = "1GiB"
//! timeout = "20m"
//! ```
//!
//! ## Guarantees
//! - Every value that would make a job unstartable or meaningless (empty command, zero limit,
//!   both `command` and `args` in `[recovery]`) is refused here, naming the field.
//! - The recovery shape always runs alone (exclusive local slot), with or without a
//!   `[recovery]` table, unless `enabled = false`.
//!
//! - A relative `workdir` is made absolute against the submitter's directory
//!   (`BuildContext::base_dir`), never against a worker's; so is a relative program path
//!   containing `/` (against `workdir` when given, as `exec` would after changing into it).
//!   A bare program name is looked up on `PATH` when the job starts.
//! - [`LocalSpec::check_startable`] (run when a spec is submitted) refuses a program that is
//!   not found or not executable, a missing workdir and arguments over the kernel's limits.
//!
//! ## Caveats
//! - The checks hold when the spec is submitted; what changes before the job starts is caught
//!   at launch and ends the run as `failed: rejected` (see [`super::startable`]).
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tether_core::{
    spec::SpecError,
    units::{ByteSize, HumanDuration},
};

/// `[job]` of a local spec.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LocalJob {
    /// Always `"local"`.
    pub kind: String,
    /// Program and arguments; no shell unless you write one (`["sh", "-c", "..."]`).
    pub command: Vec<String>,
    /// Environment variables set on top of tether's own environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory (relative paths are taken from tether's working directory).
    #[serde(default)]
    pub workdir: Option<PathBuf>,
    /// Limit on the resident memory of the job's processes together.
    #[serde(default)]
    pub memory_limit: Option<ByteSize>,
    /// Wall-clock limit from the job's start.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
}

/// `[recovery]` of a local spec: overrides for submissions in the recovery shape.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LocalRecovery {
    /// `false` disables the recovery shape.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Replaces the whole command.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Replaces the arguments after the program.
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// Merged over `job.env`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Replaces `job.memory_limit`.
    #[serde(default)]
    pub memory_limit: Option<ByteSize>,
    /// Replaces `job.timeout`.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
}

fn yes() -> bool {
    true
}

/// What one shape of the job runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shaped {
    /// Program and arguments.
    pub command: Vec<String>,
    /// Variables over tether's environment.
    pub env: BTreeMap<String, String>,
    /// Absolute working directory, or none (tether's).
    pub workdir: Option<PathBuf>,
    /// Memory limit in bytes.
    pub memory_limit: Option<u64>,
    /// Timeout.
    pub timeout: Option<Duration>,
}

/// A validated local spec: the normal shape and, unless disabled, the recovery shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSpec {
    /// Shape of ordinary submissions.
    pub normal: Shaped,
    /// Shape after an OOM failure (runs alone); `None` when `[recovery] enabled = false`.
    pub recovery: Option<Shaped>,
}

impl LocalSpec {
    /// Validates the tables of `file`. Relative `workdir`s and program paths are resolved
    /// against `base` (the submitter's directory). No I/O: see [`LocalSpec::check_startable`].
    pub fn new(
        file: &str,
        job: LocalJob,
        recovery: Option<LocalRecovery>,
        base: &Path,
    ) -> Result<LocalSpec, SpecError> {
        let err = |field: &str, message: &str| SpecError::Value {
            file: file.into(),
            field: field.into(),
            message: message.into(),
        };
        check_command(&job.command).map_err(|m| err("job.command", m))?;
        if job.memory_limit.is_some_and(|m| m.0 == 0) {
            return Err(err(
                "job.memory_limit",
                "must be more than 0 (e.g. \"512MiB\"); remove it for no limit",
            ));
        }
        if job.timeout.is_some_and(|t| t.0.is_zero()) {
            return Err(err(
                "job.timeout",
                "must be more than 0 (e.g. \"10m\"); remove it for no timeout",
            ));
        }
        let workdir = job.workdir.map(|w| base.join(w));
        let normal = Shaped {
            command: absolute_program(job.command, workdir.as_deref().unwrap_or(base)),
            env: job.env,
            workdir,
            memory_limit: job.memory_limit.map(|m| m.0),
            timeout: job.timeout.map(|t| t.0),
        };
        let r = recovery.unwrap_or(LocalRecovery {
            enabled: true,
            command: None,
            args: None,
            env: BTreeMap::new(),
            memory_limit: None,
            timeout: None,
        });
        if !r.enabled {
            let overrides = r.command.is_some()
                || r.args.is_some()
                || !r.env.is_empty()
                || r.memory_limit.is_some()
                || r.timeout.is_some();
            if overrides {
                return Err(err(
                    "recovery.enabled",
                    "is false, so the other [recovery] fields would be ignored: remove them, or set enabled = true",
                ));
            }
            return Ok(LocalSpec {
                normal,
                recovery: None,
            });
        }
        let mut recovery = normal.clone();
        match (r.command, r.args) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "recovery.args",
                    "give either recovery.command (the whole command) or recovery.args (the arguments after the program), not both",
                ))
            }
            (Some(c), None) => {
                check_command(&c).map_err(|m| err("recovery.command", m))?;
                recovery.command = absolute_program(c, recovery.workdir.as_deref().unwrap_or(base));
            }
            (None, Some(a)) => {
                recovery.command.truncate(1);
                recovery.command.extend(a);
            }
            (None, None) => {}
        }
        recovery.env.extend(r.env);
        if let Some(m) = r.memory_limit {
            if m.0 == 0 {
                return Err(err(
                    "recovery.memory_limit",
                    "must be more than 0 (e.g. \"1GiB\")",
                ));
            }
            recovery.memory_limit = Some(m.0);
        }
        if let Some(t) = r.timeout {
            if t.0.is_zero() {
                return Err(err(
                    "recovery.timeout",
                    "must be more than 0 (e.g. \"20m\")",
                ));
            }
            recovery.timeout = Some(t.0);
        }
        Ok(LocalSpec {
            normal,
            recovery: Some(recovery),
        })
    }

    /// Checks on this machine that every shape can start (program found and executable,
    /// workdir a directory, arguments within the kernel's limits), with the environment the
    /// job will get. A failure names `file`, the field and what to do.
    pub fn check_startable(&self, file: &str) -> Result<(), SpecError> {
        let shapes = [
            ("job", Some(&self.normal)),
            ("recovery", self.recovery.as_ref()),
        ];
        for (table, shaped) in shapes {
            let Some(shaped) = shaped else { continue };
            super::startable::check(shaped, &super::env::for_job(&shaped.env)).map_err(|e| {
                let field = match e {
                    super::startable::Unstartable::Workdir { .. } => "workdir",
                    _ => "command",
                };
                SpecError::Value {
                    file: file.into(),
                    field: format!("{table}.{field}"),
                    message: e.to_string(),
                }
            })?;
        }
        Ok(())
    }

    /// What the recovery shape changes, in words (for the run's history).
    pub fn describe_recovery(&self) -> String {
        let Some(r) = &self.recovery else {
            return "no recovery shape ([recovery] enabled = false)".into();
        };
        let n = &self.normal;
        let mut parts =
            vec!["runs alone (no other local job of this jobs directory beside it)".to_string()];
        if r.command != n.command {
            parts.push(format!("command {:?} -> {:?}", n.command, r.command));
        }
        let size = |m: Option<u64>| m.map_or("none".to_string(), |b| ByteSize(b).to_string());
        let dur =
            |d: Option<Duration>| d.map_or("none".to_string(), |d| HumanDuration(d).to_string());
        if r.memory_limit == n.memory_limit {
            if n.memory_limit.is_some() {
                parts.push(format!("memory_limit {} kept", size(n.memory_limit)));
            }
        } else {
            parts.push(format!(
                "memory_limit {} -> {}",
                size(n.memory_limit),
                size(r.memory_limit)
            ));
        }
        if r.timeout != n.timeout {
            parts.push(format!("timeout {} -> {}", dur(n.timeout), dur(r.timeout)));
        }
        let changed: Vec<&str> = r
            .env
            .iter()
            .filter(|(k, v)| n.env.get(*k) != Some(*v))
            .map(|(k, _)| k.as_str())
            .collect();
        if !changed.is_empty() {
            parts.push(format!("env {} set", changed.join(", ")));
        }
        parts.join("; ")
    }
}

/// Makes a relative program path (one containing `/`) absolute against `dir`; a bare name is
/// left for the `PATH` lookup at launch.
fn absolute_program(mut command: Vec<String>, dir: &Path) -> Vec<String> {
    if let Some(p) = command.first_mut() {
        if p.contains('/') && Path::new(p.as_str()).is_relative() {
            if let Some(abs) = dir.join(p.as_str()).to_str() {
                *p = abs.to_string();
            }
        }
    }
    command
}

fn check_command(c: &[String]) -> Result<(), &'static str> {
    match c.first() {
        None => Err("is empty: give the program and its arguments, e.g. command = [\"python3\", \"train.py\"]"),
        Some(p) if p.is_empty() => Err("the program (first element) is an empty string: name a program"),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Result<LocalSpec, SpecError> {
        let f = tether_core::spec::parse_spec::<LocalJob, LocalRecovery>("s.toml", text)?;
        LocalSpec::new("s.toml", f.job, f.recovery, Path::new("/base"))
    }

    #[test]
    fn recovery_args_keep_the_program_and_command_replaces_everything() {
        let s = spec("[job]\nkind='local'\ncommand=['py','a.py','--big']\nworkdir='w'\n[recovery]\nargs=['a.py','--small']\ntimeout='20m'\n").unwrap();
        assert_eq!(s.normal.workdir, Some(PathBuf::from("/base/w")));
        let s2 = spec("[job]\nkind='local'\ncommand=['./x.sh']\n[recovery]\ncommand=['bin/y']\n")
            .unwrap();
        assert_eq!(s2.normal.command, ["/base/./x.sh"]);
        assert_eq!(s2.recovery.unwrap().command, ["/base/bin/y"]);
        let r = s.recovery.as_ref().unwrap();
        assert_eq!(r.command, ["py", "a.py", "--small"]);
        assert_eq!(r.timeout, Some(Duration::from_secs(1200)));
        let d = s.describe_recovery();
        assert!(d.starts_with("runs alone"), "{d}");
        assert!(
            d.contains("--small") && d.contains("timeout none -> 1200s"),
            "{d}"
        );
        let s =
            spec("[job]\nkind='local'\ncommand=['a']\n[recovery]\ncommand=['b','c']\n").unwrap();
        assert_eq!(s.recovery.unwrap().command, ["b", "c"]);
    }

    #[test]
    fn without_overrides_the_recovery_shape_only_runs_alone() {
        let s = spec("[job]\nkind='local'\ncommand=['a']\nmemory_limit='1GiB'\n").unwrap();
        assert_eq!(s.recovery.as_ref().unwrap().command, s.normal.command);
        assert_eq!(s.describe_recovery(), "runs alone (no other local job of this jobs directory beside it); memory_limit 1GiB kept");
        let s = spec("[job]\nkind='local'\ncommand=['a']\n[recovery]\nenabled=false\n").unwrap();
        assert!(s.recovery.is_none());
    }

    #[test]
    fn unusable_values_name_their_field() {
        let e = spec("[job]\nkind='local'\ncommand=['']\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("job.command") && e.contains("empty string"),
            "{e}"
        );
        let e = spec("[job]\nkind='local'\ncommand=['a']\nmemory_limit=0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("job.memory_limit"), "{e}");
        let e = spec("[job]\nkind='local'\ncommand=['a']\n[recovery]\ncommand=[]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("recovery.command"), "{e}");
        let e = spec("[job]\nkind='local'\ncommand=['a']\n[recovery]\nmemory_limit='0'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("recovery.memory_limit"), "{e}");
    }
}
