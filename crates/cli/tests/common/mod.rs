//! Test harness: runs the real `tether` binary against a throwaway state directory.
#![allow(dead_code)]
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

pub mod tmux;

/// A state directory with its own SQLite store (or `state` override) and jobs dir.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub state: String,
    pub jobs: PathBuf,
    pub lease_ttl: String,
    /// Pids of the `tether` processes `spawn` started: killed when the env is dropped, so a
    /// failing test does not leave workers behind.
    spawned: std::sync::Mutex<Vec<(u32, Option<String>)>>,
}

/// Field 22 of /proc/PID/stat (start time): tells a process from a later one with its pid.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)
        .map(str::to_string)
}

impl Drop for Env {
    fn drop(&mut self) {
        for (pid, started) in self
            .spawned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            // Only the very process we started: its pid may have been reused since it exited.
            if started.is_some() && start_time(pid) == started {
                let _ = Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state.db").display().to_string();
        let jobs = dir.path().join("jobs");
        Env {
            dir,
            state,
            jobs,
            lease_ttl: "3s".into(),
            spawned: Default::default(),
        }
    }

    /// Same, with another state location (e.g. a PostgreSQL URL).
    pub fn with_state(state: &str) -> Env {
        let mut e = Env::new();
        e.state = state.to_string();
        e
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a spec file and returns its path.
    pub fn spec(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, body).expect("write spec");
        p
    }

    /// A `tether` command with this env's state, jobs dir and lease TTL, and no user config.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
        c.env("TETHER_STATE", &self.state)
            .env("TETHER_JOBS_DIR", &self.jobs)
            .env("TETHER_LEASE_TTL", &self.lease_ttl)
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env_remove("TETHER_FAULT")
            .env_remove("TETHER_CONFIG")
            // Colour is decided by each test, not by the environment of whoever runs it.
            .env_remove("CLICOLOR_FORCE")
            .env_remove("CLICOLOR")
            .env_remove("NO_COLOR")
            .current_dir(self.dir.path());
        c
    }

    /// Runs `tether <args>` to the end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tether")
    }

    /// Starts `tether <args>` in the background (output piped to files in the env dir).
    pub fn spawn(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Child {
        let mut c = self.cmd();
        c.args(args).stdin(Stdio::null());
        for (k, v) in extra_env {
            c.env(k, v);
        }
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        c.stdout(std::fs::File::create(self.path(&format!("out-{n}.txt"))).unwrap());
        c.stderr(std::fs::File::create(self.path(&format!("err-{n}.txt"))).unwrap());
        let child = c.spawn().expect("spawn tether");
        self.spawned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((child.id(), start_time(child.id())));
        child
    }

    /// `tether status KEY --json`, or None if the run does not exist (yet).
    pub fn status(&self, key: &str) -> Option<Value> {
        let out = self.run(&["status", key, "--json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// `tether history KEY --json` decisions, in order.
    pub fn decisions(&self, key: &str) -> Vec<String> {
        let out = self.run(&["history", key, "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["decision"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Full history as text, for assertion messages.
    pub fn history_text(&self, key: &str) -> String {
        String::from_utf8_lossy(&self.run(&["history", key]).stdout).into_owned()
    }
}

/// Polls `f` every 100 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Waits for a child with a timeout; kills it (and fails) if it does not exit.
pub fn wait_child(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("tether did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(st.success(), "kill -{sig} {pid} failed");
}

/// Lines in a counter file that jobs append to: how many times a job really started.
pub fn count_lines(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A local-job spec that appends a line to `counter`, then runs `rest` (shell, no `'`).
/// `extra_top` goes before `[job]` (policy keys), `extra_job` inside it.
pub fn counter_spec(counter: &Path, rest: &str, extra_top: &str) -> String {
    format!("{extra_top}\n[job]\nkind = 'local'\ncommand = ['sh', '-c', 'echo started >> {}; {rest}']\n", counter.display())
}

/// A throwaway PostgreSQL database on the local server (created with `psql`, dropped on drop).
pub struct PgScratch {
    pub url: String,
    name: String,
}

impl PgScratch {
    pub fn create() -> PgScratch {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("tether_cli_{}_{}", std::process::id(), n % 1_000_000_000);
        let st = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qc",
                &format!("CREATE DATABASE {name}"),
            ])
            .status()
            .expect("psql");
        assert!(
            st.success(),
            "cannot create database {name}: is PostgreSQL running on 127.0.0.1:5432?"
        );
        PgScratch {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            name,
        }
    }
}

impl Drop for PgScratch {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .status();
    }
}

/// A tiny deterministic PRNG (xorshift) so chaos schedules can be replayed from their seed.
pub struct Rng(pub u64);
impl Rng {
    pub fn from_time() -> Rng {
        let s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng(s | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The prefix shared by all tags of run `key` in `env`'s store (`tether-<slug>-<store>-<hash>-g`),
/// to count a run's jobs on a real backend.
pub fn tag_prefix(env: &Env, key: &str) -> String {
    use tether_core::ids::{Generation, RunKey, Tag};
    let store = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(tether_store::open(&env.state))
        .expect("open the test store");
    let tag = Tag::derive(store.store_id(), &RunKey::new(key).unwrap(), Generation(1));
    tag.as_str().strip_suffix('1').unwrap().to_string()
}

/// The run's phase (`intent`, `submitted`, ...), if the run exists.
pub fn phase(env: &Env, key: &str) -> Option<String> {
    env.status(key)
        .and_then(|s| s["phase"]["phase"].as_str().map(str::to_string))
}

/// Runs `tether <args>` with `TETHER_FAULT=<fault>` and checks the hook SIGKILLed it.
pub fn run_killed_at(env: &Env, fault: &str, args: &[&str]) {
    let out = env
        .cmd()
        .args(args)
        .env("TETHER_FAULT", fault)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        None,
        "TETHER_FAULT={fault} must SIGKILL tether: {}",
        stderr(&out)
    );
}
