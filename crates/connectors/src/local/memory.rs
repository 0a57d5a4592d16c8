//! Watching and limiting the memory of a job: a cgroup v2 child where one can be made with the
//! memory controller, else a watchdog that samples the resident memory of the job's process
//! group from `/proc`.
//!
//! ## Guarantees
//! - With a cgroup, the kernel enforces `memory.max` for the job and everything it forks (the
//!   job joins the cgroup before `exec`); an OOM kill is read from `memory.events`.
//! - Without one, [`group_rss_bytes`] is sampled about every 100 ms by the supervisor, which
//!   kills the whole process group once the sum exceeds the limit.
//! - Peak memory is recorded either way (`memory.peak` when the kernel has it, else the highest
//!   sample).
//!
//! ## Assumptions
//! - Linux `/proc`; for the cgroup path, a cgroup v2 hierarchy in which the supervisor's cgroup
//!   may have children with the memory controller (typically: the supervisor runs in the root
//!   cgroup of a container, or in a delegated subtree).
//!
//! ## Caveats
//! - The watchdog sees only processes that stay in the job's process group and can miss a spike
//!   shorter than its sampling period; resident memory shared between processes is counted
//!   once per process (an over-estimate, on the safe side).
//! - A job the kernel OOM-kills for a limit that is not ours (container or machine) ends with
//!   SIGKILL and is reported as a signal, not as `oom`.
use std::{fs, io, path::PathBuf};

/// Sum of the resident memory of every process whose process group is `pgid`, in bytes.
pub fn group_rss_bytes(pgid: i32) -> u64 {
    let Ok(entries) = fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        // Processes come and go while we scan: a vanished one simply counts as zero.
        let Ok(stat) = super::identity::ProcStat::read(pid) else {
            continue;
        };
        if stat.pgid == pgid {
            total += rss_of(pid).unwrap_or(0);
        }
    }
    total
}

/// `VmRSS` of one process, in bytes (none for zombies and kernel threads).
fn rss_of(pid: i32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Why no memory cgroup could be made for a job; the supervisor then uses the watchdog.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No cgroup2 file system in `/proc/self/mountinfo`.
    #[error("no cgroup v2 hierarchy is mounted")]
    NoHierarchy,
    /// `/proc/self/cgroup` has no `0::` line.
    #[error("this process is in no cgroup v2")]
    NotInCgroup,
    /// mkdir failed (typically: not root and no delegated subtree).
    #[error("cannot create cgroup {path}: {source}")]
    Create {
        /// The cgroup directory.
        path: PathBuf,
        /// The underlying error, kept as the source.
        source: io::Error,
    },
    /// The memory controller cannot be enabled for our children.
    #[error("the memory controller is not available for children of {parent} (delegate it to this cgroup, or run tether where it is)")]
    NoMemoryController {
        /// Our cgroup.
        parent: PathBuf,
    },
    /// Writing `memory.max` failed.
    #[error("cannot set memory.max in {path}: {source}")]
    Limit {
        /// The cgroup directory.
        path: PathBuf,
        /// The underlying error, kept as the source.
        source: io::Error,
    },
}

/// A cgroup v2 made for one job.
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    /// Creates `<our cgroup>/<name>` with `memory.max = limit` (and no swap, so the limit means
    /// memory). `Err` says why a cgroup cannot be used; the caller then falls back to the
    /// watchdog.
    pub fn create(name: &str, limit: u64) -> Result<Cgroup, CgroupError> {
        let root = cgroup2_mount().ok_or(CgroupError::NoHierarchy)?;
        let own = own_cgroup2_path().ok_or(CgroupError::NotInCgroup)?;
        let parent = root.join(own.trim_start_matches('/'));
        let dir = parent.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(CgroupError::Create { path: dir, source }),
        }
        let cg = Cgroup { dir };
        if !cg.has_memory_controller() {
            // Enabling it fails when the parent holds processes (cgroup v2's "no internal
            // processes" rule); then there is nothing more we may do.
            let _ = fs::write(parent.join("cgroup.subtree_control"), "+memory");
        }
        if !cg.has_memory_controller() {
            let _ = cg.remove();
            return Err(CgroupError::NoMemoryController { parent });
        }
        if let Err(source) = fs::write(cg.dir.join("memory.max"), limit.to_string()) {
            let _ = cg.remove();
            return Err(CgroupError::Limit {
                path: cg.dir.clone(),
                source,
            });
        }
        // Best effort: without it, a machine with swap would swap instead of hitting the limit.
        let _ = fs::write(cg.dir.join("memory.swap.max"), "0");
        // Best effort: an OOM kill takes the whole job, not one arbitrary process of it.
        let _ = fs::write(cg.dir.join("memory.oom.group"), "1");
        Ok(cg)
    }

    fn has_memory_controller(&self) -> bool {
        fs::read_to_string(self.dir.join("cgroup.controllers"))
            .map(|c| c.split_whitespace().any(|w| w == "memory"))
            .unwrap_or(false)
    }

    /// The `cgroup.procs` file a process writes `0` to in order to join.
    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// Peak memory of the cgroup (`memory.peak`, kernels ≥ 5.19), in bytes.
    pub fn peak(&self) -> Option<u64> {
        fs::read_to_string(self.dir.join("memory.peak"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Current memory of the cgroup, in bytes.
    pub fn current(&self) -> Option<u64> {
        fs::read_to_string(self.dir.join("memory.current"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether the kernel OOM-killed a process of this cgroup.
    pub fn oom_killed(&self) -> bool {
        let Ok(events) = fs::read_to_string(self.dir.join("memory.events")) else {
            return false;
        };
        events.lines().any(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some("oom_kill")
                && w.next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0) > 0
        })
    }

    /// Removes the cgroup; false while it still holds processes (call after the job's group
    /// was killed, and retry briefly: the kernel empties it asynchronously).
    pub fn remove(&self) -> bool {
        fs::remove_dir(&self.dir).is_ok()
    }
}

fn cgroup2_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mount = left.split_whitespace().nth(4)?;
        (right.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(mount))
    })
}

fn own_cgroup2_path() -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_group_has_resident_memory() {
        let pgid = super::super::identity::ProcStat::read(std::process::id() as i32)
            .unwrap()
            .pgid;
        assert!(group_rss_bytes(pgid) > 0);
        assert_eq!(group_rss_bytes(i32::MAX), 0);
    }
}
