//! Crash tests of `tether run` with the Livy connector on the real Livy 0.7.1 over the test YARN
//! (`TETHER_LIVY_ENV`; skipped with a message without it).
//!
//! Every test counts, from outside tether, the batches Livy lists under the run's tags
//! (`GET /batches`) and the YARN applications carrying them (the ResourceManager): "exactly one
//! batch" and "one YARN app" are checked against Livy and YARN themselves.
mod common;
#[path = "../../connectors/tests/livy_support/mod.rs"]
mod livy_support;

use std::{collections::HashMap, time::Duration};

use common::*;
use livy_support::{batches_named, livy_env_or_skip, yarn_apps_tagged};
use serde_json::Value;

const T: Duration = Duration::from_secs(400);

fn key(name: &str) -> String {
    format!("livy-{name}-{}", std::process::id())
}

/// A Livy spec running `alloc.py <args>` (a tiny PySpark job) in YARN cluster mode.
fn spec(env: &Env, e: &HashMap<String, String>, args: &[&str], top: &str) -> String {
    let file = std::env::var("TETHER_LIVY_JOB").unwrap_or_else(|_| {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/spark-job/python/alloc.py");
        p.canonicalize().unwrap().display().to_string()
    });
    let body = format!(
        "{top}\n[job]\nkind = \"livy\"\nurl = \"{}\"\nfile = \"{file}\"\nargs = {args:?}\n\
         driver_memory = \"512m\"\n[job.conf]\n\"spark.yarn.jars\" = \"local:{}/jars/*\"\n\
         \"spark.yarn.maxAppAttempts\" = \"1\"\n",
        e["LIVY_URL"], e["SPARK_HOME"],
    );
    env.spec("livy.toml", &body).display().to_string()
}

fn run_json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("no JSON ({err}); stderr:\n{}", stderr(out)))
}

/// No tether process left whose command line names the run's key (no orphan poller). Livy's own
/// spark-submit for the batch carries the tag (hence the key) and is the job, not a poller.
fn no_tether_process_names(key: &str) -> bool {
    let me = std::process::id().to_string();
    let tether = env!("CARGO_BIN_EXE_tether");
    std::fs::read_dir("/proc").unwrap().flatten().all(|p| {
        let name = p.file_name().to_string_lossy().to_string();
        if name == me || !name.chars().all(|c| c.is_ascii_digit()) {
            return true;
        }
        let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        !(cmd.starts_with(tether) && cmd.contains(key))
    })
}

/// One batch for the run, ended in `state`, and one YARN app (when Livy runs on YARN).
fn assert_one_batch(e: &HashMap<String, String>, prefix: &str, state: &str) -> String {
    let batches = batches_named(&e["LIVY_URL"], prefix);
    assert_eq!(batches.len(), 1, "exactly one batch: {batches:?}");
    assert_eq!(batches[0].1, state, "{batches:?}");
    if e.get("LIVY_MASTER").map(String::as_str) == Some("yarn") {
        let apps = yarn_apps_tagged(&e["YARN_RM_URL"], prefix);
        assert_eq!(apps.len(), 1, "exactly one YARN application: {apps:?}");
    }
    batches[0].0.clone()
}

#[test]
fn sigkill_while_polling_then_rerun_reconnects_to_the_one_batch() {
    let Some(e) = livy_env_or_skip("sigkill_while_polling_then_rerun_reconnects_to_the_one_batch")
    else {
        return;
    };
    let env = Env::new();
    let k = key("poll");
    let s = spec(&env, &e, &["16", "5"], "poll_interval = \"1s\"");
    let mut first = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(
        wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")),
        "the first run never recorded the batch id"
    );
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    assert!(
        no_tether_process_names(&k),
        "a tether process still works for the killed run"
    );
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = run_json(&out);
    assert_eq!(v["state"], "succeeded", "{v}");
    assert_eq!(v["submissions"].as_array().unwrap().len(), 1, "{v}");
    let id = assert_one_batch(&e, &tag_prefix(&env, &k), "success");
    assert_eq!(v["external_id"], id.as_str(), "{v}");
}

#[test]
fn crash_after_the_post_before_the_id_record_adopts_the_batch_by_name() {
    let Some(e) =
        livy_env_or_skip("crash_after_the_post_before_the_id_record_adopts_the_batch_by_name")
    else {
        return;
    };
    let env = Env::new();
    let k = key("adopt");
    let s = spec(&env, &e, &["16", "1"], "");
    run_killed_at(&env, "after-submit", &["run", &s, "--key", &k]);
    assert_eq!(phase(&env, &k).as_deref(), Some("intent"));
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let d = env.decisions(&k);
    assert!(d.contains(&"adopt".to_string()), "{}", env.history_text(&k));
    let id = assert_one_batch(&e, &tag_prefix(&env, &k), "success");
    assert_eq!(run_json(&out)["external_id"], id.as_str());
}

