//! Crash tests of the core protocol with real local jobs: `tether run` is SIGKILLed or frozen at
//! the points that matter, rerun, and the jobs that really started are counted from outside
//! (each job appends a line to a counter file before doing anything else).
mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(60);

fn submitted(env: &Env, key: &str) -> bool {
    env.status(key)
        .is_some_and(|s| s["phase"]["phase"] == "submitted")
}

#[test]
fn sigkill_while_polling_then_rerun_reconnects_and_runs_once() {
    let env = Env::new();
    let counter = env.path("counter");
    let spec = env.spec(
        "job.toml",
        &counter_spec(&counter, "sleep 3; echo done", ""),
    );
    let mut first = env.spawn(&["run", spec.to_str().unwrap(), "--key", "k1"], &[]);
    assert!(
        wait_until(T, || submitted(&env, "k1")),
        "first run never recorded the job id"
    );
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "k1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        count_lines(&counter),
        1,
        "the job must have started exactly once"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "succeeded");
    assert_eq!(v["submissions"].as_array().unwrap().len(), 1);
    let d = env.decisions("k1");
    assert!(
        d.iter().filter(|x| *x == "lease-acquired").count() >= 2,
        "{}",
        env.history_text("k1")
    );
    assert!(
        d.contains(&"poll".to_string()),
        "the rerun reconnected: {}",
        env.history_text("k1")
    );
}

#[test]
fn crash_between_submit_and_id_record_adopts_the_job_by_tag() {
    let env = Env::new();
    let counter = env.path("counter");
    let spec = env.spec("job.toml", &counter_spec(&counter, "sleep 2", ""));
    let out = env
        .cmd()
        .args(["run", spec.to_str().unwrap(), "--key", "k2"])
        .env("TETHER_FAULT", "after-submit")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        None,
        "the fault hook must SIGKILL tether: {}",
        stderr(&out)
    );
    let s = env.status("k2").expect("run exists");
    assert_eq!(
        s["phase"]["phase"], "intent",
        "crashed before the id was recorded: {s}"
    );
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "k2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count_lines(&counter), 1, "adopted, not launched again");
    let d = env.decisions("k2");
    assert!(
        d.contains(&"adopt".to_string()),
        "{}",
        env.history_text("k2")
    );
    assert!(
        !d.contains(&"resubmit-same-generation".to_string()),
        "{}",
        env.history_text("k2")
    );
}

#[test]
fn crash_between_intent_and_submit_submits_the_same_generation_once() {
    let env = Env::new();
    let counter = env.path("counter");
    let spec = env.spec("job.toml", &counter_spec(&counter, "true", ""));
    let out = env
        .cmd()
        .args(["run", spec.to_str().unwrap(), "--key", "k3"])
        .env("TETHER_FAULT", "after-intent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), None, "{}", stderr(&out));
    assert_eq!(
        count_lines(&counter),
        0,
        "nothing was submitted before the crash"
    );
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "k3", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count_lines(&counter), 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["generation"], 1, "same generation, same tag: {v}");
    assert!(
        env.decisions("k3")
            .contains(&"resubmit-same-generation".to_string()),
        "{}",
        env.history_text("k3")
    );
}

#[test]
fn sigkill_after_the_job_finished_returns_its_result_without_rerunning() {
    let env = Env::new();
    let counter = env.path("counter");
    // A long poll interval, and tether frozen (a local job's end would otherwise wake it at
    // once): the job ends while tether cannot record it, and tether is killed in that window.
    let spec = env.spec(
        "job.toml",
        &counter_spec(&counter, "sleep 1", "poll_interval = \"30s\""),
    );
    let mut first = env.spawn(&["run", spec.to_str().unwrap(), "--key", "k4"], &[]);
    assert!(wait_until(T, || submitted(&env, "k4")));
    signal(first.id(), "STOP");
    let jobs = env.jobs.clone();
    assert!(
        wait_until(T, || std::fs::read_dir(&jobs)
            .map(|d| d.flatten().any(|e| e.path().join("status.json").exists()))
            .unwrap_or(false)),
        "the job never finished"
    );
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    assert_eq!(
        env.status("k4").unwrap()["state"],
        "running",
        "tether died before recording the end"
    );
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "k4"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count_lines(&counter), 1);
    // And once more: the recorded outcome comes back without asking the backend.
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "k4"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count_lines(&counter), 1);
}

