//! PostgreSQL goes away mid-run and comes back: nothing is lost or doubled. This stops the
//! machine's real PostgreSQL server for a few seconds, so it lives alone in its own test binary
//! (cargo runs test binaries one after another).
mod common;

use std::{process::Command, time::Duration};

use common::*;

fn pg(action: &str) {
    let version = std::fs::read_dir("/etc/postgresql")
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .file_name();
    let st = Command::new("pg_ctlcluster")
        .args([
            "--skip-systemctl-redirect",
            version.to_str().unwrap(),
            "main",
            action,
        ])
        .status()
        .expect("pg_ctlcluster");
    assert!(st.success(), "pg_ctlcluster {action} failed");
}

#[test]
fn database_outage_mid_run_loses_and_doubles_nothing() {
    let db = PgScratch::create();
    let env = Env::with_state(&db.url);
    let counter = env.path("counter");
    for i in 0..20 {
        let key = format!("outage-{i}");
        let body = format!(
            "poll_interval = \"200ms\"\n[job]\nkind = 'local'\ncommand = ['sh', '-c', 'echo {key} >> {}; sleep {}']\n",
            counter.display(),
            2 + i % 4
        );
        let spec = env.spec(&format!("{key}.toml"), &body);
        assert!(env
            .run(&["submit", spec.to_str().unwrap(), "--key", &key])
            .status
            .success());
    }
    let mut worker = env.spawn(
        &["worker", "--concurrency", "32", "--local-slots", "8"],
        &[],
    );
    assert!(wait_until(Duration::from_secs(60), || env
        .status("outage-0")
        .is_some_and(|s| s["phase"]["phase"] == "submitted")));
    pg("stop");
    std::thread::sleep(Duration::from_secs(6)); // longer than the lease: leases are re-validated after
    pg("start");
    assert!(wait_until(Duration::from_secs(60), || Command::new(
        "pg_isready"
    )
    .args(["-h", "127.0.0.1", "-q"])
    .status()
    .is_ok_and(|s| s.success())));
    let finished = wait_until(Duration::from_secs(180), || {
        let out = env.run(&["ls", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v.as_array()
            .is_some_and(|a| a.len() == 20 && a.iter().all(|r| r["phase"]["phase"] == "finished"))
    });
    signal(worker.id(), "TERM");
    wait_child(&mut worker, Duration::from_secs(30));
    assert!(finished, "runs did not finish after the outage");
    let out = env.run(&["ls", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in v.as_array().unwrap() {
        assert_eq!(r["state"], "succeeded", "{r}");
    }
    let text = std::fs::read_to_string(&counter).unwrap();
    let mut keys: Vec<&str> = text.lines().collect();
    keys.sort();
    let n = keys.len();
    keys.dedup();
    assert_eq!((n, keys.len()), (20, 20), "each job exactly once: {text}");
}
