//! Worker fleet tests with real processes: several `tether worker` processes share one state
//! store (PostgreSQL or SQLite) while a driver SIGKILLs, SIGSTOPs/SIGCONTs and restarts them.
//! Each job appends its run key to a counter file first thing, so "ran exactly once" is counted
//! outside tether.
mod common;

use std::{
    collections::HashMap,
    process::Child,
    time::{Duration, Instant},
};

use common::*;

fn job_spec(env: &Env, key: &str, sleep_ms: u64) -> std::path::PathBuf {
    let counter = env.path("counter");
    let body = format!(
        "backoff = \"200ms\"\npoll_interval = \"200ms\"\n[job]\nkind = 'local'\ncommand = ['sh', '-c', 'echo {key} >> {}; sleep {}.{:03}']\n",
        counter.display(),
        sleep_ms / 1000,
        sleep_ms % 1000
    );
    env.spec(&format!("{key}.toml"), &body)
}

fn runs(env: &Env) -> Vec<serde_json::Value> {
    let out = env.run(&["ls", "--json"]);
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

fn all_finished(env: &Env) -> bool {
    let r = runs(env);
    !r.is_empty() && r.iter().all(|r| r["phase"]["phase"] == "finished")
}

fn start_worker(env: &Env) -> Child {
    env.spawn(
        &["worker", "--concurrency", "24", "--local-slots", "6"],
        &[],
    )
}

fn chaos(env: &Env, n: usize) {
    let mut rng = Rng::from_time();
    eprintln!("chaos seed {}", rng.0);
    for i in 0..n {
        let key = format!("fleet-{i:03}");
        let spec = job_spec(env, &key, 100 + rng.below(1500));
        let out = env.run(&["submit", spec.to_str().unwrap(), "--key", &key]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            key,
            "submit prints the key"
        );
    }
    let mut workers: Vec<Child> = (0..3).map(|_| start_worker(env)).collect();
    let mut stopped: Vec<Option<Instant>> = vec![None; 3];
    let (mut kills, mut stops) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(400);
    let chaos_until = Instant::now() + Duration::from_secs(25);
    while !all_finished(env) {
        assert!(
            Instant::now() < deadline,
            "the fleet did not finish all runs in time"
        );
        std::thread::sleep(Duration::from_millis(700 + rng.below(800)));
        for (i, s) in stopped.iter_mut().enumerate() {
            // Frozen longer than the 3 s lease: others have taken its runs over by now.
            if s.is_some_and(|t| t.elapsed() > Duration::from_secs(4)) {
                signal(workers[i].id(), "CONT");
                *s = None;
            }
        }
        if Instant::now() > chaos_until {
            continue;
        }
        let i = rng.below(3) as usize;
        if stopped[i].is_some() {
            continue;
        }
        if rng.below(2) == 0 {
            signal(workers[i].id(), "KILL");
            let _ = workers[i].wait();
            workers[i] = start_worker(env);
            kills += 1;
        } else {
            signal(workers[i].id(), "STOP");
            stopped[i] = Some(Instant::now());
            stops += 1;
        }
    }
    for (i, w) in workers.iter_mut().enumerate() {
        if stopped[i].is_some() {
            signal(w.id(), "CONT");
        }
        signal(w.id(), "TERM");
        wait_child(w, Duration::from_secs(30));
    }
    eprintln!("chaos: {kills} SIGKILLs, {stops} SIGSTOPs");
    assert!(kills + stops > 0);

    let counted = std::fs::read_to_string(env.path("counter")).unwrap_or_default();
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for line in counted.lines() {
        *per_key.entry(line.trim()).or_default() += 1;
    }
    let all = runs(env);
    assert_eq!(all.len(), n, "no run lost");
    for r in &all {
        let key = r["key"].as_str().unwrap();
        assert_eq!(r["state"], "succeeded", "{r}");
        assert_eq!(
            per_key.get(key).copied().unwrap_or(0),
            1,
            "job of {key} must run exactly once:\n{}",
            env.history_text(key)
        );
    }
    assert_eq!(per_key.len(), n);
    let taken_over = all
        .iter()
        .filter(|r| r["epoch"].as_i64().unwrap_or(0) >= 2)
        .count();
    assert!(taken_over > 0, "the chaos produced no takeover at all");
    let example = all
        .iter()
        .find(|r| r["epoch"].as_i64().unwrap_or(0) >= 2)
        .unwrap();
    let history = env.history_text(example["key"].as_str().unwrap());
    assert!(
        history.contains("took over") || history.contains("released"),
        "history shows the takeover:\n{history}"
    );
}

#[test]
fn fleet_chaos_on_postgres() {
    let db = PgScratch::create();
    chaos(&Env::with_state(&db.url), 150);
}

#[test]
fn fleet_chaos_on_sqlite() {
    chaos(&Env::new(), 150);
}

#[test]
fn zombie_worker_never_writes_cancels_or_resubmits_after_a_takeover() {
    let db = PgScratch::create();
    let env = Env::with_state(&db.url);
    let spec = job_spec(&env, "zombie", 7000);
    assert!(env
        .run(&["submit", spec.to_str().unwrap(), "--key", "zombie"])
        .status
        .success());
    let mut zombie = start_worker(&env);
    assert!(wait_until(Duration::from_secs(60), || env
        .status("zombie")
        .is_some_and(|s| s["phase"]["phase"] == "submitted")));
    let zombie_epoch = env.status("zombie").unwrap()["epoch"].as_i64().unwrap();
    signal(zombie.id(), "STOP");
    std::thread::sleep(Duration::from_secs(4));
    let mut heir = start_worker(&env);
    assert!(wait_until(Duration::from_secs(30), || env
        .status("zombie")
        .is_some_and(|s| s["epoch"].as_i64() > Some(zombie_epoch))));
    signal(zombie.id(), "CONT");
    assert!(wait_until(Duration::from_secs(60), || all_finished(&env)));
    let s = env.status("zombie").unwrap();
    assert_eq!(s["state"], "succeeded", "the job was not cancelled: {s}");
    assert_eq!(count_lines(&env.path("counter")), 1, "no second submission");
    // After the takeover, nothing was written with the zombie's epoch.
    let out = env.run(&["history", "zombie", "--json"]);
    let h: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let takeover = h
        .iter()
        .position(|e| e["epoch"].as_i64() > Some(zombie_epoch))
        .unwrap();
    assert!(
        h[takeover..]
            .iter()
            .all(|e| e["epoch"].as_i64() != Some(zombie_epoch)),
        "zombie wrote after the takeover: {h:?}"
    );
    for w in [&mut zombie, &mut heir] {
        signal(w.id(), "TERM");
        wait_child(w, Duration::from_secs(30));
    }
}

#[test]
fn graceful_shutdown_hands_runs_over_without_waiting_for_expiry() {
    let db = PgScratch::create();
    let mut env = Env::with_state(&db.url);
    env.lease_ttl = "60s".into(); // expiry would take a minute: the handover must not wait for it
    let spec = job_spec(&env, "handover", 4000);
    assert!(env
        .run(&["submit", spec.to_str().unwrap(), "--key", "handover"])
        .status
        .success());
    let mut first = start_worker(&env);
    assert!(wait_until(Duration::from_secs(60), || env
        .status("handover")
        .is_some_and(|s| s["phase"]["phase"] == "submitted")));
    signal(first.id(), "TERM");
    assert_eq!(
        wait_child(&mut first, Duration::from_secs(30)).code(),
        Some(130)
    );
    let s = env.status("handover").unwrap();
    assert_eq!(s["owner"], serde_json::Value::Null, "released at once: {s}");
    let started = Instant::now();
    let mut second = start_worker(&env);
    assert!(
        wait_until(Duration::from_secs(40), || all_finished(&env)),
        "the second worker did not finish the run"
    );
    assert!(started.elapsed() < Duration::from_secs(45));
    assert_eq!(env.status("handover").unwrap()["state"], "succeeded");
    assert_eq!(count_lines(&env.path("counter")), 1);
    signal(second.id(), "TERM");
    wait_child(&mut second, Duration::from_secs(30));
}

#[test]
fn cancel_reaches_the_worker_that_owns_the_run() {
    let db = PgScratch::create();
    let env = Env::with_state(&db.url);
    let spec = job_spec(&env, "tocancel", 60_000);
    assert!(env
        .run(&["submit", spec.to_str().unwrap(), "--key", "tocancel"])
        .status
        .success());
    let mut worker = start_worker(&env);
    assert!(wait_until(Duration::from_secs(60), || env
        .status("tocancel")
        .is_some_and(|s| s["phase"]["phase"] == "submitted")));
    let owner = env.status("tocancel").unwrap()["owner"].clone();
    let out = env.run(&["cancel", "tocancel"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = env.status("tocancel").unwrap();
    assert_eq!(s["state"], "cancelled", "{s}");
    let h = env.history_text("tocancel");
    assert!(h.contains("cancel"), "{h}");
    // The worker that owned the run killed the job itself: no takeover happened.
    let out = env.run(&["history", "tocancel", "--json"]);
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let cancel = entries
        .iter()
        .find(|e| e["decision"] == "cancel")
        .expect("a cancel decision");
    assert_eq!(cancel["epoch"], s["epoch"], "decided by the owner's epoch");
    assert!(
        owner.as_str().is_some_and(|o| o.starts_with("worker@")),
        "{owner}"
    );
    signal(worker.id(), "TERM");
    wait_child(&mut worker, Duration::from_secs(30));
}

/// A run the store says a worker holds but that none of its tasks drives (what a release lost
/// during a database outage leaves behind) is released by that worker's heartbeat, instead of
/// being renewed forever out of every other worker's reach.
#[test]
fn a_run_held_but_not_driven_is_released_by_the_heartbeat() {
    let db = PgScratch::create();
    let env = Env::with_state(&db.url);
    let busy = job_spec(&env, "busy", 60_000);
    let orphan = job_spec(&env, "orphan", 100);
    assert!(env
        .run(&["submit", busy.to_str().unwrap(), "--key", "busy"])
        .status
        .success());
    let mut w1 = env.spawn(&["worker", "--concurrency", "1"], &[]);
    assert!(wait_until(Duration::from_secs(60), || env
        .status("busy")
        .is_some_and(|s| s["phase"]["phase"] == "submitted")));
    let w1_owner = env.status("busy").unwrap()["owner"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(env
        .run(&["submit", orphan.to_str().unwrap(), "--key", "orphan"])
        .status
        .success());
    // Hand the queued run to w1 behind its back, with a long live lease.
    let sql = format!(
        "UPDATE runs SET owner = '{w1_owner}', epoch = epoch + 1, \
         lease_expires_at_ms = (extract(epoch from now()) * 1000)::bigint + 600000 WHERE key = 'orphan'"
    );
    let name = db.url.rsplit('/').next().unwrap();
    let st = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", name, "-qc", &sql])
        .status()
        .unwrap();
    assert!(st.success());
    let mut w2 = start_worker(&env);
    assert!(
        wait_until(Duration::from_secs(60), || env
            .status("orphan")
            .is_some_and(|s| s["state"] == "succeeded")),
        "the undriven run was never handed over:\n{}",
        env.history_text("orphan")
    );
    let history = env.history_text("orphan");
    assert!(
        history.contains(&format!("lease released by {w1_owner}")),
        "{history}"
    );
    assert_eq!(
        env.status("busy").unwrap()["owner"].as_str(),
        Some(w1_owner.as_str()),
        "w1 still drives its own run"
    );
    for w in [&mut w1, &mut w2] {
        signal(w.id(), "TERM");
        wait_child(w, Duration::from_secs(30));
    }
}

/// A run waiting for a local slot of its worker is cancelled without ever starting: the slot
/// wait listens to the cancel (and to lease loss), it does not launch once the slot frees.
#[test]
fn a_cancel_ends_the_wait_for_a_local_slot_and_nothing_starts() {
    let env = Env::new();
    let long = job_spec(&env, "long", 30_000);
    let queued = job_spec(&env, "queued", 100);
    let submit = |spec: &std::path::Path, key: &str| {
        assert!(env
            .run(&["submit", spec.to_str().unwrap(), "--key", key])
            .status
            .success());
    };
    // The long job first holds the only slot; only then is the second run queued.
    submit(&long, "long");
    let mut worker = env.spawn(&["worker", "--local-slots", "1"], &[]);
    let counter = env.path("counter");
    assert!(wait_until(Duration::from_secs(60), || {
        std::fs::read_to_string(&counter).is_ok_and(|c| c.contains("long"))
    }));
    submit(&queued, "queued");
    assert!(wait_until(Duration::from_secs(60), || {
        env.status("queued")
            .is_some_and(|s| s["phase"]["phase"] == "intent")
    }));
    let started = Instant::now();
    let out = env.run(&["cancel", "queued"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the cancel waited for the slot: {:?}",
        started.elapsed()
    );
    let c = std::fs::read_to_string(&counter).unwrap();
    assert!(
        !c.contains("queued"),
        "the cancelled run's job started: {c}"
    );
    let _ = env.run(&["cancel", "long"]);
    signal(worker.id(), "TERM");
    wait_child(&mut worker, Duration::from_secs(30));
}
