//! Rerun takeover: `kill -9` of `tether run` and an immediate rerun of the same command.
//!
//! Per round: a fresh state store, `runs` `tether run` processes (one key each, `sleep 600`
//! jobs) until every run is `submitted`; then all of them are SIGKILLed and rerun at once. For
//! each run the figure is the `at_ms` of the rerun's `lease-acquired` history entry (a newer
//! epoch) minus the wall time of its kill. Afterwards the reruns are stopped (SIGTERM leaves
//! the jobs running; the reaper kills them).
use std::time::{Duration, Instant};

use tether_core::{ids::RunKey, journal::Phase};

use super::procs::{latency_cells, now_ms, percentile, JobsReaper, Tether};
use super::{Scratch, StoreKind};

const SPEC: &str =
    "# fleet bench: rerun takeover\n[job]\nkind = \"local\"\ncommand = [\"sleep\", \"600\"]\n";

/// Takeover times (ms) of every run of every round, sorted.
pub struct RerunResult {
    pub store: StoreKind,
    pub liveness: bool,
    pub times: Vec<i64>,
    pub rounds: usize,
}

impl RerunResult {
    pub fn row(&self) -> String {
        format!(
            "| {:<10} | {:<8} | {}",
            self.store.name(),
            if self.liveness { "on" } else { "off" },
            latency_cells(&self.times, self.rounds),
        )
    }
    pub fn header() -> &'static str {
        "| store      | liveness | rounds |  min ms |  p50 ms |  p99 ms |  max ms |\n\
         |------------|----------|--------|---------|---------|---------|---------|"
    }
}

/// Runs `rounds` rounds of `runs` killed-and-rerun `tether run`s (default 9 s lease).
pub async fn measure(
    store: StoreKind,
    liveness: bool,
    runs: usize,
    rounds: usize,
) -> anyhow::Result<RerunResult> {
    let mut times = Vec::new();
    for round in 0..rounds {
        let mut t = one_round(store, liveness, runs, round).await?;
        t.sort_unstable();
        eprintln!(
            "  rerun {} liveness {liveness} round {round}: p50 {} ms, max {} ms",
            store.name(),
            percentile(&t, 50.0),
            t.last().copied().unwrap_or(0)
        );
        times.append(&mut t);
    }
    times.sort_unstable();
    Ok(RerunResult {
        store,
        liveness,
        times,
        rounds,
    })
}

async fn one_round(
    kind: StoreKind,
    liveness: bool,
    runs: usize,
    round: usize,
) -> anyhow::Result<Vec<i64>> {
    let scratch = Scratch::new(kind).await?;
    let jobs = scratch.dir.path().join("jobs");
    let reaper = JobsReaper(jobs.clone());
    let spec = scratch.dir.path().join("rerun.toml");
    std::fs::write(&spec, SPEC)?;
    let spec = spec.display().to_string();
    let store = tether_store::open(&scratch.location).await?;
    let keys: Vec<String> = (0..runs).map(|i| format!("rerun-{round}-{i:03}")).collect();
    let spawn = |key: &str, name: String| {
        let log = scratch.dir.path().join(name);
        let args = ["run", spec.as_str(), "--key", key];
        Tether::spawn_with(&scratch.location, &jobs, None, liveness, &args, &log)
    };
    let mut first: Vec<Tether> = keys
        .iter()
        .map(|k| spawn(k, format!("{k}.a.log")))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let epochs = loop {
        anyhow::ensure!(Instant::now() < deadline, "runs not submitted in time");
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
                .map(|r| (r.key.as_str().to_string(), r.epoch.0))
                .collect::<std::collections::HashMap<String, i64>>();
        }
    };
    // A random point of the renewal cycle, as a real crash would hit.
    let jitter = (now_ms() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) % 3000;
    tokio::time::sleep(Duration::from_millis(500 + jitter)).await;
    let mut killed_at = Vec::new();
    let mut second = Vec::new();
    for (t, key) in first.iter_mut().zip(&keys) {
        killed_at.push(t.kill_now());
        second.push(spawn(key, format!("{key}.b.log")));
    }
    let mut took: std::collections::HashMap<String, i64> = Default::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while took.len() < runs {
        anyhow::ensure!(
            Instant::now() < deadline,
            "reruns took over only {} of {runs} runs within 60 s",
            took.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (key, at) in keys.iter().zip(&killed_at) {
            if took.contains_key(key) {
                continue;
            }
            let acquired = store
                .history(&RunKey::new(key.clone())?)
                .await?
                .into_iter()
                .find(|e| e.epoch.0 > epochs[key] && e.decision == "lease-acquired");
            if let Some(e) = acquired {
                took.insert(key.clone(), e.at_ms - at);
            }
        }
    }
    for t in &mut second {
        t.stop(Duration::from_secs(10));
    }
    reaper.reap();
    drop(store);
    drop(reaper);
    scratch.close().await;
    Ok(took.into_values().collect())
}
