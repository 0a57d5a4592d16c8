//! Starting the job's program for the supervisor: its own session (and cgroup), its logs
//! (opened without following links), its scrubbed environment and its directory.
use std::{
    ffi::CString,
    os::unix::ffi::OsStrExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use super::{
    env, files,
    layout::{JobDescription, JobDir},
    memory::Cgroup,
    sys,
};

/// Why the job's program could not be started; the message becomes the status message.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// `job.json` has no command.
    #[error("job.command is empty; give at least the program")]
    EmptyCommand,
    /// A log file could not be opened.
    #[error("cannot open {path}: {source}; check that the jobs directory is writable")]
    Log {
        /// The log file.
        path: PathBuf,
        /// The underlying error, kept as the source.
        source: std::io::Error,
    },
    /// The cgroup's path cannot be handed to the kernel.
    #[error("the cgroup path {0} contains a NUL byte")]
    CgroupPath(PathBuf),
    /// fork/exec failed: program missing or not executable, bad working directory.
    #[error("could not start {program:?}{workdir}: {source}; check job.command and job.workdir")]
    Exec {
        /// The program.
        program: String,
        /// ` in <dir>` when a workdir was given.
        workdir: String,
        /// The underlying error, kept as the source.
        source: std::io::Error,
    },
}

/// Starts the job's program in its own session, with its logs, environment and directory.
pub(super) fn spawn_job(
    dir: &JobDir,
    desc: &JobDescription,
    cgroup: Option<&Cgroup>,
) -> Result<Child, SpawnError> {
    let Some((program, args)) = desc.command.split_first() else {
        return Err(SpawnError::EmptyCommand);
    };
    // Never through a link planted in the job directory, never into another user's file.
    let open_log = |path: PathBuf| match files::open_append(&path) {
        Ok(f) => Ok(f),
        Err(source) => Err(SpawnError::Log { path, source }),
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(env::for_job(&desc.env))
        .stdin(Stdio::null())
        .stdout(open_log(dir.stdout())?)
        .stderr(open_log(dir.stderr())?);
    if let Some(wd) = &desc.workdir {
        cmd.current_dir(wd);
    }
    let procs = match cgroup {
        Some(cg) => Some(
            CString::new(cg.procs_file().as_os_str().as_bytes())
                .map_err(|_| SpawnError::CgroupPath(cg.procs_file()))?,
        ),
        None => None,
    };
    sys::detach_on_exec(&mut cmd, procs);
    cmd.spawn().map_err(|source| SpawnError::Exec {
        program: program.clone(),
        workdir: desc
            .workdir
            .as_ref()
            .map_or(String::new(), |w| format!(" in {}", w.display())),
        source,
    })
}

/// `412.3MiB`-style rendering for messages.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, m) in UNITS {
        if b >= m {
            #[allow(clippy::cast_precision_loss)]
            return format!("{:.1}{unit}", b as f64 / m as f64);
        }
    }
    format!("{b}B")
}
