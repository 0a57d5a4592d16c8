//! Who a process is: pid, start time and boot id, read from `/proc`, and the atomic file writes
//! every record of the local backend goes through.
//!
//! ## Guarantees
//! - A process is taken for ours only if its pid, its start time (field 22 of
//!   `/proc/PID/stat`, in clock ticks since boot) and the machine's boot id all match what was
//!   recorded; a pid reused by another process, or the same pid after a reboot, never matches.
//! - A zombie (state `Z`) or dead (`X`) process counts as gone: it will never write anything.
//! - [`write_atomic`] leaves either the old or the new content under the name, never a mix,
//!   and the new content is on disk (file and directory fsynced) when it returns.
//! - [`read_json`] trusts only records owned by this user and never follows a link.
//!
//! ## Assumptions
//! - Linux `/proc` is mounted and shows the processes of our pid namespace.
//!
//! ## Caveats
//! - Start times have clock-tick resolution (usually 10 ms): a pid reused within the same tick
//!   would be mistaken for ours; pids are reused far more slowly than that in practice.
use std::{fs, io, path::Path};

use serde::{Deserialize, Serialize};

/// The identity of a process across pid reuse and reboots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Process id.
    pub pid: i32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_time: u64,
    /// `/proc/sys/kernel/random/boot_id` when the process ran.
    pub boot_id: String,
}

impl Identity {
    /// The identity of the calling process.
    pub fn of_self() -> io::Result<Identity> {
        let pid = i32::try_from(std::process::id()).map_err(io::Error::other)?;
        Identity::of_pid(pid)
    }

    /// The identity of a running process.
    pub fn of_pid(pid: i32) -> io::Result<Identity> {
        let stat = ProcStat::read(pid)?;
        Ok(Identity {
            pid,
            start_time: stat.start_time,
            boot_id: boot_id()?,
        })
    }

    /// The external id naming this process: `"<pid>:<start time>"`.
    pub fn external_id(&self) -> String {
        format!("{}:{}", self.pid, self.start_time)
    }

    /// Is this very process still running (not a zombie) on this boot?
    pub fn liveness(&self) -> io::Result<Liveness> {
        let now = boot_id()?;
        if now != self.boot_id {
            return Ok(Liveness::Gone(format!(
                "the machine was rebooted since (boot id {} then, {now} now)",
                self.boot_id
            )));
        }
        match ProcStat::read(self.pid) {
            Ok(stat) if stat.start_time != self.start_time => Ok(Liveness::Gone(format!(
                "pid {} now belongs to another process (start time {} instead of {})",
                self.pid, stat.start_time, self.start_time
            ))),
            Ok(stat) if matches!(stat.state, 'Z' | 'X' | 'x') => Ok(Liveness::Gone(format!(
                "pid {} has exited (state {})",
                self.pid, stat.state
            ))),
            Ok(_) => Ok(Liveness::Alive),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Ok(Liveness::Gone(format!("pid {} no longer exists", self.pid)))
            }
            Err(e) => Err(e),
        }
    }
}

/// Answer of [`Identity::liveness`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// The recorded process runs.
    Alive,
    /// It is gone; why, in words.
    Gone(String),
}

/// Parses an external id `"<pid>:<start time>"`.
pub fn parse_external_id(id: &str) -> Option<(i32, u64)> {
    let (pid, start) = id.split_once(':')?;
    let pid: i32 = pid.parse().ok()?;
    (pid > 0).then_some(())?;
    Some((pid, start.parse().ok()?))
}

/// The fields of `/proc/PID/stat` we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// State letter (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Parent process id.
    pub ppid: i32,
    /// Process group id.
    pub pgid: i32,
    /// Start time in clock ticks since boot.
    pub start_time: u64,
}

impl ProcStat {
    /// Reads `/proc/<pid>/stat`. `NotFound` when the process does not exist.
    pub fn read(pid: i32) -> io::Result<ProcStat> {
        let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
        ProcStat::parse(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unparsable /proc/{pid}/stat: {text:?}"),
            )
        })
    }

    /// Parses the text of a stat file. The command name (field 2) may contain spaces and
    /// parentheses, so fields are counted from the last `)`.
    pub fn parse(text: &str) -> Option<ProcStat> {
        let rest = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // rest starts at field 3 (state): field n is fields[n - 3].
        Some(ProcStat {
            state: fields.first()?.chars().next()?,
            ppid: fields.get(1)?.parse().ok()?,
            pgid: fields.get(2)?.parse().ok()?,
            start_time: fields.get(19)?.parse().ok()?,
        })
    }
}

/// The current boot id.
pub fn boot_id() -> io::Result<String> {
    Ok(fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_string())
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Writes `data` to `path` atomically (see [`super::files::write_atomic`]: `O_EXCL` temporary
/// file with a random name, mode `0600`, fsync, rename, directory fsync).
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    super::files::write_atomic(path, data)
}

/// Serialises `value` as JSON and writes it with [`write_atomic`].
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let data = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    write_atomic(path, &data)
}

/// Reads a JSON record: `Ok(None)` when it does not exist, `Err` when unreadable, unparsable,
/// a symbolic link or owned by another user (see [`super::files::read_owned`]): a record
/// someone else could have written is never trusted.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match super::files::read_owned(path)? {
        Some(data) => serde_json::from_slice(&data).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let line =
            "1234 (a b) c)) S 1 1200 1200 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 50";
        let s = ProcStat::parse(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.pgid, 1200);
        assert_eq!(s.start_time, 98765);
        assert!(ProcStat::parse("garbage").is_none());
    }

    #[test]
    fn own_identity_is_alive_and_a_wrong_start_time_is_not() {
        let me = Identity::of_self().unwrap();
        assert_eq!(me.liveness().unwrap(), Liveness::Alive);
        let forged = Identity {
            start_time: me.start_time + 1,
            ..me.clone()
        };
        assert!(
            matches!(forged.liveness().unwrap(), Liveness::Gone(m) if m.contains("another process"))
        );
        let rebooted = Identity {
            boot_id: "not-this-boot".into(),
            ..me.clone()
        };
        assert!(
            matches!(rebooted.liveness().unwrap(), Liveness::Gone(m) if m.contains("rebooted"))
        );
        assert_eq!(
            parse_external_id(&me.external_id()),
            Some((me.pid, me.start_time))
        );
        assert_eq!(parse_external_id("x:1"), None);
        assert_eq!(parse_external_id("0:1"), None);
    }

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left behind"
        );
        assert_eq!(read_json::<u32>(&dir.path().join("missing")).unwrap(), None);
    }
}
