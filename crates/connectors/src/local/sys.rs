//! The few system calls the local backend needs that `std` does not wrap: `setsid`, `kill`,
//! `flock`, `pidfd_open`/`poll` and a minimal signal handler. Every `unsafe` block of the backend lives here.
//!
//! ## Guarantees
//! - Each wrapper is a single system call on plain integers or on a file descriptor owned by a
//!   live [`File`]; none of them touches memory owned by Rust.
//!
//! ## Assumptions
//! - Linux (or another Unix with `flock` and `setsid`).
//!
//! ## Caveats
//! - `flock` locks belong to the open file description: they are released when the last
//!   descriptor of it closes (our [`File`]s are close-on-exec, so jobs never inherit them).
use std::{
    ffi::CString,
    fs::File,
    io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::process::CommandExt,
    },
    process::Command,
    sync::atomic::{AtomicI32, Ordering},
};

/// Signal numbers, re-exported so the rest of the backend needs no `libc`.
pub use libc::{SIGHUP, SIGINT, SIGKILL, SIGTERM};

/// Makes the calling process the leader of a new session (and process group), detached from
/// any controlling terminal, so terminal hang-ups and Ctrl-C aimed at tether never reach it.
pub fn setsid() -> io::Result<()> {
    // SAFETY: setsid takes no arguments and touches no memory of ours.
    #[allow(unsafe_code)]
    let r = unsafe { libc::setsid() };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Arranges for the child started by `cmd` to call `setsid` (own session and process group,
/// whose id is its pid) and, when `cgroup_procs` is given, to move itself into that cgroup
/// (by writing `0` to its `cgroup.procs`) before `exec`. Moving before `exec` means nothing the
/// job allocates or forks can escape the memory limit.
pub fn detach_on_exec(cmd: &mut Command, cgroup_procs: Option<CString>) {
    let hook = move || -> io::Result<()> {
        // SAFETY: between fork and exec only async-signal-safe calls are allowed: setsid, open,
        // write and close are, and `cgroup_procs` was allocated before the fork. No allocation
        // happens here (`last_os_error` builds an error from errno without allocating).
        #[allow(unsafe_code)]
        unsafe {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(path) = &cgroup_procs {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                let err = io::Error::last_os_error();
                libc::close(fd);
                if !ok {
                    return Err(err);
                }
            }
        }
        Ok(())
    };
    // SAFETY: the hook only makes async-signal-safe system calls (see above).
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// Sends `sig` to the whole process group `pgid`. `Ok(false)` when the group no longer exists.
pub fn kill_group(pgid: i32, sig: i32) -> io::Result<bool> {
    if pgid <= 1 {
        // -1 or -0 would mean "every process" / "our own group": never what we want.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to signal process group {pgid}"),
        ));
    }
    signal_raw(-pgid, sig)
}

/// Sends `sig` to the single process `pid`. `Ok(false)` when it no longer exists.
pub fn kill_pid(pid: i32, sig: i32) -> io::Result<bool> {
    if pid <= 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to signal pid {pid}"),
        ));
    }
    signal_raw(pid, sig)
}

fn signal_raw(target: i32, sig: i32) -> io::Result<bool> {
    // SAFETY: kill takes two integers and touches no memory of ours; callers rule out 0 and -1.
    #[allow(unsafe_code)]
    let r = unsafe { libc::kill(target, sig) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ESRCH) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Highest resident memory of any single reaped child of ours (and of the descendants it
/// reaped), in bytes: `getrusage(RUSAGE_CHILDREN).ru_maxrss`. Catches spikes a sampler misses.
pub fn reaped_children_max_rss() -> io::Result<u64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable rusage that getrusage fills in; it is only read
    // after a successful call.
    #[allow(unsafe_code)]
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        usage.assume_init()
    };
    // Linux reports kilobytes.
    Ok(u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024)
}

/// The effective user id of this process (owner of the files it creates).
pub fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid()
    }
}

/// The kernel's limit on the total size of a new program's arguments and environment
/// (`sysconf(_SC_ARG_MAX)`), or 128 KiB (the smallest Linux allows) when unknown.
pub fn arg_max() -> usize {
    // SAFETY: sysconf takes an integer and touches no memory of ours.
    #[allow(unsafe_code)]
    let n = unsafe { libc::sysconf(libc::_SC_ARG_MAX) };
    usize::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(128 * 1024)
}

/// A pidfd of process `pid` (`pidfd_open(2)`, Linux 5.3+): it becomes readable when the
/// process exits, whoever its parent is, and it keeps naming that very process even if the
/// pid is reused afterwards (check the process's identity after opening it).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    if pid <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no pidfd for pid {pid}"),
        ));
    }
    // SAFETY: pidfd_open takes two integers and touches no memory of ours.
    #[allow(unsafe_code)]
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, libc::PIDFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(io::Error::other)?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    #[allow(unsafe_code)]
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Waits until the process of `pidfd` exits or `timeout` passes, blocking (`poll(2)`):
/// `Ok(true)` once it exited. A signal ends the wait early (`Ok(false)`), so the caller
/// notices a termination request at once.
pub fn wait_exit(pidfd: &OwnedFd, timeout: std::time::Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfd` is a valid pollfd on our stack for the duration of the call, and the
    // descriptor belongs to `pidfd`, which outlives it.
    #[allow(unsafe_code)]
    let r = unsafe { libc::poll(&mut pfd, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(r > 0)
}

/// Registers a pidfd with the tokio reactor, so its exit can be awaited. Needs a runtime with
/// I/O enabled, as the backend's `tokio::process` calls already do.
pub fn async_pidfd(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the `OwnedFd` owns an open descriptor and is moved into the `AsyncFd`, which
    // keeps it open, unchanged, until it is dropped.
    #[allow(unsafe_code)]
    let registered = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    };
    registered.map_err(io::Error::from)
}

/// Which kind of `flock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Many holders at once.
    Shared,
    /// One holder, nobody else.
    Exclusive,
}