#[test]
fn a_worker_sigkilled_with_livy_runs_hands_them_to_another_one_batch_each() {
    let Some(e) =
        livy_env_or_skip("a_worker_sigkilled_with_livy_runs_hands_them_to_another_one_batch_each")
    else {
        return;
    };
    let env = Env::new();
    let keys: Vec<String> = (0..3).map(|i| key(&format!("fleet{i}"))).collect();
    for k in &keys {
        let s = spec(&env, &e, &["16", "20"], "poll_interval = \"1s\"");
        let s = std::fs::rename(&s, env.path(&format!("{k}.toml")))
            .map(|_| env.path(&format!("{k}.toml")))
            .unwrap();
        let out = env.run(&["submit", s.to_str().unwrap(), "--key", k]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let mut first = env.spawn(&["worker", "--concurrency", "8"], &[]);
    assert!(
        wait_until(T, || keys
            .iter()
            .all(|k| phase(&env, k).as_deref() == Some("submitted"))),
        "the first worker never submitted every run"
    );
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    let mut heir = env.spawn(&["worker", "--concurrency", "8"], &[]);
    assert!(
        wait_until(T, || keys
            .iter()
            .all(|k| phase(&env, k).as_deref() == Some("finished"))),
        "the second worker did not finish the runs"
    );
    signal(heir.id(), "TERM");
    wait_child(&mut heir, T);
    for k in &keys {
        let s = env.status(k).unwrap();
        assert_eq!(s["state"], "succeeded", "{s}");
        let d = env.decisions(k);
        assert_eq!(
            d.iter().filter(|x| *x == "submit").count(),
            1,
            "{}",
            env.history_text(k)
        );
        assert_one_batch(&e, &tag_prefix(&env, k), "success");
    }
}

#[test]
fn a_driver_past_its_container_is_oom_and_the_recovery_shape_succeeds() {
    let Some(e) =
        livy_env_or_skip("a_driver_past_its_container_is_oom_and_the_recovery_shape_succeeds")
    else {
        return;
    };
    if e.get("LIVY_MASTER").map(String::as_str) != Some("yarn") {
        eprintln!("SKIPPED: the OOM test needs Livy on YARN (the NodeManager's pmem check)");
        return;
    }
    let env = Env::new();
    let k = key("oom");
    // 1500 MB in a 512m driver (1 GB container): the NodeManager kills it (-104). The recovery
    // shape gives the driver 2g (a 2.4 GB container), where it fits.
    let s = spec(
        &env,
        &e,
        &["1500", "5"],
        "max_submissions = 2\nbackoff = \"1s\"\npoll_interval = \"1s\"",
    );
    let mut text = std::fs::read_to_string(&s).unwrap();
    text.push_str("[recovery.conf]\n\"spark.driver.memory\" = \"2g\"\n");
    std::fs::write(&s, text).unwrap();
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    let history = env.history_text(&k);
    assert_eq!(out.status.code(), Some(0), "{}\n{history}", stderr(&out));
    let v = run_json(&out);
    let subs = v["submissions"].as_array().unwrap();
    assert_eq!(subs.len(), 2, "{v}");
    assert_eq!(subs[1]["submission"]["shape"], "recovery", "{v}");
    assert!(history.contains("failed (oom)"), "{history}");
    assert!(history.contains("spark.driver.memory = 2g"), "{history}");
    let first_outcome = subs[0]["outcome"].to_string();
    assert!(
        first_outcome.contains("out of memory")
            && (first_outcome.contains("-104") || first_outcome.contains("PHYSICAL")),
        "{first_outcome}"
    );
    let prefix = tag_prefix(&env, &k);
    let mut batches = batches_named(&e["LIVY_URL"], &prefix);
    batches.sort_by_key(|b| b.0.parse::<u64>().unwrap_or(0));
    let states: Vec<&str> = batches.iter().map(|b| b.1.as_str()).collect();
    assert_eq!(states, ["dead", "success"], "{batches:?}");
    let mut apps = yarn_apps_tagged(&e["YARN_RM_URL"], &prefix);
    apps.sort();
    let finals: Vec<&str> = apps.iter().map(|a| a.2.as_str()).collect();
    assert_eq!(finals, ["FAILED", "SUCCEEDED"], "{apps:?}");
}
