//! Crash and outage tests of `tether run` on a Livy of the test's own (`FreshLivy`: a fresh
//! 0.7.1 server on the test YARN, started by `scripts/livy-server`), where the first batch gets id
//! `0` and the server can be restarted without recovery (ids start again at 0) or frozen.
//!
//! Needs `TETHER_YARN_ENV` (skipped with a message without it). The tests take turns (one Livy
//! and one YARN app at a time: the test YARN's NodeManager is small).
mod common;
#[path = "../../connectors/tests/livy_support/mod.rs"]
mod livy_support;

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use common::*;
use livy_support::{batches_named, http, yarn_apps_tagged, FreshLivy};
use serde_json::Value;

const T: Duration = Duration::from_secs(400);
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn key(name: &str) -> String {
    format!("livyf-{name}-{}", std::process::id())
}

fn alloc_py() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/spark-job/python/alloc.py")
        .canonicalize()
        .unwrap()
        .display()
        .to_string()
}

/// A Livy spec running `alloc.py <args>` on `livy`, policy keys `top`.
fn spec(env: &Env, livy: &FreshLivy, args: &[&str], top: &str) -> String {
    let body = format!(
        "{top}\n[job]\nkind = \"livy\"\nurl = \"{}\"\nfile = \"{}\"\nargs = {args:?}\n\
         driver_memory = \"512m\"\nrequest_timeout = \"5s\"\n[job.conf]\n\
         \"spark.yarn.jars\" = \"local:{}/jars/*\"\n\"spark.yarn.maxAppAttempts\" = \"1\"\n",
        livy.url(),
        alloc_py(),
        livy.env["SPARK_HOME"],
    );
    env.spec("livy.toml", &body).display().to_string()
}

fn run_json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("no JSON ({err}); stderr:\n{}", stderr(out)))
}

fn submits(env: &Env, k: &str) -> usize {
    env.decisions(k)
        .iter()
        .filter(|d| *d == "submit" || d.starts_with("resubmit"))
        .count()
}

/// The state of batch `id` once it ended (Livy's own view).
fn wait_batch_ended(url: &str, id: &str) -> Value {
    let deadline = Instant::now() + T;
    loop {
        let (_, b) = http("GET", &format!("{url}/batches/{id}"), None);
        if matches!(
            b["state"].as_str(),
            Some("success" | "dead" | "killed" | "error")
        ) {
            return b;
        }
        assert!(Instant::now() < deadline, "batch {id} did not end: {b}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn batch_zero_survives_a_kill_of_tether_run_and_the_rerun_reconnects() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(livy) = FreshLivy::start_or_skip(
        "batch_zero_survives_a_kill_of_tether_run_and_the_rerun_reconnects",
    ) else {
        return;
    };
    let env = Env::new();
    let k = key("zero");
    let s = spec(&env, &livy, &["16", "20"], "poll_interval = \"1s\"");
    let mut first = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(
        wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")),
        "the first run never recorded the batch id"
    );
    let prefix = tag_prefix(&env, &k);
    let batches = batches_named(livy.url(), &prefix);
    assert_eq!(batches.len(), 1, "{batches:?}");
    assert_eq!(batches[0].0, "0", "a fresh Livy numbers its first batch 0");
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = run_json(&out);
    assert_eq!(v["state"], "succeeded", "{v}");
    assert_eq!(v["external_id"], "0", "{v}");
    assert_eq!(submits(&env, &k), 1, "{}", env.history_text(&k));
    let batches = batches_named(livy.url(), &prefix);
    assert_eq!(batches, vec![("0".to_string(), "success".to_string())]);
    let apps = yarn_apps_tagged(&livy.env["YARN_RM_URL"], &prefix);
    assert_eq!(apps.len(), 1, "exactly one YARN application: {apps:?}");
}

#[test]
fn livy_restarted_without_recovery_reuses_id_zero_and_tether_adopts_no_stranger() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(mut livy) = FreshLivy::start_or_skip(
        "livy_restarted_without_recovery_reuses_id_zero_and_tether_adopts_no_stranger",
    ) else {
        return;
    };
    let mut env = Env::new();
    // tether is frozen while Livy restarts: its lease must outlast that.
    env.lease_ttl = "300s".into();
    let k = key("restart");
    // on_lost = "fail": the test wants to see the mismatch reported, not a new generation. (A
    // graceful Livy stop kills its batches' YARN apps; after a Livy crash the app would run on,
    // and a resubmit would run the work twice.)
    let s = spec(
        &env,
        &livy,
        &["16", "60"],
        "poll_interval = \"1s\"\nbackoff = \"1s\"\nbackoff_max = \"2s\"\non_lost = \"fail\"",
    );
    let mut run = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")));
    let prefix = tag_prefix(&env, &k);
    assert_eq!(batches_named(livy.url(), &prefix)[0].0, "0");
    // The app is on YARN before Livy goes (so the count below sees the run's one app).
    let rm = livy.env["YARN_RM_URL"].clone();
    assert!(wait_until(T, || !yarn_apps_tagged(&rm, &prefix).is_empty()));
    livy.stop();
    assert!(
        wait_until(T, || env.decisions(&k).iter().any(|d| d == "ask-again")),
        "Livy down gives unknown, asked again: {}",
        env.history_text(&k)
    );
    // Freeze tether until the stranger holds id 0: a poll of the empty restarted server would
    // see a plain 404 (lost), which is not what this test is about.
    signal(run.id(), "STOP");
    livy.start();
    // Someone else's batch takes id 0 on the restarted server.
    let stranger = format!("stranger-{}", std::process::id());
    let (code, b) = http(
        "POST",
        &format!("{}/batches", livy.url()),
        Some(&serde_json::json!({
            "file": alloc_py(), "args": ["16", "1"], "name": stranger, "driverMemory": "512m",
            "conf": {
                "spark.yarn.jars": format!("local:{}/jars/*", livy.env["SPARK_HOME"]),
                "spark.yarn.maxAppAttempts": "1",
            },
        })),
    );
    signal(run.id(), "CONT");
    assert_eq!((code, b["id"].as_u64()), (201, Some(0)), "{b}");
    let st = wait_child(&mut run, T);
    let history = env.history_text(&k);
    assert_eq!(st.code(), Some(1), "the run fails as lost: {history}");
    assert!(history.contains("no longer ours"), "{history}");
    assert!(history.contains("stranger"), "{history}");
    assert_eq!(submits(&env, &k), 1, "never resubmitted: {history}");
    let s = env.status(&k).unwrap();
    assert_ne!(s["state"], "succeeded", "{s}");
    // The stranger's batch was neither adopted nor deleted: it runs to its own end.
    assert_eq!(wait_batch_ended(livy.url(), "0")["state"], "success");
    assert!(batches_named(livy.url(), &prefix).is_empty());
    let apps = yarn_apps_tagged(&rm, &prefix);
    assert_eq!(apps.len(), 1, "exactly one YARN application: {apps:?}");
}