#[test]
fn two_runs_of_one_key_at_once_launch_one_job_and_agree() {
    let env = Env::new();
    let counter = env.path("counter");
    let spec = env.spec("job.toml", &counter_spec(&counter, "sleep 2", ""));
    let args = ["run", spec.to_str().unwrap(), "--key", "k5", "--json"];
    let a = env
        .cmd()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let b = env
        .cmd()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(b.status.code(), Some(0), "{}", stderr(&b));
    assert_eq!(count_lines(&counter), 1);
    let va: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let vb: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    assert_eq!(va["state"], vb["state"]);
    assert_eq!(va["external_id"], vb["external_id"]);
    let followed = stderr(&a).contains("following") || stderr(&b).contains("following");
    assert!(
        followed,
        "one of them followed the other:\n{}\n{}",
        stderr(&a),
        stderr(&b)
    );
}

#[test]
fn failure_is_resubmitted_within_the_budget_then_fails() {
    let env = Env::new();
    let counter = env.path("counter");
    let spec = env.spec(
        "job.toml",
        &counter_spec(
            &counter,
            "exit 3",
            "max_submissions = 2\nbackoff = \"100ms\"",
        ),
    );
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "k6", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(count_lines(&counter), 2, "two generations, no more");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "failed", "{v}");
    assert_eq!(v["failure_class"], "other", "{v}");
    assert!(env.decisions("k6").contains(&"resubmit".to_string()));
    // Listings keep showing the last generation and its id after the run finished.
    let ls: serde_json::Value = serde_json::from_slice(&env.run(&["ls", "--json"]).stdout).unwrap();
    assert_eq!(ls[0]["generation"], 2, "{ls}");
    assert!(ls[0]["external_id"].is_string(), "{ls}");
    // A rerun returns the recorded failure; it does not start a third job.
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "k6"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(count_lines(&counter), 2);
}

#[test]
fn oom_then_the_next_generation_runs_with_the_recovery_overrides() {
    let env = Env::new();
    let counter = env.path("counter");
    let body = format!(
        "backoff = \"100ms\"\n[job]\nkind = 'local'\nmemory_limit = '150MiB'\n\
         command = ['sh', '-c', 'echo started >> {c}; python3 -c \"import os,time; n = int(os.environ.get(\\\"ALLOC_MB\\\", \\\"600\\\")); b = b\\\"x\\\" * (n << 20); time.sleep(0.5)\"']\n\
         [recovery]\nenv = {{ ALLOC_MB = '20' }}\n",
        c = counter.display()
    );
    let spec = env.spec("oom.toml", &body);
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "k7", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stderr(&out),
        env.history_text("k7")
    );
    assert_eq!(count_lines(&counter), 2);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let subs = v["submissions"].as_array().unwrap();
    assert_eq!(subs[0]["outcome"]["class"], "oom", "{v}");
    assert_eq!(subs[1]["submission"]["shape"], "recovery", "{v}");
    assert!(
        env.history_text("k7").contains("recovery mode"),
        "{}",
        env.history_text("k7")
    );
}

#[test]
fn a_frozen_owner_past_its_lease_stands_down_after_a_takeover() {
    let env = Env::new();
    let counter = env.path("counter");
    let spec = env.spec(
        "job.toml",
        &counter_spec(&counter, "sleep 8", "poll_interval = \"200ms\""),
    );
    let mut zombie = env.spawn(&["run", spec.to_str().unwrap(), "--key", "k8"], &[]);
    assert!(wait_until(T, || submitted(&env, "k8")));
    signal(zombie.id(), "STOP");
    std::thread::sleep(Duration::from_secs(4)); // > lease TTL of 3 s
    let mut heir = env.spawn(&["run", spec.to_str().unwrap(), "--key", "k8"], &[]);
    assert!(
        wait_until(T, || env.status("k8").is_some_and(|s| s["epoch"].as_i64()
            >= Some(2)
            && s["lease_alive"] == true)),
        "no takeover"
    );
    signal(zombie.id(), "CONT");
    let zst = wait_child(&mut zombie, T);
    assert_eq!(
        zst.code(),
        Some(5),
        "the zombie stands down with exit 5 (lease lost)"
    );
    let hst = wait_child(&mut heir, T);
    assert_eq!(
        hst.code(),
        Some(0),
        "the job was neither cancelled nor disturbed"
    );
    assert_eq!(count_lines(&counter), 1, "no second submission");
    let s = env.status("k8").unwrap();
    assert_eq!(s["state"], "succeeded");
    assert!(
        env.decisions("k8").iter().any(|d| d == "lease-acquired"),
        "{}",
        env.history_text("k8")
    );
}

