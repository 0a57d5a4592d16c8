//! Crash tests of `tether run` with the databricks connector against the test kit's fake
//! Databricks workspace (Jobs API 2.2 semantics, HTTPS with a CA made here). Every test counts
//! the runs the workspace created: "one run" is checked against the workspace, not tether.
mod common;
#[path = "../../connectors/tests/databricks_support/mod.rs"]
mod databricks_support;

use std::time::Duration;

use common::*;
use databricks_support::*;
use serde_json::Value;
use tether_testkit::fakes::databricks::{FakeDatabricks, Fault, Route};

const T: Duration = Duration::from_secs(30);

fn key(name: &str) -> String {
    format!("dbx-{name}-{}", std::process::id())
}

fn phase(env: &Env, key: &str) -> Option<String> {
    env.status(key)
        .and_then(|s| s["phase"]["phase"].as_str().map(str::to_string))
}

fn setup(file: &str, top: &str) -> (Env, String) {
    set_credentials();
    let env = Env::new();
    (env, file.to_string() + "\u{0}" + top)
}

async fn start(env: &Env, spec_args: &str) -> (FakeDatabricks, String) {
    let (file, top) = spec_args.split_once('\u{0}').unwrap();
    let fake = fake().await;
    let ca = ca_file(&fake, env.dir.path());
    let s = env.spec("dbx.toml", &spec(fake.url(), &ca, Cred::Pat, file, top));
    (fake, s.display().to_string())
}

fn run_json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {}", stderr(out)))
}

