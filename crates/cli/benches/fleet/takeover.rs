//! Takeover latency: how long after a worker's SIGKILL its runs are polled by the next owner.
//!
//! Per round: a fresh state store, `runs` queued local runs (`sleep 600`), worker A drives them
//! until every one is `submitted`, then (at a random point of A's renewal cycle) A is SIGKILLed
//! and worker B started at once. For each run the latency is the `at_ms` of the first `poll`
//! history entry written with B's epoch, minus the wall time of the kill. Afterwards B is stopped
//! and every local job and supervisor killed.
use std::time::{Duration, Instant};

use tether_core::{
    ids::{fnv1a64, Epoch, RunKey},
    journal::Phase,
    store::NewRun,
};

use super::procs::{latency_cells, now_ms, percentile, JobsReaper, Tether};
use super::{Scratch, StoreKind};

const SPEC: &str =
    "# fleet bench: takeover\n[job]\nkind = \"local\"\ncommand = [\"sleep\", \"600\"]\n";

/// Latencies (ms) of every run of every round, sorted.
pub struct TakeoverResult {
    pub store: StoreKind,
    pub ttl: &'static str,
    /// Owner liveness on (issue 15) or off (the lease alone, the design before it).
    pub liveness: bool,
    pub latencies: Vec<i64>,
    pub rounds: usize,
}

impl TakeoverResult {
    pub fn row(&self) -> String {
        format!(
            "| {:<10} | {:<12} | {:<8} | {}",
            self.store.name(),
            self.ttl,
            if self.liveness { "on" } else { "off" },
            latency_cells(&self.latencies, self.rounds),
        )
    }
    pub fn header() -> &'static str {
        "| store      | lease        | liveness | rounds |  min ms |  p50 ms |  p99 ms |  max ms |\n\
         |------------|--------------|----------|--------|---------|---------|---------|---------|"
    }
}

/// Runs `rounds` rounds with `ttl` (`None`: the default 9 s lease), liveness on or off.
pub async fn measure(
    store: StoreKind,
    ttl: Option<&'static str>,
    liveness: bool,
    runs: usize,
    rounds: usize,
) -> anyhow::Result<TakeoverResult> {
    let mut latencies = Vec::new();
    for round in 0..rounds {
        let mut l = one_round(store, ttl, liveness, runs, round).await?;
        l.sort_unstable();
        eprintln!(
            "  takeover {} ttl {} liveness {liveness} round {round}: p50 {} ms, max {} ms",
            store.name(),
            ttl.unwrap_or("default"),
            percentile(&l, 50.0),
            l.last().copied().unwrap_or(0)
        );
        latencies.append(&mut l);
    }
    latencies.sort_unstable();
    Ok(TakeoverResult {
        store,
        ttl: ttl.unwrap_or("9s (default)"),
        liveness,
        latencies,
        rounds,
    })
}

async fn one_round(
    kind: StoreKind,
    ttl: Option<&str>,
    liveness: bool,
    runs: usize,
    round: usize,
) -> anyhow::Result<Vec<i64>> {
    let scratch = Scratch::new(kind).await?;
    let jobs = scratch.dir.path().join("jobs");
    let reaper = JobsReaper(jobs.clone());
    let store = tether_store::open(&scratch.location).await?;
    let mut keys = Vec::new();
    for i in 0..runs {
        let key = RunKey::new(format!("takeover-{round}-{i:03}"))?;
        store
            .create_run(&NewRun {
                key: key.clone(),
                kind: "local".into(),
                spec: SPEC.into(),
                spec_name: "takeover.toml".into(),
                spec_hash: format!("{:016x}", fnv1a64(SPEC.as_bytes())),
                queued: true,
                base_dir: None,
            })
            .await?;
        keys.push(key);
    }
    let n = runs.to_string();
    let worker_args = ["worker", "--concurrency", &n, "--local-slots", &n];
    let log = |name: &str| scratch.dir.path().join(name);
    let spawn = |name: &str| {
        Tether::spawn_with(
            &scratch.location,
            &jobs,
            ttl,
            liveness,
            &worker_args,
            &log(name),
        )
    };
    let mut a = spawn("a.log");
    // Every run submitted (its job running) under A.
    let deadline = Instant::now() + Duration::from_secs(120);
    let a_epochs = loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "worker A did not submit all runs in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A grouped count each round (no row loaded); the runs are read only once the count
        // says every one may be submitted (reading them all twice a second loaded the store).
        if super::running(store.as_ref()).await? < runs {
            continue;
        }
        let all = store.list_runs().await?;
        if all.len() == runs
            && all
                .iter()
                .all(|r| matches!(r.journal.phase, Phase::Submitted { .. }))
        {
            break all
                .into_iter()
                .map(|r| (r.key, r.epoch))
                .collect::<std::collections::HashMap<RunKey, Epoch>>();
        }
    };
    // Kill at a random point of A's renewal cycle (every TTL/3), as a real crash would.
    let jitter = (now_ms() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) % 3000;
    tokio::time::sleep(Duration::from_millis(500 + jitter)).await;
    let killed_at = a.kill_now();
    let mut b = spawn("b.log");

    let mut latency: std::collections::HashMap<RunKey, i64> = Default::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while latency.len() < runs {
        anyhow::ensure!(
            Instant::now() < deadline,
            "worker B polled only {} of {runs} runs within 60 s of the kill",
            latency.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        for key in &keys {
            if latency.contains_key(key) {
                continue;
            }
            let a_epoch = a_epochs[key];
            let first_b_poll = store
                .history(key)
                .await?
                .into_iter()
                .find(|e| e.epoch.0 > a_epoch.0 && e.decision == "poll");
            if let Some(e) = first_b_poll {
                latency.insert(key.clone(), e.at_ms - killed_at);
            }
        }
    }
    b.stop(Duration::from_secs(10));
    let killed = reaper.reap();
    anyhow::ensure!(
        killed >= runs,
        "expected to stop {runs} local jobs, signalled {killed}"
    );
    drop(store);
    drop(reaper);
    scratch.close().await;
    Ok(latency.into_values().collect())
}