#[test]
fn livy_frozen_mid_run_is_unknown_never_resubmitted_and_the_run_continues() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(livy) = FreshLivy::start_or_skip(
        "livy_frozen_mid_run_is_unknown_never_resubmitted_and_the_run_continues",
    ) else {
        return;
    };
    let env = Env::new();
    let k = key("frozen");
    let s = spec(
        &env,
        &livy,
        &["16", "30"],
        "poll_interval = \"1s\"\nbackoff = \"1s\"\nbackoff_max = \"2s\"",
    );
    let mut run = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")));
    signal(livy.pid(), "STOP");
    let answered = wait_until(T, || env.decisions(&k).iter().any(|d| d == "ask-again"));
    std::thread::sleep(Duration::from_secs(3));
    signal(livy.pid(), "CONT");
    assert!(
        answered,
        "a frozen Livy gives unknown, asked again: {}",
        env.history_text(&k)
    );
    let st = wait_child(&mut run, T);
    let history = env.history_text(&k);
    assert_eq!(st.code(), Some(0), "{history}");
    assert_eq!(submits(&env, &k), 1, "never resubmitted: {history}");
    let prefix = tag_prefix(&env, &k);
    let batches = batches_named(livy.url(), &prefix);
    assert_eq!(batches, vec![("0".to_string(), "success".to_string())]);
    let apps = yarn_apps_tagged(&livy.env["YARN_RM_URL"], &prefix);
    assert_eq!(apps.len(), 1, "exactly one YARN application: {apps:?}");
}

#[test]
fn livy_sigkilled_and_restarted_without_recovery_never_runs_the_job_twice() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(mut livy) = FreshLivy::start_or_skip(
        "livy_sigkilled_and_restarted_without_recovery_never_runs_the_job_twice",
    ) else {
        return;
    };
    let env = Env::new();
    let k = key("crash");
    let rm = livy.env["YARN_RM_URL"].clone();
    // The default on_lost = "resubmit": before the fix, the 404 of the restarted Livy read as
    // lost and a second generation ran beside the first one's YARN application.
    // Long enough to outlast Livy's restart (~70 s on a loaded machine): the run must follow
    // the live application on YARN, not only read its end.
    let s = spec(&env, &livy, &["16", "150"], "poll_interval = \"1s\"");
    let text = std::fs::read_to_string(&s).unwrap();
    std::fs::write(
        &s,
        // A loaded machine may need more than Spark's default 100 s to start the driver's
        // SparkContext (the AM then fails with exit code 13 and the run retries).
        text.replacen("[job]\n", &format!("[job]\nrm_url = \"{rm}\"\n"), 1)
            + "\"spark.yarn.am.waitTime\" = \"600s\"\n",
    )
    .unwrap();
    let mut run = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")));
    let prefix = tag_prefix(&env, &k);
    assert!(
        wait_until(T, || yarn_apps_tagged(&rm, &prefix)
            .iter()
            .any(|a| a.1 == "RUNNING")),
        "the batch's YARN application never ran: {:?}",
        yarn_apps_tagged(&rm, &prefix)
    );
    // A crash, not a stop: Livy kills nothing, its YARN application runs on.
    let pid = livy.pid();
    signal(pid, "KILL");
    // `scripts/livy-server start` reuses a server whose pid it sees alive (a SIGKILLed JVM may
    // linger as a zombie): forget the dead one's pid so that a new server starts.
    std::fs::remove_file(livy.dir.join("livy.pid")).unwrap();
    livy.start();
    assert!(
        batches_named(livy.url(), &prefix).is_empty(),
        "Livy forgot it"
    );
    let st = wait_child(&mut run, T);
    let history = env.history_text(&k);
    assert_eq!(st.code(), Some(0), "{history}");
    assert!(history.contains("Livy forgot the batch"), "{history}");
    assert_eq!(submits(&env, &k), 1, "never resubmitted: {history}");
    assert_eq!(env.status(&k).unwrap()["state"], "succeeded");
    let apps = yarn_apps_tagged(&rm, &prefix);
    assert_eq!(apps.len(), 1, "exactly one YARN application: {apps:?}");
    assert_eq!(
        (apps[0].1.as_str(), apps[0].2.as_str()),
        ("FINISHED", "SUCCEEDED")
    );
}
