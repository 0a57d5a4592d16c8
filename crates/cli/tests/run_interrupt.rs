//! Interrupting `tether run` and following someone else's run, in plain words.
mod common;

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use common::{signal, wait_child, wait_until, Env};

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn a_second_ctrl_c_within_2s_stops_waiting_for_the_cancel() {
    let env = Env::new();
    let marker = env.path("started");
    // The job ignores SIGTERM: the cancel has to wait for the SIGKILL after the grace period.
    let spec = env.spec(
        "stubborn.toml",
        &format!(
            "[job]\nkind = 'local'\ncommand = ['sh', '-c', 'trap \"\" TERM; echo up > {}; sleep 60']\n",
            marker.display()
        ),
    );
    let err_path = env.path("err.txt");
    let mut child = env
        .cmd()
        .args(["run", spec.to_str().unwrap(), "--cancel-on-exit"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || marker.exists()));
    signal(child.id(), "INT");
    assert!(
        wait_until(Duration::from_secs(5), || read(&err_path)
            .contains("Ctrl-C again within 2 s")),
        "the first Ctrl-C does not say what happens next: {}",
        read(&err_path)
    );
    signal(child.id(), "INT");
    let asked = Instant::now();
    let st = wait_child(&mut child, Duration::from_secs(30));
    let err = read(&err_path);
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "the second Ctrl-C did not stop the wait ({:?}): {err}",
        asked.elapsed()
    );
    assert_eq!(st.code(), Some(130), "{err}");
    assert!(err.contains("stopped waiting"), "{err}");
    // The cancel stays recorded for whoever drives the run next.
    let key = err
        .lines()
        .find_map(|l| l.split_once("run key ").map(|(_, k)| k.trim().to_string()))
        .expect("run key line");
    let out = env.run(&["cancel", &key]);
    assert!(out.status.code().is_some(), "{}", common::stderr(&out));
}

#[test]
fn following_another_owner_says_who_and_why_it_waits() {
    let env = Env::new();
    let spec = env.spec(
        "long.toml",
        "[job]\nkind = 'local'\ncommand = ['sh', '-c', 'sleep 4']\n",
    );
    let spec = spec.to_str().unwrap();
    let mut first = env.spawn(&["run", spec, "--key", "shared"], &[]);
    assert!(wait_until(Duration::from_secs(20), || env
        .status("shared")
        .is_some_and(|s| s["owner"].is_string())));
    let out = env.run(&["run", spec, "--key", "shared"]);
    let err = common::stderr(&out);
    assert!(out.status.success(), "{err}");
    let follow = err
        .lines()
        .find(|l| l.contains("following"))
        .unwrap_or_else(|| panic!("no following line: {err}"));
    assert!(follow.contains("following run@"), "who: {follow}");
    assert!(follow.contains("its lease is alive"), "why: {follow}");
    // A follower never held the lease: it does not claim to have released one.
    assert!(!err.contains("lease released"), "{err}");
    wait_child(&mut first, Duration::from_secs(30));
}

#[test]
fn a_backend_refusing_connections_at_submit_waits_in_one_line_and_ctrl_c_says_no_job_exists() {
    let env = Env::new();
    // Port 1: connections refused, nothing is ever sent.
    let spec = env.spec(
        "refused.toml",
        "[job]\nkind = 'spark-standalone'\nmaster_rest = 'http://127.0.0.1:1'\n\
         master_ui = 'http://127.0.0.1:1'\napp_resource = 'file:/nonexistent.jar'\nmain_class = 'x.Y'\n",
    );
    let err_path = env.path("err.txt");
    let mut child = env
        .cmd()
        .args(["run", spec.to_str().unwrap(), "--key", "refused"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    // Several retries (every ~2 s at first).
    std::thread::sleep(Duration::from_secs(6));
    signal(child.id(), "INT");
    let st = wait_child(&mut child, Duration::from_secs(20));
    let err = read(&err_path);
    assert_eq!(st.code(), Some(130), "{err}");
    let waiting = err
        .lines()
        .filter(|l| l.contains("backend unreachable"))
        .count();
    assert_eq!(
        waiting, 1,
        "one line for the wait, not one per retry: {err}"
    );
    assert!(err.contains("no job was started"), "{err}");
    assert!(!err.contains("was left running"), "{err}");
}

#[test]
fn sighup_is_handled_like_sigterm_the_lease_released_and_the_job_left_running() {
    let env = Env::new();
    let done = env.path("done");
    let spec = env.spec(
        "job.toml",
        &format!(
            "[job]\nkind = 'local'\ncommand = ['sh', '-c', 'sleep 2; touch {}']\n",
            done.display()
        ),
    );
    let err_path = env.path("hup-err.txt");
    let mut run = env
        .cmd()
        .args(["run", spec.to_str().unwrap(), "--key", "hup"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || env
        .status("hup")
        .is_some_and(|s| s["phase"]["phase"] == "submitted")));
    signal(run.id(), "HUP");
    assert_eq!(
        wait_child(&mut run, Duration::from_secs(20)).code(),
        Some(130)
    );
    // It says what it did and what to do next.
    let err = read(&err_path);
    assert!(
        err.contains("was left running and the lease released; resume with"),
        "{err}"
    );
    let s = env.status("hup").unwrap();
    assert_eq!(s["owner"], serde_json::Value::Null, "lease released: {s}");
    assert!(
        wait_until(Duration::from_secs(20), || done.exists()),
        "the job kept running after tether left"
    );
}

#[test]
fn a_follower_says_the_owner_stopped_renewing_and_when_it_takes_over() {
    let mut env = Env::new();
    // Renewed every 2 s: an owner silent for more than 3 s has stopped renewing.
    env.lease_ttl = "6s".into();
    let spec = env.spec(
        "long.toml",
        "[job]\nkind = 'local'\ncommand = ['sh', '-c', 'sleep 10']\n",
    );
    let spec = spec.to_str().unwrap();
    let mut first = env.spawn(&["run", spec, "--key", "frozen"], &[]);
    assert!(wait_until(Duration::from_secs(20), || env
        .status("frozen")
        .is_some_and(
            |s| s["phase"]["phase"] == "submitted" && s["owner"].is_string()
        )));
    signal(first.id(), "STOP");
    let out = env.run(&["run", spec, "--key", "frozen"]);
    signal(first.id(), "CONT");
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("owner stopped renewing"))
        .unwrap_or_else(|| panic!("no line saying the owner stopped renewing: {err}"));
    assert!(line.contains("following run@"), "who: {line}");
    assert!(line.contains("s ago; taking over in ≤ "), "when: {line}");
    // Said once, not once a second while the countdown runs.
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("owner stopped renewing"))
            .count(),
        1,
        "{err}"
    );
    // The frozen owner, woken up, finds its lease taken and stands down.
    assert_eq!(
        wait_child(&mut first, Duration::from_secs(30)).code(),
        Some(5)
    );
}
