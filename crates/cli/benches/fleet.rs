//! Worker-fleet benchmarks, run against the real `tether` binary. Prints figures as markdown
//! tables; asserts nothing about speed.
//!
//! ```sh
//! cargo bench -p tether-cli --bench fleet                # both sections, small defaults
//! cargo bench -p tether-cli --bench fleet -- takeover    # takeover after a SIGKILL (worker, run)
//! cargo bench -p tether-cli --bench fleet -- rerun       # only the rerun after `kill -9` of a run
//! cargo bench -p tether-cli --bench fleet -- capacity    # runs in flight per worker, RSS, CPU
//! cargo bench -p tether-cli --bench fleet -- durability  # `durable = true` against `false`
//! ```
//!
//! Settings (environment): `FLEET_STORES` (`sqlite,postgres`; PostgreSQL through
//! `TETHER_TEST_PG_ADMIN`, default `postgres://postgres@127.0.0.1:5432/postgres`, skipped when
//! unreachable), `FLEET_TAKEOVER_RUNS` (30), `FLEET_TAKEOVER_ROUNDS` (3), `FLEET_RERUN_RUNS`
//! (10, `tether run`s killed and rerun per round), `FLEET_RERUN_ROUNDS` (as takeover),
//! `FLEET_CAPACITY_RUNS`
//! (10000), `FLEET_WINDOW_SECS` (20, the capacity sampling window), `FLEET_CAPACITY_STATUS`
//! (`bulk,per-run`: which status designs the capacity section measures; `bulk` alone for
//! 100,000 runs, where one request per run would be 20,000 requests/s),
//! `FLEET_DURABILITY_ROUNDS` (20), `FLEET_WRAP` (a profiler command to run each `tether` under,
//! e.g. `heaptrack -o /tmp/w`; the /proc figures are then the wrapper's).
//!
//! Everything started (workers, local jobs and their supervisors, the fake Spark master,
//! scratch databases, temporary directories) is stopped or removed by guards, also on panic.
#[path = "fleet/capacity.rs"]
mod capacity;
#[path = "fleet/durability.rs"]
mod durability;
#[path = "fleet/procs.rs"]
mod procs;
#[path = "fleet/rerun.rs"]
mod rerun;
#[path = "fleet/takeover.rs"]
mod takeover;

/// The fake Spark master of the capacity section.
use tether_testkit::fakes::spark_standalone as fake_spark;

use std::time::Duration;

use tether_store::postgres::scratch::ScratchDb;

/// Runs with a job intended or submitted and no outcome yet, by one grouped count.
pub(crate) async fn running(store: &dyn tether_core::Store) -> anyhow::Result<usize> {
    Ok(store
        .count_runs()
        .await?
        .into_iter()
        .filter(|(state, _, _)| *state == tether_core::store::RunState::Running)
        .map(|(_, _, n)| n as usize)
        .sum())
}

/// Which state store a measurement uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreKind {
    Sqlite,
    Postgres,
}

impl StoreKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "SQLite",
            StoreKind::Postgres => "PostgreSQL",
        }
    }
}

/// A fresh state store and a temporary directory (jobs, logs); both removed on drop.
pub(crate) struct Scratch {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) location: String,
    db: Option<ScratchDb>,
}

impl Scratch {
    pub(crate) async fn new(kind: StoreKind) -> anyhow::Result<Scratch> {
        let dir = tempfile::tempdir()?;
        Ok(match kind {
            StoreKind::Sqlite => Scratch {
                location: dir.path().join("state.db").display().to_string(),
                dir,
                db: None,
            },
            StoreKind::Postgres => {
                let db = ScratchDb::create_from_env().await?;
                Scratch {
                    location: db.url().to_string(),
                    dir,
                    db: Some(db),
                }
            }
        })
    }