#[test]
fn sigterm_releases_the_lease_and_leaves_the_job_running() {
    let env = Env::new();
    let counter = env.path("counter");
    let done = env.path("done");
    let spec = env.spec(
        "job.toml",
        &counter_spec(&counter, &format!("sleep 2; touch {}", done.display()), ""),
    );
    let mut run = env.spawn(&["run", spec.to_str().unwrap(), "--key", "k9"], &[]);
    assert!(wait_until(T, || submitted(&env, "k9")));
    signal(run.id(), "TERM");
    assert_eq!(wait_child(&mut run, T).code(), Some(130));
    let s = env.status("k9").unwrap();
    assert_eq!(
        s["owner"],
        serde_json::Value::Null,
        "lease released at once: {s}"
    );
    assert!(
        wait_until(T, || done.exists()),
        "the job kept running after tether left"
    );
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "k9"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count_lines(&counter), 1);
}

#[test]
fn cancel_kills_the_job_and_the_run_ends_cancelled() {
    let env = Env::new();
    let counter = env.path("counter");
    let done = env.path("done");
    let spec = env.spec(
        "job.toml",
        &counter_spec(&counter, &format!("sleep 30; touch {}", done.display()), ""),
    );
    let mut run = env.spawn(&["run", spec.to_str().unwrap(), "--key", "k10"], &[]);
    assert!(wait_until(T, || submitted(&env, "k10")));
    let out = env.run(&["cancel", "k10"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(wait_child(&mut run, T).code(), Some(3));
    assert_eq!(env.status("k10").unwrap()["state"], "cancelled");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!done.exists());
    assert_eq!(count_lines(&counter), 1);
}

#[test]
fn cancel_of_an_orphaned_run_kills_the_job_itself() {
    let env = Env::new();
    let counter = env.path("counter");
    let spec = env.spec("job.toml", &counter_spec(&counter, "sleep 30", ""));
    let mut run = env.spawn(&["run", spec.to_str().unwrap(), "--key", "k11"], &[]);
    assert!(wait_until(T, || submitted(&env, "k11")));
    signal(run.id(), "KILL");
    wait_child(&mut run, T);
    let out = env.run(&["cancel", "k11"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.status("k11").unwrap()["state"], "cancelled");
}

#[test]
fn logs_show_the_jobs_output() {
    let env = Env::new();
    let counter = env.path("counter");
    let spec = env.spec(
        "job.toml",
        &counter_spec(&counter, "echo hello-from-the-job; echo oops 1>&2", ""),
    );
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "k12"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = env.run(&["logs", "k12"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hello-from-the-job"),
        "{out:?}"
    );
    let out = env.run(&["logs", "k12", "--stderr"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("oops"),
        "{out:?}"
    );
}

#[test]
fn non_durable_runs_plainly_and_records_nothing() {
    let env = Env::new();
    let counter = env.path("counter");
    let spec = env.spec(
        "job.toml",
        &counter_spec(&counter, "true", "durable = false"),
    );
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "k13"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count_lines(&counter), 1);
    assert!(
        !std::path::Path::new(&env.state).exists(),
        "no state store touched"
    );
}

#[test]
fn cancel_on_exit_kills_the_job_when_interrupted() {
    let env = Env::new();
    let counter = env.path("counter");
    let done = env.path("done");
    let spec = env.spec(
        "job.toml",
        &counter_spec(&counter, &format!("sleep 30; touch {}", done.display()), ""),
    );
    let mut run = env.spawn(
        &[
            "run",
            spec.to_str().unwrap(),
            "--key",
            "k14",
            "--cancel-on-exit",
        ],
        &[],
    );
    assert!(wait_until(T, || submitted(&env, "k14")));
    signal(run.id(), "TERM");
    assert_eq!(
        wait_child(&mut run, T).code(),
        Some(3),
        "cancelled on the way out"
    );
    assert_eq!(env.status("k14").unwrap()["state"], "cancelled");
    assert!(!done.exists(), "the job was killed, not left running");
}