/// Nothing tether wrote (its output, history, status, the state database) holds a credential.
fn assert_no_secret(env: &Env, key: &str, outputs: &[&std::process::Output]) {
    let mut texts: Vec<Vec<u8>> = outputs
        .iter()
        .flat_map(|o| [o.stdout.clone(), o.stderr.clone()])
        .collect();
    texts.push(env.run(&["history", key, "--json"]).stdout);
    texts.push(env.run(&["status", key, "--json"]).stdout);
    for f in std::fs::read_dir(env.dir.path()).unwrap().flatten() {
        if f.path().is_file() {
            texts.push(std::fs::read(f.path()).unwrap());
        }
    }
    for t in &texts {
        let t = String::from_utf8_lossy(t);
        for secret in [PAT, CLIENT.1] {
            assert!(
                !t.contains(secret),
                "a credential reached tether's output or store: {t:.300}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_before_the_submit_answer_is_read_resubmits_the_same_token_into_one_run() {
    let (env, args) = setup("succeeds.py", "");
    let (fake, s) = start(&env, &args).await;
    let k = key("before-answer");
    // The run is created, its answer held back: tether is killed while waiting for it.
    fake.inject(Route::Submit, Fault::SlowAfter(Duration::from_secs(20)));
    let mut first = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(
        wait_until(T, || fake.runs_created() == 1),
        "the submit never arrived"
    );
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    assert_eq!(phase(&env, &k).as_deref(), Some("intent"));
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = run_json(&out);
    assert_eq!(
        (v["state"].as_str(), fake.runs_created()),
        (Some("succeeded"), 1),
        "{v}"
    );
    assert_eq!(v["external_id"], fake.runs()[0].run_id.to_string());
    assert_eq!(
        fake.count(Route::Submit),
        2,
        "the same token was sent again"
    );
    assert_no_secret(&env, &k, &[&out]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_polling_and_after_the_run_ended_unwatched_reconnect_to_the_one_run() {
    let (env, args) = setup("driven.py", "");
    let (fake, s) = start(&env, &args).await;
    for (name, end_before_rerun) in [("polling", false), ("unwatched", true)] {
        let k = key(name);
        let before = fake.runs_created();
        let mut first = env.spawn(&["run", &s, "--key", &k], &[]);
        assert!(
            wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")),
            "{name}: no id recorded"
        );
        signal(first.id(), "KILL");
        wait_child(&mut first, T);
        let id = fake.runs().last().unwrap().run_id;
        if end_before_rerun {
            fake.finish(id, "SUCCESS", "", "done 1");
        }
        // Rate limiting while reconnecting is waited out, never a resubmission.
        fake.inject(Route::Get, Fault::TooMany(1));
        let mut rerun = env.spawn(&["run", &s, "--key", &k, "--json"], &[]);
        if !end_before_rerun {
            // The rerun polls (the killed run may not have polled before the kill).
            let rerun_polls = || {
                let d = env.decisions(&k);
                let mut taken = d.iter().enumerate().filter(|(_, d)| *d == "lease-acquired");
                taken
                    .nth(1)
                    .is_some_and(|(i, _)| d[i..].iter().any(|d| d == "poll"))
            };
            assert!(wait_until(T, rerun_polls), "{}", env.history_text(&k));
            fake.finish(id, "SUCCESS", "", "done 2");
        }
        assert!(
            wait_child(&mut rerun, T).success(),
            "{name}: {}",
            env.history_text(&k)
        );
        assert_eq!(fake.runs_created(), before + 1, "{name}: one run");
        let st = env.status(&k).unwrap();
        assert_eq!(st["phase"]["phase"], "finished", "{st}");
        let d = env.decisions(&k);
        assert!(!d.iter().any(|d| d.contains("resubmit")), "{name}: {d:?}");
        // `tether logs` shows the task's driver output, read from runs/get-output.
        let logs = env.run(&["logs", &k]);
        let want = if end_before_rerun { "done 1" } else { "done 2" };
        assert!(
            String::from_utf8_lossy(&logs.stdout).contains(want),
            "{}",
            stderr(&logs)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_generation_is_followed_by_a_new_run_not_the_failed_one() {
    let (env, args) = setup("fails.py", "max_submissions = 2\n");
    let (fake, s) = start(&env, &args).await;
    let k = key("airflow-trap");
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let runs = fake.runs();
    assert_eq!(runs.len(), 2, "generation 2 is a new run");
    assert_ne!(runs[0].token, runs[1].token);
    assert!(runs.iter().all(|r| r.result.as_deref() == Some("FAILED")));
    assert_no_secret(&env, &k, &[&out]);
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_tokens_are_refreshed_during_a_long_run_and_never_written() {
    set_credentials();
    let env = Env::new();
    let fake = fake().await;
    fake.set_token_lifetime(Duration::from_secs(1));
    let ca = ca_file(&fake, env.dir.path());
    let s = env.spec(
        "dbx.toml",
        &spec(fake.url(), &ca, Cred::OAuth, "driven.py", ""),
    );
    let s = s.display().to_string();
    let k = key("oauth");
    let mut run = env.spawn(&["run", &s, "--key", &k, "--json"], &[]);
    assert!(wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")));
    std::thread::sleep(Duration::from_secs(3));
    fake.finish(fake.runs()[0].run_id, "SUCCESS", "", "ok");
    assert!(
        wait_child(&mut run, T).success(),
        "{}",
        env.history_text(&k)
    );
    assert!(
        fake.tokens_issued() >= 3,
        "refreshed: {}",
        fake.tokens_issued()
    );
    let issued: Vec<String> = fake
        .server
        .requests()
        .iter()
        .filter_map(|r| r.header("authorization"))
        .filter_map(|h| h.strip_prefix("Bearer ").map(str::to_string))
        .collect();
    let out = env.run(&["status", &k, "--json"]);
    assert_no_secret(&env, &k, &[&out]);
    for f in std::fs::read_dir(env.dir.path())
        .unwrap()
        .flatten()
        .filter(|f| f.path().is_file())
    {
        let text = String::from_utf8_lossy(&std::fs::read(f.path()).unwrap()).into_owned();
        assert!(
            issued.iter().all(|t| !text.contains(t.as_str())),
            "an access token was written to {}",
            f.path().display()
        );
    }
}
