//! The web UI of `tether serve` in a real headless browser: Debian's chromium driven by
//! playwright-core (`tests/ui/drive.mjs`), against a real `tether serve` and real `tether worker`
//! processes on a SQLite file running real local jobs.
//!
//! The browser only looks and clicks; this file starts and kills the processes and checks them
//! (a cancelled job's process is gone, a takeover really happened in the store).
//!
//! Guarantees: a missing chromium, node or playwright-core fails every test here with what is
//! missing and how to get it; nothing passes without a browser having run.
//! Assumptions: `scripts/browser-env` can provision them (apt-get, npm), or CHROMIUM and
//! NODE_PATH are already set (scripts/test sets them). Screenshots of each page at 1280×800 and
//! 390×844 go to `target/ui-screenshots/` (a test artifact); with TETHER_UI_SCREENSHOT_DOCS=1
//! the runs page at 1280×800 is also copied to `docs/ui-runs.png` (the README's picture).
//! Caveat: the tests take turns (one chromium at a time): the machine is shared.
mod common;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use common::{signal, wait_until, Env};
use serde_json::{json, Value};

const READ: &str = "read-token-for-the-browser-test";
const WRITE: &str = "write-token-for-the-browser-test";

/// One chromium at a time: each is several processes, and the machine is shared.
static BROWSER: Mutex<()> = Mutex::new(());

/// Where the browser and playwright-core are: from the environment, or from
/// `scripts/browser-env` (which installs what is missing).
struct Browser {
    node: String,
    chromium: String,
    node_path: String,
}

impl Browser {
    fn get() -> Browser {
        let from_env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (mut chromium, mut node_path, mut node) = (
            from_env("CHROMIUM"),
            from_env("NODE_PATH"),
            from_env("NODE"),
        );
        if chromium.is_none() || node_path.is_none() {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/browser-env");
            let out = Command::new(script)
                .stderr(Stdio::inherit())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
            assert!(
                out.status.success(),
                "{script} could not provision chromium and playwright-core (see its output \
                 above); install Debian's `chromium` and run `npm install playwright-core` into \
                 a directory named by NODE_PATH, or fix the script's network access"
            );
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let Some((k, v)) = line.trim_start_matches("export ").split_once('=') else {
                    continue;
                };
                match k {
                    "CHROMIUM" => chromium = Some(v.to_string()),
                    "NODE_PATH" => node_path = Some(v.to_string()),
                    "NODE" => node = Some(v.to_string()),
                    _ => {}
                }
            }
        }
        let chromium = chromium.expect("scripts/browser-env printed no CHROMIUM");
        let node_path = node_path.expect("scripts/browser-env printed no NODE_PATH");
        assert!(
            Path::new(&chromium).is_file(),
            "chromium is missing: CHROMIUM={chromium} is not a file; install Debian's chromium \
             (`apt-get install chromium`) or run scripts/browser-env"
        );
        assert!(
            Path::new(&node_path).join("playwright-core").is_dir(),
            "playwright-core is missing from NODE_PATH={node_path}; run scripts/browser-env"
        );
        Browser {
            node: node.unwrap_or_else(|| "node".into()),
            chromium,
            node_path,
        }
    }

    /// Runs one scenario of drive.mjs and returns what it saw; panics with its message.
    fn drive(&self, scenario: &str, args: Value) -> Value {
        self.drive_with(scenario, args, || {})
    }

    /// Same, calling `on_ready` when the page says it is watching (its READY line).
    fn drive_with(&self, scenario: &str, args: Value, on_ready: impl FnOnce()) -> Value {
        let _turn = BROWSER.lock().unwrap_or_else(|p| p.into_inner());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui/drive.mjs");
        // To a file: a pipe left unread while stdout is followed could fill and block node.
        let err = tempfile::NamedTempFile::new().expect("temp file");
        let mut child = Command::new(&self.node)
            .arg(script)
            .arg(scenario)
            .arg(args.to_string())
            .env("CHROMIUM", &self.chromium)
            .env("NODE_PATH", &self.node_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err.reopen().expect("reopen temp file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {} (node): {e}", self.node));
        let mut stdout = String::new();
        let mut on_ready = Some(on_ready);
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.expect("read drive.mjs output");
            if line == "READY" {
                if let Some(f) = on_ready.take() {
                    f();
                }
            }
            stdout.push_str(&line);
            stdout.push('\n');
        }
        let status = child.wait().expect("wait for drive.mjs");
        assert!(
            status.success(),
            "the browser check `{scenario}` failed: {}\n{stdout}",
            std::fs::read_to_string(err.path()).unwrap_or_default()
        );
        serde_json::from_str(stdout.lines().last().unwrap_or(""))
            .unwrap_or_else(|e| panic!("drive.mjs {scenario} printed no JSON ({e}): {stdout}"))
    }
}

/// `target/ui-screenshots/`, the test artifact.
fn shots_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("ui-screenshots")
}

/// A `tether serve` process with read and write tokens, killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(env: &Env) -> Server {
        let out = env.run(&["migrate"]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        let log = env.path("serve.err");
        let child = env
            .cmd()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("TETHER_SERVE_TOKEN_READ", READ)
            .env("TETHER_SERVE_TOKEN_WRITE", WRITE)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn tether serve");
        let mut base = String::new();
        let up = wait_until(Duration::from_secs(30), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let found = text.split("serving the API on ").nth(1).map(|rest| {
                let url = rest.split_whitespace().next().unwrap_or("");
                url.trim_end_matches("/api/v1").to_string()
            });
            found.map(|b| base = b).is_some()
        });
        assert!(
            up,
            "tether serve did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Server { child, base }
    }

    /// The arguments every scenario takes; the write token, so the UI may cancel.
    fn args(&self, extra: Value) -> Value {
        let mut v = json!({"base": self.base, "token": WRITE, "shots": shots_dir()});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    }
}

