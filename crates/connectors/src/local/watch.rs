//! The supervisor's watch over a started job (step 6 and 7 of [`super::supervisor`]): reap,
//! sample memory, enforce the timeout, forward a cancel, and clean the process group up.
use std::{
    os::unix::process::ExitStatusExt,
    thread::sleep,
    time::{Duration, Instant},
};

use super::{
    identity::{now_ms, write_json_atomic, ProcStat},
    layout::{EndReason, JobDescription, JobDir, JobProcess, StatusRecord, SupervisorRecord},
    memory::{group_rss_bytes, Cgroup},
    spawn::{human_bytes, spawn_job},
    supervisor::{cancel_requested, ended, spawn_failed, TICK},
    sys,
};

/// Starts the job and watches it until it ended; returns its status record.
pub(super) fn supervise_job(
    dir: &JobDir,
    desc: &JobDescription,
    record: &mut SupervisorRecord,
) -> StatusRecord {
    let cgroup = desc.memory_limit.and_then(|limit| {
        match Cgroup::create(&format!("tether-{}", record.tag), limit) {
            Ok(cg) => Some(cg),
            Err(why) => {
                eprintln!("supervisor: no memory cgroup ({why}); using the watchdog");
                None
            }
        }
    });
    let started_at_ms = now_ms();
    let (mut child, cgroup) = match (spawn_job(dir, desc, cgroup.as_ref()), cgroup) {
        (Ok(c), cgroup) => (c, cgroup),
        // Joining the cgroup happens in the child before exec and may be what failed (e.g. a
        // cgroup that refuses processes): try once more with the watchdog instead.
        (Err(e), Some(cg)) => {
            let _ = cg.remove();
            eprintln!("supervisor: starting the job in its cgroup failed ({e}); retrying with the watchdog");
            match spawn_job(dir, desc, None) {
                Ok(c) => (c, None),
                Err(e) => return spawn_failed(&e),
            }
        }
        (Err(e), None) => return spawn_failed(&e),
    };
    let enforcement = match (desc.memory_limit, &cgroup) {
        (None, _) => "none",
        (Some(_), Some(_)) => "cgroup-v2",
        (Some(_), None) => "watchdog",
    };
    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    // The child is ours and unreaped, so its /proc entry exists.
    let start_time = ProcStat::read(pid).map(|s| s.start_time).unwrap_or(0);
    record.job = Some(JobProcess {
        pid,
        pgid: pid,
        start_time,
        started_at_ms,
        memory_enforcement: enforcement.into(),
    });
    if let Err(e) = write_json_atomic(&dir.supervisor(), &*record) {
        // The job runs and will be recorded at its end; status just cannot show its pid.
        eprintln!(
            "supervisor: cannot record the job's pid in {}: {e}",
            dir.supervisor().display()
        );
    }

    let started = Instant::now();
    // Waiting on the child's pidfd instead of sleeping a whole tick: a job's end is recorded
    // as soon as it happens (a short job's status is ready before its first poll).
    let exited = sys::pidfd_open(pid).ok();
    let timeout = desc.timeout_ms.map(Duration::from_millis);
    let grace = Duration::from_millis(desc.grace_ms);
    let mut reason: Option<EndReason> = None;
    let mut kill_at: Option<Instant> = None;
    let mut peak = 0u64;
    let mut over_by = 0u64;
    let exit = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(e) => {
                eprintln!("supervisor: cannot wait for the job: {e}");
                break None;
            }
        }
        let rss = match &cgroup {
            Some(cg) => cg.current().unwrap_or_else(|| group_rss_bytes(pid)),
            None => group_rss_bytes(pid),
        };
        peak = peak.max(rss);
        if let (Some(limit), None, None) = (desc.memory_limit, &cgroup, reason) {
            if rss > limit {
                // Memory is the emergency: no grace period.
                over_by = rss;
                reason = Some(EndReason::Oom);
                signal_group(pid, sys::SIGKILL);
            }
        }
        if reason.is_none() {
            if timeout.is_some_and(|t| started.elapsed() >= t) {
                reason = Some(EndReason::Timeout);
            } else if cancel_requested(dir) {
                reason = Some(EndReason::Cancelled);
            }
            if reason.is_some() {
                signal_group(pid, sys::SIGTERM);
                kill_at = Some(Instant::now() + grace);
            }
        }
        if kill_at.is_some_and(|t| Instant::now() >= t) {
            signal_group(pid, sys::SIGKILL);
            kill_at = None;
        }
        match &exited {
            Some(fd) if sys::wait_exit(fd, TICK).is_ok() => {}
            _ => sleep(TICK),
        }
    };
    // Leftovers of the group (background children) must not outlive the recorded end. The
    // leader's pid was freed just now; Linux hands out pids in sequence, so it cannot name a
    // new group this soon.
    signal_group(pid, sys::SIGKILL);
    let mut status = ended(EndReason::Exited, Some(started_at_ms), String::new());
    status.memory_enforcement = enforcement.into();
    if let Some(cg) = &cgroup {
        if cg.oom_killed() && reason.is_none() {
            reason = Some(EndReason::Oom);
        }
        peak = peak.max(cg.peak().unwrap_or(0));
        // Give the kernel a moment to empty the cgroup before removing it.
        for _ in 0..20 {
            if cg.remove() {
                break;
            }
            sleep(Duration::from_millis(50));
        }
    }
    // The job is our only child: the kernel's own high-water mark of it is exact for the
    // main process, where the samples may have missed a short spike.
    peak = peak.max(sys::reaped_children_max_rss().unwrap_or(0));
    status.peak_rss_bytes = peak;
    status.exit_code = exit.and_then(|e| e.code());
    status.signal = exit.and_then(|e| e.signal());
    let stderr_hint = format!("see {}", dir.stderr().display());
    let limit = desc.memory_limit.unwrap_or(0);
    let (reason, message) = match reason {
        Some(EndReason::Oom) => (
            EndReason::Oom,
            format!(
                "out of memory: the job's processes used {}, over memory_limit {} ({enforcement}); killed. Raise memory_limit or let the recovery shape retry it",
                human_bytes(over_by.max(peak)),
                tether_core::units::ByteSize(limit),
            ),
        ),
        Some(EndReason::Timeout) => (
            EndReason::Timeout,
            format!(
                "timeout: still running after {}; killed (SIGTERM, SIGKILL after {} ms). Raise timeout if it needs longer",
                tether_core::units::HumanDuration(timeout.unwrap_or_default()),
                desc.grace_ms
            ),
        ),
        Some(EndReason::Cancelled) => (EndReason::Cancelled, "cancelled: the job's process group was killed".into()),
        Some(other) => (other, format!("{other:?}")),
        None => match (status.exit_code, status.signal) {
            (Some(0), _) => (EndReason::Exited, "exited with code 0".into()),
            (Some(code), _) => (EndReason::Exited, format!("exited with code {code}; {stderr_hint}")),
            (None, Some(sig)) => (
                EndReason::Signaled,
                format!(
                    "killed by signal {sig} ({}), not sent by tether (another process, or the kernel's OOM killer for a limit that is not the job's); {stderr_hint}",
                    sys::signal_name(sig)
                ),
            ),
            (None, None) => (EndReason::Signaled, "the job's end could not be observed; it was killed".into()),
        },
    };
    status.reason = reason;
    status.message = message;
    status
}

fn signal_group(pgid: i32, sig: i32) {
    if let Err(e) = sys::kill_group(pgid, sig) {
        eprintln!(
            "supervisor: cannot send {} to process group {pgid}: {e}",
            sys::signal_name(sig)
        );
    }
}
