//! Takeover bounded by death, not by the lease (issue 15, part 1), with real processes:
//! a SIGKILLed worker's runs, and a `kill -9`ed `tether run`'s run, are taken over at once
//! although their 60 s leases are still alive; a worker frozen (SIGSTOP) for less than its
//! lease keeps its runs. Each job appends its key to a counter file first thing, so "ran
//! exactly once" is counted outside tether.
mod common;

use std::{
    process::Child,
    time::{Duration, Instant},
};

use common::*;

/// Far longer than any wait below: a takeover that happens is not lease expiry.
const LONG_TTL: &str = "60s";

fn job_spec(env: &Env, key: &str, sleep_s: u32) -> std::path::PathBuf {
    let body = format!(
        "backoff = \"200ms\"\npoll_interval = \"200ms\"\n[job]\nkind = 'local'\ncommand = ['sh', '-c', 'echo {key} >> {}; sleep {sleep_s}']\n",
        env.path("counter").display(),
    );
    env.spec(&format!("{key}.toml"), &body)
}

fn start_worker(env: &Env) -> Child {
    env.spawn(&["worker", "--concurrency", "8", "--local-slots", "8"], &[])
}

fn submit(env: &Env, keys: &[String], sleep_s: u32) {
    for key in keys {
        let spec = job_spec(env, key, sleep_s);
        let out = env.run(&["submit", spec.to_str().unwrap(), "--key", key]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
}

fn phase_is(env: &Env, key: &str, phase: &str) -> bool {
    env.status(key)
        .is_some_and(|s| s["phase"]["phase"] == phase)
}

fn epoch(env: &Env, key: &str) -> i64 {
    env.status(key).unwrap()["epoch"].as_i64().unwrap()
}

fn assert_each_ran_once(env: &Env, keys: &[String]) {
    let counted = std::fs::read_to_string(env.path("counter")).unwrap_or_default();
    for key in keys {
        let n = counted.lines().filter(|l| l.trim() == key).count();
        assert_eq!(
            n,
            1,
            "job of {key} ran {n} times:\n{}",
            env.history_text(key)
        );
        assert_eq!(env.status(key).unwrap()["state"], "succeeded");
    }
    assert_eq!(counted.lines().count(), keys.len());
}

fn killed_worker_is_taken_over_at_once(mut env: Env) {
    env.lease_ttl = LONG_TTL.into();
    let keys: Vec<String> = (0..4).map(|i| format!("dead-{i}")).collect();
    submit(&env, &keys, 4);
    let mut a = start_worker(&env);
    assert!(wait_until(Duration::from_secs(60), || keys
        .iter()
        .all(|k| phase_is(&env, k, "submitted"))));
    let before: Vec<i64> = keys.iter().map(|k| epoch(&env, k)).collect();
    signal(a.id(), "KILL");
    let _ = a.wait();
    let killed = Instant::now();
    let mut b = start_worker(&env);
    assert!(
        wait_until(Duration::from_secs(15), || keys
            .iter()
            .zip(&before)
            .all(|(k, e)| epoch(&env, k) > *e)),
        "the killed worker's runs were not taken over within 15 s (lease {LONG_TTL})"
    );
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(wait_until(Duration::from_secs(60), || keys
        .iter()
        .all(|k| phase_is(&env, k, "finished"))));
    assert_each_ran_once(&env, &keys);
    let h = env.history_text(&keys[0]);
    assert!(h.contains("owner gone"), "history says why:\n{h}");
    signal(b.id(), "TERM");
    wait_child(&mut b, Duration::from_secs(30));
}

#[test]
fn a_killed_workers_runs_are_taken_over_at_once_on_sqlite() {
    killed_worker_is_taken_over_at_once(Env::new());
}

#[test]
fn a_killed_workers_runs_are_taken_over_at_once_on_postgres() {
    let db = PgScratch::create();
    killed_worker_is_taken_over_at_once(Env::with_state(&db.url));
}

fn rerun_after_kill_9_takes_over_at_once(mut env: Env) {
    env.lease_ttl = LONG_TTL.into();
    let spec = job_spec(&env, "rerun", 3);
    let spec = spec.to_str().unwrap();
    let mut first = env.spawn(&["run", spec, "--key", "rerun"], &[]);
    assert!(wait_until(Duration::from_secs(60), || phase_is(
        &env,
        "rerun",
        "submitted"
    )));
    signal(first.id(), "KILL");
    let _ = first.wait();
    let started = Instant::now();
    let out = env.run(&["run", spec, "--key", "rerun"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The job sleeps 3 s; waiting for the 60 s lease would take a minute.
    assert!(took < Duration::from_secs(20), "rerun took {took:?}");
    assert_each_ran_once(&env, &["rerun".to_string()]);
    let h = env.history_text("rerun");
    assert!(h.contains("owner gone"), "history says why:\n{h}");
}

#[test]
fn a_rerun_after_kill_9_takes_over_at_once_on_sqlite() {
    rerun_after_kill_9_takes_over_at_once(Env::new());
}

#[test]
fn a_rerun_after_kill_9_takes_over_at_once_on_postgres() {
    let db = PgScratch::create();
    rerun_after_kill_9_takes_over_at_once(Env::with_state(&db.url));
}

/// A frozen owner still holds its liveness signal: frozen for less than its lease, nobody
/// takes its runs (no false takeover), and they finish under it, once each.
fn frozen_worker_keeps_its_runs(mut env: Env) {
    env.lease_ttl = "8s".into();
    let keys: Vec<String> = (0..3).map(|i| format!("frozen-{i}")).collect();
    submit(&env, &keys, 3);
    let mut a = start_worker(&env);
    assert!(wait_until(Duration::from_secs(60), || keys
        .iter()
        .all(|k| phase_is(&env, k, "submitted"))));
    let before: Vec<i64> = keys.iter().map(|k| epoch(&env, k)).collect();
    signal(a.id(), "STOP");
    let mut b = start_worker(&env);
    // Frozen for 4 s: less than the 8 s lease, more than eight of the heir's claim ticks.
    std::thread::sleep(Duration::from_secs(4));
    let during: Vec<i64> = keys.iter().map(|k| epoch(&env, k)).collect();
    signal(a.id(), "CONT");
    assert_eq!(during, before, "a live (frozen) owner's runs were taken");
    assert!(wait_until(Duration::from_secs(60), || keys
        .iter()
        .all(|k| phase_is(&env, k, "finished"))));
    let after: Vec<i64> = keys.iter().map(|k| epoch(&env, k)).collect();
    assert_eq!(after, before, "the frozen worker finished its own runs");
    assert_each_ran_once(&env, &keys);
    for w in [&mut a, &mut b] {
        signal(w.id(), "TERM");
        wait_child(w, Duration::from_secs(30));
    }
}

#[test]
fn a_worker_frozen_for_less_than_its_lease_keeps_its_runs_on_sqlite() {
    frozen_worker_keeps_its_runs(Env::new());
}

#[test]
fn a_worker_frozen_for_less_than_its_lease_keeps_its_runs_on_postgres() {
    let db = PgScratch::create();
    frozen_worker_keeps_its_runs(Env::with_state(&db.url));
}