fn submit(env: &Env, key: &str, script: &str) {
    let spec = env.spec(
        &format!("{key}.toml"),
        &format!("[job]\nkind = 'local'\ncommand = ['sh', '-c', '{script}']\n"),
    );
    let out = env.run(&["submit", spec.to_str().unwrap(), "--key", key]);
    assert!(
        out.status.success(),
        "submit {key}: {}",
        common::stderr(&out)
    );
}

fn wait_status(env: &Env, key: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let ok = wait_until(Duration::from_secs(60), || {
        env.status(key).is_some_and(|s| f(&s))
    });
    let s = env.status(key);
    assert!(ok, "run {key} never became {what}: {s:?}");
    s.unwrap()
}

/// A `tether worker`, killed and reaped on drop.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn worker(env: &Env) -> Worker {
    Worker(env.spawn(&["worker", "--local-slots", "4"], &[]))
}

/// Whether `pid` still runs (a zombie waiting for its parent counts as gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The harness alone: chromium, through playwright-core, reaches `tether serve`.
#[test]
fn chromium_reaches_the_server() {
    let browser = Browser::get();
    let env = Env::new();
    let server = Server::start(&env);
    let seen = browser.drive("smoke", server.args(json!({})));
    assert!(seen["healthz"].as_str().is_some(), "{seen}");
}

/// The runs table follows a job to its end without a reload; screenshots of the runs page.
#[test]
fn runs_table_updates_when_a_job_finishes() {
    let browser = Browser::get();
    let env = Env::new();
    let server = Server::start(&env);
    submit(&env, "quick", "sleep 3; echo done");
    // The worker starts once the page shows the run queued: the page must see it change.
    let mut started = None;
    let seen = browser.drive_with("runsLive", server.args(json!({"key": "quick"})), || {
        started = Some(worker(&env))
    });
    assert!(started.is_some(), "the page never said READY: {seen}");
    let s = env.status("quick").unwrap();
    assert_eq!(
        s["state"], "succeeded",
        "the store agrees with the page: {s}"
    );
    let shots = shots_dir();
    for name in ["runs-1280x800.png", "runs-390x844.png"] {
        assert!(shots.join(name).is_file(), "no screenshot {name}: {seen}");
    }
    if std::env::var_os("TETHER_UI_SCREENSHOT_DOCS").is_some() {
        let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/ui-runs.png");
        std::fs::copy(shots.join("runs-1280x800.png"), docs).expect("copy to docs/ui-runs.png");
    }
}

/// Worker A is SIGKILLed while its job runs; worker B takes the run over; the run page's
/// timeline shows the takeover and the fleet page lists B. Screenshots of both pages.
#[test]
fn run_page_shows_its_timeline_after_a_takeover() {
    let browser = Browser::get();
    let env = Env::new();
    let server = Server::start(&env);
    // Long enough to still hold its owner while the fleet page is looked at; cancelled at the end.
    submit(&env, "handover", "sleep 300");
    let mut a = worker(&env);
    let before = wait_status(&env, "handover", "running", |s| s["state"] == "running");
    let epoch = before["epoch"].as_i64().expect("epoch");
    signal(a.0.id(), "KILL");
    let _ = a.0.wait();
    let _b = worker(&env);
    let after = wait_status(&env, "handover", "taken over", |s| {
        s["epoch"].as_i64() > Some(epoch) && !s["owner"].is_null()
    });
    assert_ne!(after["owner"], before["owner"], "{after}");
    let seen = browser.drive(
        "runPage",
        server.args(json!({"key": "handover", "expect": "took over"})),
    );
    assert!(
        seen["entries"].as_array().is_some_and(|e| e.len() >= 3),
        "{seen}"
    );
    let fleet = browser.drive("fleet", server.args(json!({})));
    let owner = after["owner"].as_str().unwrap();
    assert!(
        fleet["owners"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == owner),
        "the fleet page does not list worker B ({owner}): {fleet}"
    );
    for name in ["run", "fleet"] {
        for size in ["1280x800", "390x844"] {
            let f = shots_dir().join(format!("{name}-{size}.png"));
            assert!(f.is_file(), "no screenshot {}", f.display());
        }
    }
    // Leave no job behind: worker B kills it.
    let out = env.run(&["cancel", "handover"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    wait_status(&env, "handover", "cancelled", |s| s["state"] == "cancelled");
}

/// Cancel on the run page (its confirm() accepted) kills the local job: its process is gone
/// and the run is cancelled in the store.
#[test]
fn cancel_from_the_ui_kills_the_job() {
    let browser = Browser::get();
    let env = Env::new();
    let server = Server::start(&env);
    let pidfile = env.path("victim.pid");
    submit(
        &env,
        "victim",
        &format!("echo $$ > {}; exec sleep 600", pidfile.display()),
    );
    let _worker = worker(&env);
    wait_status(&env, "victim", "running", |s| s["state"] == "running");
    assert!(wait_until(Duration::from_secs(30), || pidfile.is_file()));
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .expect("pid");
    assert!(
        alive(pid),
        "the job's process {pid} should run before the cancel"
    );
    let seen = browser.drive("cancel", server.args(json!({"key": "victim"})));
    assert_eq!(seen["dialogs"].as_array().map(Vec::len), Some(1), "{seen}");
    let s = wait_status(&env, "victim", "cancelled", |s| s["state"] == "cancelled");
    let start = Instant::now();
    assert!(
        wait_until(Duration::from_secs(30), || !alive(pid)),
        "the job's process {pid} still runs {:?} after the run became cancelled: {s}",
        start.elapsed()
    );
}
