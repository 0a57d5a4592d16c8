//! Claim wake-ups (issue 15): on PostgreSQL an idle worker is woken by `NOTIFY` when a queued run
//! is created or a lease released, instead of waiting for its claim poll. The workers here poll
//! only every 60 s, so a claim within seconds can only come from a wake-up; SQLite (no
//! wake-ups) shows the same worker waiting for its poll.
mod common;

use std::{process::Child, time::Duration};

use common::*;

fn spec(env: &Env, key: &str, sleep_s: u32) -> std::path::PathBuf {
    let body = format!(
        "poll_interval = \"200ms\"\n[job]\nkind = 'local'\ncommand = ['sh', '-c', 'sleep {sleep_s}']\n"
    );
    env.spec(&format!("{key}.toml"), &body)
}

/// A worker that polls for claimable runs only once a minute (its first look is at start).
fn lazy_worker(env: &Env) -> Child {
    let w = env.spawn(&["worker", "--claim-interval", "60s"], &[]);
    // Past its first look and listening.
    std::thread::sleep(Duration::from_secs(3));
    w
}

fn claimed_within(env: &Env, key: &str, within: Duration) -> bool {
    wait_until(within, || {
        env.status(key)
            .is_some_and(|s| s["owner"].as_str().is_some_and(|o| o.starts_with("worker")))
    })
}

fn submitted_run_wakes_the_worker(env: &Env) -> bool {
    let mut w = lazy_worker(env);
    let key = "woken";
    let out = env.run(&["submit", spec(env, key, 1).to_str().unwrap(), "--key", key]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let claimed = claimed_within(env, key, Duration::from_secs(10));
    signal(w.id(), "TERM");
    wait_child(&mut w, Duration::from_secs(30));
    claimed
}

#[test]
fn a_queued_run_wakes_an_idle_worker_on_postgres() {
    let db = PgScratch::create();
    let env = Env::with_state(&db.url);
    assert!(
        submitted_run_wakes_the_worker(&env),
        "the queued run was not claimed within 10 s by a worker polling every 60 s"
    );
}

#[test]
fn without_wake_ups_the_worker_waits_for_its_poll_on_sqlite() {
    // The control: the same worker on SQLite does not claim before its next poll.
    let env = Env::new();
    assert!(!submitted_run_wakes_the_worker(&env));
}

#[test]
fn a_released_run_wakes_an_idle_worker_on_postgres() {
    let db = PgScratch::create();
    let mut env = Env::with_state(&db.url);
    // Longer than the test: only the release makes the run claimable.
    env.lease_ttl = "120s".into();
    let key = "released";
    let mut run = env.spawn(
        &["run", spec(&env, key, 30).to_str().unwrap(), "--key", key],
        &[],
    );
    assert!(wait_until(Duration::from_secs(60), || {
        phase(&env, key).as_deref() == Some("submitted")
    }));
    let mut w = lazy_worker(&env);
    // SIGTERM: `tether run` releases its lease and leaves the job running.
    signal(run.id(), "TERM");
    wait_child(&mut run, Duration::from_secs(30));
    assert!(
        claimed_within(&env, key, Duration::from_secs(10)),
        "the released run was not claimed within 10 s by a worker polling every 60 s:\n{}",
        env.history_text(key)
    );
    let _ = env.run(&["cancel", key]);
    signal(w.id(), "TERM");
    wait_child(&mut w, Duration::from_secs(30));
}