    /// Drops the scratch database now (the drop guard would do it too).
    pub(crate) async fn close(mut self) {
        if let Some(db) = self.db.take() {
            db.drop_db().await;
        }
    }
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

async fn stores() -> Vec<StoreKind> {
    let wanted = std::env::var("FLEET_STORES").unwrap_or_else(|_| "sqlite,postgres".into());
    let mut out = Vec::new();
    for s in wanted.split(',').map(str::trim) {
        match s {
            "sqlite" => out.push(StoreKind::Sqlite),
            "postgres" => match ScratchDb::create_from_env().await {
                Ok(db) => {
                    db.drop_db().await;
                    out.push(StoreKind::Postgres);
                }
                Err(e) => println!("PostgreSQL skipped: {e}"),
            },
            other => println!("unknown store {other:?} in FLEET_STORES, ignored"),
        }
    }
    out
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!("{cores} cores, {mem:.0} GiB")
}

/// "store what: p50 on/off = ratio, p99 on/off = ratio" (sorted inputs).
fn ratio(store: StoreKind, what: &str, on: &[i64], off: &[i64]) -> String {
    let r = |p| {
        let (a, b) = (procs::percentile(on, p), procs::percentile(off, p));
        format!(
            "{a} ms vs {b} ms ({:.0}x faster)",
            b as f64 / (a.max(1)) as f64
        )
    };
    format!(
        "- {} {what}: p50 {}, p99 {}",
        store.name(),
        r(50.0),
        r(99.0)
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; everything starting with `-` is ignored.
    let sections: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |s: &str| sections.is_empty() || sections.iter().any(|a| a == s);
    for s in &sections {
        anyhow::ensure!(
            ["takeover", "rerun", "capacity", "durability"].contains(&s.as_str()),
            "unknown section {s:?}: use takeover, rerun, capacity, durability or nothing (all)"
        );
    }
    let stores = stores().await;
    println!("fleet bench on {}", machine());

    // `rerun` alone measures the rerun after `kill -9` of `tether run`; `takeover` both.
    if want("takeover") || want("rerun") {
        let runs = setting("FLEET_TAKEOVER_RUNS", 30);
        let rounds = setting("FLEET_TAKEOVER_ROUNDS", 3);
        let mut rows = Vec::new();
        let mut ratios = Vec::new();
        for &store in stores.iter().filter(|_| want("takeover")) {
            // Liveness on (issue 15) beside the lease alone (the design before it).
            let on = takeover::measure(store, None, true, runs, rounds).await?;
            let off = takeover::measure(store, None, false, runs, rounds).await?;
            ratios.push(ratio(
                store,
                "worker SIGKILL -> first poll",
                &on.latencies,
                &off.latencies,
            ));
            rows.extend([on, off]);
            rows.push(takeover::measure(store, Some("3s"), false, runs, rounds).await?);
        }
        if want("takeover") {
            println!("\nTakeover: SIGKILL of a worker holding {runs} local runs -> first poll by the next worker");
            println!("{}", takeover::TakeoverResult::header());
            for r in &rows {
                println!("{}", r.row());
            }
        }
        let reruns = setting("FLEET_RERUN_RUNS", 10);
        let rounds = setting("FLEET_RERUN_ROUNDS", rounds);
        let mut rows = Vec::new();
        for &store in &stores {
            let on = rerun::measure(store, true, reruns, rounds).await?;
            let off = rerun::measure(store, false, reruns, rounds).await?;
            ratios.push(ratio(
                store,
                "kill -9 of tether run + rerun -> takeover",
                &on.times,
                &off.times,
            ));
            rows.extend([on, off]);
        }
        println!("\nRerun: kill -9 of `tether run` ({reruns} at once, 9 s lease) and an immediate rerun -> lease taken by the rerun");
        println!("{}", rerun::RerunResult::header());
        for r in &rows {
            println!("{}", r.row());
        }
        println!("\nLiveness on against off (same bench run), p50 and p99:");
        for line in &ratios {
            println!("{line}");
        }
    }

    if want("capacity") {
        let runs = setting("FLEET_CAPACITY_RUNS", 10_000);
        let window = Duration::from_secs(setting("FLEET_WINDOW_SECS", 20) as u64);
        let mut rows = Vec::new();
        for &store in &stores {
            let designs =
                std::env::var("FLEET_CAPACITY_STATUS").unwrap_or_else(|_| "bulk,per-run".into());
            for bulk in [true, false] {
                if designs
                    .split(',')
                    .any(|d| d.trim() == if bulk { "bulk" } else { "per-run" })
                {
                    rows.push(capacity::measure(store, runs, window, bulk).await?);
                }
            }
        }
        println!(
            "\nCapacity: one worker, remote runs polled every 5 s (fake Spark master on loopback)"
        );
        println!("{}", capacity::CapacityResult::header());
        for r in &rows {
            println!("{}", r.row());
        }
        for r in &rows {
            println!(
                "{}: runs written in {:.1} s; sampled over {:.0} s; {} connections open at the fake master; {} runs dropped as lost",
                r.store.name(),
                r.create_secs,
                r.window_secs,
                r.server_conns,
                r.lost
            );
        }
        println!("\nBulk observation against one status request per run (same bench run):");
        for pair in rows.chunks(2) {
            if let [b, p] = pair {
                if !b.bulk || p.bulk {
                    continue; // one design measured only (FLEET_CAPACITY_STATUS)
                }
                println!(
                    "{}: backend requests/s {:.1} against {:.0} (x{:.4}); all ends seen {:.1} s against {:.1} s",
                    b.store.name(),
                    b.backend_rps,
                    p.backend_rps,
                    b.backend_rps / p.backend_rps.max(f64::MIN_POSITIVE),
                    b.end_seen_secs,
                    p.end_seen_secs
                );
            }
        }
    }
    if want("durability") {
        let rounds = setting("FLEET_DURABILITY_ROUNDS", 20);
        let mut rows = Vec::new();
        for &store in &stores {
            rows.push(durability::measure(store, rounds).await?);
        }
        println!("\nDurability overhead: `tether run` of a local `true`, process start to exit");
        println!("{}", durability::DurabilityResult::header());
        for r in &rows {
            println!("{}", r.row());
        }
    }
    Ok(())
}
