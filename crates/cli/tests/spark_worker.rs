//! A worker whose runs are on a real Spark 4.3 standalone cluster (`TETHER_SPARK_ENV`, or one
//! started for this test binary: see `spark_support`). Between two polls such a run holds no
//! task: it waits parked in the worker (the connector has bulk status and cannot notice a change
//! by itself), still leased and renewed by the worker's heartbeat.
//!
//! Drivers are counted from outside tether: the master's list of drivers whose launch command
//! carries the run's tags.
mod common;
#[path = "../../connectors/tests/spark_support/mod.rs"]
mod spark_support;

use std::time::Duration;

use common::*;
use spark_support::{cluster, drivers_with_tag_prefix, spec, T};

fn epoch(env: &Env, key: &str) -> i64 {
    env.status(key).expect("status")["epoch"]
        .as_i64()
        .expect("epoch")
}

/// A worker frozen (SIGSTOP) for less than its lease while its Spark runs wait parked keeps
/// them: a second worker polling the store all along takes none (no false takeover of a live
/// owner), and after SIGCONT the first one finishes each with its one driver.
#[test]
fn a_worker_frozen_while_its_spark_runs_wait_parked_keeps_them() {
    let mut env = Env::new();
    env.lease_ttl = "8s".into();
    let keys: Vec<String> = (0..2)
        .map(|i| format!("spark-parked-{i}-{}", std::process::id()))
        .collect();
    let body = spec(
        &cluster().rest,
        &["sleep", "14"],
        "",
        "poll_interval = \"1s\"",
        "",
    );
    let s = env.spec("spark.toml", &body);
    for k in &keys {
        let out = env.run(&["submit", s.to_str().unwrap(), "--key", k]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let worker = ["worker", "--concurrency", "4"];
    let mut a = env.spawn(&worker, &[]);
    assert!(
        wait_until(T, || keys
            .iter()
            .all(|k| phase(&env, k).as_deref() == Some("submitted"))),
        "the worker never recorded the drivers' ids"
    );
    // Past the first polls: the runs are parked between two of them.
    std::thread::sleep(Duration::from_secs(2));
    let before: Vec<i64> = keys.iter().map(|k| epoch(&env, k)).collect();
    signal(a.id(), "STOP");
    let mut b = env.spawn(&worker, &[]);
    // Frozen for 4 s: less than the 8 s lease, more than eight of the heir's claim ticks.
    std::thread::sleep(Duration::from_secs(4));
    let during: Vec<i64> = keys.iter().map(|k| epoch(&env, k)).collect();
    signal(a.id(), "CONT");
    assert_eq!(
        during, before,
        "a live (frozen) owner's parked runs were taken"
    );
    assert!(
        wait_until(T, || keys
            .iter()
            .all(|k| phase(&env, k).as_deref() == Some("finished"))),
        "the runs did not finish"
    );
    let after: Vec<i64> = keys.iter().map(|k| epoch(&env, k)).collect();
    assert_eq!(after, before, "the frozen worker finished its own runs");
    for k in &keys {
        let v = env.status(k).expect("status");
        assert_eq!(v["state"], "succeeded", "{v}\n{}", env.history_text(k));
        let drivers = drivers_with_tag_prefix(&tag_prefix(&env, k));
        assert_eq!(drivers.len(), 1, "one driver for {k}: {drivers:?}");
        assert_eq!(drivers[0].1, "FINISHED", "{drivers:?}");
        assert!(
            env.decisions(k).contains(&"poll".to_string()),
            "{}",
            env.history_text(k)
        );
    }
    for w in [&mut a, &mut b] {
        signal(w.id(), "TERM");
        wait_child(w, Duration::from_secs(30));
    }
}
