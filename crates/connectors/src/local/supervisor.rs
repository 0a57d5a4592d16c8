//! The supervisor: the small process of ours that runs one local job, detached from tether, and
//! writes down how it ended.
//!
//! It is started in two stages so that it never becomes a zombie child of a live tether:
//! the connector starts `<supervisor...> launch <dir>` and reaps it; `launch` starts
//! `<supervisor...> run <dir>` and exits at once, so `run` is re-parented to init (or the
//! nearest subreaper) and owes tether nothing.
//!
//! `run`:
//! 1. becomes a session leader (`setsid`) and turns SIGTERM/SIGINT/SIGHUP into cancel requests;
//! 2. takes `supervisor.lock` (exclusive, non-blocking) and gives up silently if another
//!    supervisor holds it or already ran here: one tag, one job, ever;
//! 3. writes `supervisor.json` with its identity (the connector's `submit` waits for it);
//! 4. takes the local slot (`<jobs_dir>/local.lock`, shared, or exclusive for the recovery
//!    shape), polling so that a cancel while waiting is honoured;
//! 5. starts the job in its own session and process group (in a memory cgroup if possible),
//!    records its pid and start time in `supervisor.json`;
//! 6. every ~100 ms: reaps it if it ended, samples its memory (kills the group over the limit),
//!    enforces the timeout, forwards a cancel (SIGTERM, then SIGKILL after the grace period);
//! 7. kills whatever the job left in its process group, writes `status.json` atomically, and
//!    only then releases the slot.
//!
//! ## Guarantees
//! - The job's outcome is on disk even when every tether process died: only the supervisor
//!   writes `status.json`, and it does not depend on tether being alive.
//! - Nothing of the job outlives its recorded end in its process group.
//! - A recovery-shape job never runs beside another job of the same jobs directory.
//!
//! ## Assumptions
//! - [`supervise_main`] is called in a single-threaded process, before any async runtime starts
//!   (it only uses blocking calls and plain threads are not needed).
//!
//! ## Caveats
//! - If the supervisor itself is SIGKILLed, the job keeps running unsupervised: its status is
//!   then lost (the connector reports `NotFound`) and the slot is released early.
//! - A job that starts its own session or process group escapes cancel, timeout and the
//!   watchdog (not a cgroup limit).
use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use tether_core::journal::Shape;

pub use super::spawn::{human_bytes, SpawnError};
use super::{
    env, files,
    identity::{now_ms, read_json, write_json_atomic, Identity},
    layout::{
        slot_lock, EndReason, JobDescription, JobDir, StatusRecord, SupervisorRecord,
        FORMAT_VERSION,
    },
    sys::{self, LockKind},
    watch::supervise_job,
};

/// How often the supervisor looks at its job.
pub(super) const TICK: Duration = Duration::from_millis(100);

/// Entry point of the supervisor. `args` are what follows the program (and its leading
/// arguments, e.g. `tether __supervise`): `launch <job dir>` or `run <job dir>`. Returns the
/// process exit code. Messages go to standard error (the connector points it at
/// `supervisor.log`).
pub fn supervise_main(args: &[String]) -> i32 {
    match args {
        [stage, dir] if stage == "launch" => launch(Path::new(dir)),
        [stage, dir] if stage == "run" => run(&JobDir::at(PathBuf::from(dir))),
        _ => {
            eprintln!(
                "usage: <supervisor> launch|run <job dir>\n(internal command of tether's local backend: tether starts it itself)"
            );
            2
        }
    }
}

/// Stage 1: start stage 2 and exit without waiting for it.
fn launch(dir: &Path) -> i32 {
    let jd = JobDir::at(dir.to_path_buf());
    let desc: JobDescription = match read_json(&jd.job()) {
        Ok(Some(d)) => d,
        Ok(None) => {
            eprintln!("supervisor launch: {} does not exist", jd.job().display());
            return 1;
        }
        Err(e) => {
            eprintln!("supervisor launch: cannot read {}: {e}", jd.job().display());
            return 1;
        }
    };
    let Some((program, lead)) = desc.supervisor.split_first() else {
        eprintln!("supervisor launch: job.json names no supervisor program");
        return 1;
    };
    let log = match files::open_append(&jd.supervisor_log()) {
        Ok(f) => Stdio::from(f),
        Err(_) => Stdio::null(),
    };
    let spawned = Command::new(program)
        .args(lead)
        .arg("run")
        .arg(dir)
        // Whoever started us, stage 2 and the job see nothing of the scrubbed variables.
        .env_clear()
        .envs(env::scrubbed())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn();
    match spawned {
        // Not waited for on purpose: we exit now and `run` is re-parented.
        Ok(_child) => 0,
        Err(e) => {
            eprintln!("supervisor launch: cannot start {program:?}: {e}");
            1
        }
    }
}

