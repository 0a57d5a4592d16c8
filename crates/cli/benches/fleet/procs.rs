//! Processes the bench starts, and what it reads about them from `/proc`.
//!
//! Every process is held by a guard that SIGKILLs (and reaps) it on drop, so a panicking bench
//! leaves nothing behind. Local jobs run detached under their supervisors (own sessions), so
//! [`JobsReaper`] finds them through their `supervisor.json` records and kills them on drop.
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Milliseconds since the Unix epoch (the clock the history's `at_ms` uses).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A `tether` process with its own settings; SIGKILLed and reaped on drop.
pub struct Tether {
    child: Option<Child>,
}

impl Tether {
    /// Starts `tether <args>` with `TETHER_STATE=state`, `TETHER_JOBS_DIR=jobs`, no user config,
    /// `TETHER_LEASE_TTL=ttl` (unset: the default), stdout/stderr to `log`, with owner liveness on
    /// or off (`TETHER_LIVENESS`; off: the design before it).
    pub fn spawn_with(
        state: &str,
        jobs: &Path,
        ttl: Option<&str>,
        liveness: bool,
        args: &[&str],
        log: &Path,
    ) -> Self {
        Self::spawn_env(state, jobs, ttl, liveness, &[], args, log)
    }

    /// Same, with more environment variables (e.g. `TETHER_BULK_STATUS`).
    pub fn spawn_env(
        state: &str,
        jobs: &Path,
        ttl: Option<&str>,
        liveness: bool,
        envs: &[(&str, &str)],
        args: &[&str],
        log: &Path,
    ) -> Self {
        // `FLEET_WRAP="heaptrack -o /tmp/w"`: run the process under a profiler (pid and
        // /proc figures are then the wrapper's).
        let wrap = std::env::var("FLEET_WRAP").unwrap_or_default();
        let mut wrap = wrap.split_whitespace();
        let mut c = match wrap.next() {
            Some(program) => {
                let mut c = Command::new(program);
                c.args(wrap).arg(env!("CARGO_BIN_EXE_tether"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_tether")),
        };
        c.args(args)
            .envs(envs.iter().copied())
            .env("TETHER_LIVENESS", if liveness { "on" } else { "off" })
            .env("TETHER_STATE", state)
            .env("TETHER_JOBS_DIR", jobs)
            .env("XDG_CONFIG_HOME", jobs.with_extension("config"))
            .env_remove("TETHER_FAULT")
            .env_remove("TETHER_CONFIG")
            .env_remove("TETHER_LEASE_TTL")
            .stdin(Stdio::null());
        if let Some(ttl) = ttl {
            c.env("TETHER_LEASE_TTL", ttl);
        }
        let out = std::fs::File::create(log).expect("create worker log");
        c.stdout(out.try_clone().expect("dup log")).stderr(out);
        Tether {
            child: Some(c.spawn().expect("spawn tether")),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGKILL now; returns the wall time (ms) just before the signal.
    pub fn kill_now(&mut self) -> i64 {
        let at = now_ms();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        at
    }

    /// Waits up to `limit` for the process to exit by itself: whether it exited with 0.
    /// Polled every millisecond, so that a wall time taken around it is not rounded up.
    pub fn wait(&mut self, limit: Duration) -> anyhow::Result<bool> {
        let c = self
            .child
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("no process"))?;
        let until = std::time::Instant::now() + limit;
        while std::time::Instant::now() < until {
            if let Some(status) = c.try_wait()? {
                self.child = None;
                return Ok(status.success());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        anyhow::bail!("still running after {limit:?}")
    }

    /// SIGTERM, then wait up to `grace` (SIGKILL after that).
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let until = std::time::Instant::now() + grace;
        while std::time::Instant::now() < until {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Tether {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// Kills, on drop (or [`JobsReaper::reap`]), every local job and supervisor recorded under a jobs
/// directory: the job's process group first, then the supervisor.
pub struct JobsReaper(pub PathBuf);

impl JobsReaper {
    /// Returns how many processes were signalled.
    pub fn reap(&self) -> usize {
        let mut n = 0;
        let Ok(dirs) = std::fs::read_dir(&self.0) else {
            return 0;
        };
        for d in dirs.flatten() {
            let Ok(text) = std::fs::read_to_string(d.path().join("supervisor.json")) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let job = &v["job"];
            if let (Some(pgid), Some(start)) = (job["pgid"].as_i64(), job["start_time"].as_u64()) {
                if start_time(job["pid"].as_i64().unwrap_or(0)) == Some(start) {
                    n += usize::from(kill(&format!("-{pgid}")));
                }
            }
            let sup = &v["supervisor"];
            if let (Some(pid), Some(start)) = (sup["pid"].as_i64(), sup["start_time"].as_u64()) {
                if start_time(pid) == Some(start) {
                    n += usize::from(kill(&pid.to_string()));
                }
            }
        }
        n
    }
}

impl Drop for JobsReaper {
    fn drop(&mut self) {
        self.reap();
    }
}

fn kill(target: &str) -> bool {
    Command::new("kill")
        .args(["-KILL", "--", target])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Field 22 of `/proc/PID/stat` (guards the reaper against reused pids).
fn start_time(pid: i64) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// The fields of `/proc/PID/stat` after the command name: index 0 is field 3 (state).
fn stat_fields(pid: i64) -> Option<Vec<String>> {
    if pid <= 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let f = stat_fields(i64::from(pid))?;
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clk_tck())
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// A `kB` line of `/proc/PID/status` (`VmRSS`, `VmHWM`) in MiB, or a plain count (`Threads`).
pub fn proc_status(pid: u32, field: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(&format!("{field}:")))?;
    let mut parts = line.split_whitespace().skip(1);
    let n: f64 = parts.next()?.parse().ok()?;
    Some(if parts.next() == Some("kB") {
        n / 1024.0
    } else {
        n
    })
}

/// Open file descriptors of a process, and how many of them are sockets.
pub fn fds(pid: u32) -> (usize, usize) {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return (0, 0);
    };
    let mut all = 0;
    let mut sockets = 0;
    for e in dir.flatten() {
        all += 1;
        if std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")) {
            sockets += 1;
        }
    }
    (all, sockets)
}

/// p-th percentile (nearest rank) of sorted values.
/// The `rounds | min | p50 | p99 | max` cells of a result row over sorted `times` (ms).
pub fn latency_cells(times: &[i64], rounds: usize) -> String {
    format!(
        "{:>6} | {:>7} | {:>7} | {:>7} | {:>7} |",
        format!("{}x{}", rounds, times.len() / rounds.max(1)),
        times.first().copied().unwrap_or(0),
        percentile(times, 50.0),
        percentile(times, 99.0),
        times.last().copied().unwrap_or(0),
    )
}

pub fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