/// Tries to take a `flock` on `file` without blocking: `Ok(false)` when someone else holds a
/// conflicting lock.
pub fn try_flock(file: &File, kind: LockKind) -> io::Result<bool> {
    let op = match kind {
        LockKind::Shared => libc::LOCK_SH,
        LockKind::Exclusive => libc::LOCK_EX,
    } | libc::LOCK_NB;
    // SAFETY: the descriptor belongs to `file`, which outlives the call; flock touches no memory.
    #[allow(unsafe_code)]
    let r = unsafe { libc::flock(file.as_raw_fd(), op) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// The last termination signal received since [`install_termination_handler`], or 0.
static SIGNALLED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_termination_signal(sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    SIGNALLED.store(sig, Ordering::SeqCst);
}

/// Makes SIGTERM, SIGINT and SIGHUP set a flag ([`termination_signal`]) instead of killing the
/// process, so the supervisor can forward them to the job and still record the outcome.
/// Handlers are reset to the default by `exec`, so the job is unaffected.
pub fn install_termination_handler() -> io::Result<()> {
    for sig in [SIGTERM, SIGINT, SIGHUP] {
        let handler = on_termination_signal as extern "C" fn(libc::c_int);
        // SAFETY: the handler only performs an atomic store, which is async-signal-safe, and
        // is a plain `extern "C"` function that lives for the whole program.
        #[allow(unsafe_code)]
        let r = unsafe { libc::signal(sig, handler as libc::sighandler_t) };
        if r == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The termination signal received, if any (see [`install_termination_handler`]).
pub fn termination_signal() -> Option<i32> {
    match SIGNALLED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Conventional name of a signal number, for messages.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGXCPU => "SIGXCPU",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Field `n` (1-based) of `/proc/<pid>/stat`, counted from after the command name.
    fn stat_field(pid: u32, n: usize) -> i64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let rest = &s[s.rfind(')').unwrap() + 1..];
        rest.split_whitespace().nth(n - 3).unwrap().parse().unwrap()
    }

    #[test]
    fn a_detached_child_leads_its_own_session_and_group_and_dies_with_its_group() {
        let mut cmd = Command::new("sleep");
        cmd.arg("600");
        detach_on_exec(&mut cmd, None);
        let mut child = cmd.spawn().unwrap();
        let pid = child.id();
        assert_eq!(stat_field(pid, 5), i64::from(pid), "process group");
        assert_eq!(stat_field(pid, 6), i64::from(pid), "session");
        assert_ne!(stat_field(pid, 6), stat_field(std::process::id(), 6));
        assert!(kill_group(pid as i32, SIGKILL).unwrap());
        let status = std::os::unix::process::ExitStatusExt::signal(&child.wait().unwrap());
        assert_eq!(status, Some(SIGKILL));
        assert!(
            !kill_group(pid as i32, SIGKILL).unwrap(),
            "the group is gone"
        );
        assert!(kill_group(1, SIGKILL).is_err() && kill_group(0, SIGKILL).is_err());
    }

    #[test]
    fn a_pidfd_wait_ends_at_the_exit_not_at_the_timeout() {
        let mut child = Command::new("sleep").arg("0.3").spawn().unwrap();
        let fd = pidfd_open(child.id() as i32).unwrap();
        assert!(
            !wait_exit(&fd, std::time::Duration::ZERO).unwrap(),
            "running"
        );
        let t = std::time::Instant::now();
        assert!(wait_exit(&fd, std::time::Duration::from_secs(60)).unwrap());
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "{:?}",
            t.elapsed()
        );
        // Exited but not reaped yet: still readable; reaping works as usual.
        assert!(wait_exit(&fd, std::time::Duration::ZERO).unwrap());
        assert!(child.wait().unwrap().success());
        assert!(pidfd_open(0).is_err());
    }

    #[test]
    fn flock_conflicts_between_open_file_descriptions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        let a = File::create(&path).unwrap();
        let b = File::open(&path).unwrap();
        assert!(try_flock(&a, LockKind::Shared).unwrap());
        assert!(
            try_flock(&b, LockKind::Shared).unwrap(),
            "shared locks coexist"
        );
        assert!(!try_flock(&File::open(&path).unwrap(), LockKind::Exclusive).unwrap());
        drop((a, b));
        assert!(
            try_flock(&File::open(&path).unwrap(), LockKind::Exclusive).unwrap(),
            "released on close"
        );
    }
}