/// Stage 2: supervise the job of `dir`.
fn run(dir: &JobDir) -> i32 {
    if let Err(e) = sys::setsid() {
        // Only fails if we already lead a group; still detached enough to go on.
        eprintln!("supervisor: setsid failed ({e}); continuing");
    }
    if let Err(e) = sys::install_termination_handler() {
        eprintln!("supervisor: cannot handle termination signals ({e}); continuing");
    }
    let own_lock = match open_lock(&dir.supervisor_lock()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "supervisor: cannot open {}: {e}",
                dir.supervisor_lock().display()
            );
            return 1;
        }
    };
    // Retry for a while: a connector probing the lock holds it for an instant, and must not
    // make us give up. A supervisor that holds it for real holds it for its whole life.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match sys::try_flock(&own_lock, LockKind::Exclusive) {
            Ok(true) => break,
            Ok(false) if Instant::now() < deadline => sleep(Duration::from_millis(20)),
            Ok(false) => return 0, // another supervisor owns this directory
            Err(e) => {
                eprintln!(
                    "supervisor: cannot lock {}: {e}",
                    dir.supervisor_lock().display()
                );
                return 1;
            }
        }
    }
    if dir.supervisor().exists() {
        return 0; // a supervisor already ran here: never start the job twice
    }
    let me = match Identity::of_self() {
        Ok(me) => me,
        Err(e) => {
            eprintln!("supervisor: cannot read own identity from /proc: {e}");
            return 1;
        }
    };
    let tag = dir
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut record = SupervisorRecord {
        version: FORMAT_VERSION,
        tag,
        supervisor: me,
        job: None,
        waiting_for_slot: false,
    };
    if let Err(e) = write_json_atomic(&dir.supervisor(), &record) {
        eprintln!(
            "supervisor: cannot write {}: {e}",
            dir.supervisor().display()
        );
        return 1;
    }
    let desc = match read_json::<JobDescription>(&dir.job()) {
        Ok(Some(d)) if d.version == FORMAT_VERSION => d,
        other => {
            let why = match other {
                Ok(Some(d)) => format!("unsupported job.json version {}", d.version),
                Ok(None) => "job.json is missing".into(),
                Err(e) => format!("cannot read job.json: {e}"),
            };
            return finish(
                dir,
                ended(EndReason::SpawnFailed, None, format!("{why}; submit again")),
            );
        }
    };
    let _slot = match take_slot(dir, &desc, &mut record) {
        Ok(slot) => slot,
        Err(NoSlot::Cancelled) => {
            let message =
                "cancelled before it started (it was waiting for the local slot)".to_string();
            return finish(dir, ended(EndReason::Cancelled, None, message));
        }
        Err(NoSlot::Unsafe(message)) => {
            return finish(dir, ended(EndReason::SpawnFailed, None, message));
        }
    };
    let status = supervise_job(dir, &desc, &mut record);
    // `_slot` is released on return, after the status is on disk.
    finish(dir, status)
}

fn open_lock(path: &Path) -> std::io::Result<File> {
    files::open_lock(path)
}

/// Why the job does not get the local slot.
enum NoSlot {
    /// A cancel arrived while waiting for it.
    Cancelled,
    /// The lock file is a link or another user's: they could hold it forever.
    Unsafe(String),
}

/// Waits for the local slot. `Ok(None)`: the lock file cannot be opened for another reason
/// and the job runs without it (better than hanging forever; logged).
fn take_slot(
    dir: &JobDir,
    desc: &JobDescription,
    record: &mut SupervisorRecord,
) -> Result<Option<File>, NoSlot> {
    let kind = if desc.shape == Shape::Recovery {
        LockKind::Exclusive
    } else {
        LockKind::Shared
    };
    let path = slot_lock(&desc.jobs_dir);
    let file = match open_lock(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(NoSlot::Unsafe(format!(
                "not started: the local slot lock {e}"
            )));
        }
        Err(e) => {
            eprintln!(
                "supervisor: cannot open the slot lock {}: {e}; running without it",
                path.display()
            );
            return Ok(None);
        }
    };
    loop {
        match sys::try_flock(&file, kind) {
            Ok(true) => return Ok(Some(file)),
            Ok(false) if !record.waiting_for_slot => {
                // Tell `submit` (waiting for the job's start) that it may be a while.
                record.waiting_for_slot = true;
                if let Err(e) = write_json_atomic(&dir.supervisor(), &*record) {
                    eprintln!(
                        "supervisor: cannot write {}: {e}",
                        dir.supervisor().display()
                    );
                }
            }
            Ok(false) => {}
            Err(e) => {
                eprintln!(
                    "supervisor: cannot lock {}: {e}; running without the slot",
                    path.display()
                );
                return Ok(None);
            }
        }
        if cancel_requested(dir) {
            return Err(NoSlot::Cancelled);
        }
        sleep(TICK);
    }
}

pub(super) fn cancel_requested(dir: &JobDir) -> bool {
    sys::termination_signal().is_some() || dir.cancel().exists()
}

pub(super) fn ended(reason: EndReason, started: Option<u64>, message: String) -> StatusRecord {
    let end = now_ms();
    StatusRecord {
        version: FORMAT_VERSION,
        reason,
        exit_code: None,
        signal: None,
        peak_rss_bytes: 0,
        started_at_ms: started,
        ended_at_ms: end,
        duration_ms: started.map_or(0, |s| end.saturating_sub(s)),
        memory_enforcement: "none".into(),
        message,
        errno: None,
    }
}

/// The end of a job whose program could not be started, with the `errno` when there is one
/// (`submit` rejects the submission for errors that cannot heal).
pub(super) fn spawn_failed(e: &SpawnError) -> StatusRecord {
    let mut status = ended(EndReason::SpawnFailed, None, e.to_string());
    if let SpawnError::Exec { source, .. } = e {
        status.errno = source.raw_os_error();
    }
    status
}

fn finish(dir: &JobDir, status: StatusRecord) -> i32 {
    match write_json_atomic(&dir.status(), &status) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("supervisor: cannot write {}: {e}", dir.status().display());
            1
        }
    }
}
