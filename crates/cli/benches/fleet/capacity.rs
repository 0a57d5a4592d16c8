//! In-flight capacity: one `tether worker --concurrency N` holding N remote runs that it polls
//! every 5 s against the fake Spark master ([`super::fake_spark`]).
//!
//! The N runs (one spec text, `kind = "spark-standalone"`) are written straight into a fresh
//! store with `queued: true`; then ONE worker is started, and timed until every run is
//! `submitted` and has been polled at least once. Then, over a sampling window, the worker's
//! VmRSS/VmHWM, threads, sockets and CPU time (utime+stime from `/proc/PID/stat`) and the fake
//! master's request rate (every request: status, `/json/`, logs) are read. Once every run is
//! submitted the fake lists its drivers in `/json/` as a real master does (not before, so that
//! the submit phase is measured as in earlier runs of this bench). Last, the fake says every driver `FINISHED` and
//! the time until the store shows every run finished is taken (status latency at a 5 s poll).
//!
//! Each store is measured twice in the same bench run: with bulk observation (one `/json/` per
//! tick for all runs) and with `TETHER_BULK_STATUS=off` (one status request per run, the design
//! before it), and the request rates are printed as a ratio.
use std::{
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use tether_core::{
    ids::{fnv1a64, RunKey},
    store::{NewRun, RunState},
};

use super::fake_spark::FakeSpark;
use super::procs::{cpu_seconds, fds, proc_status, Tether};
use super::{Scratch, StoreKind};

/// Poll interval written into the spec.
const POLL_SECS: f64 = 5.0;

pub struct CapacityResult {
    pub store: StoreKind,
    pub bulk: bool,
    /// Requests of every kind the fake master answered per second in the window.
    pub backend_rps: f64,
    /// From "every driver FINISHED" to every run finished in the store.
    pub end_seen_secs: f64,
    pub runs: usize,
    pub in_flight: usize,
    pub create_secs: f64,
    pub submit_all_secs: f64,
    pub polled_all_secs: f64,
    pub rss_mib: f64,
    pub hwm_mib: f64,
    pub threads: f64,
    pub sockets: usize,
    pub cpu_pct: f64,
    pub window_secs: f64,
    pub server_conns: usize,
    pub lost: usize,
}

impl CapacityResult {
    pub fn header() -> &'static str {
        "| store      | status   | runs in flight | claim+submit all | all polled | RSS MiB | peak RSS MiB | threads | sockets | backend requests/s | all ends seen | worker CPU |\n\
         |------------|----------|----------------|------------------|------------|---------|--------------|---------|---------|--------------------|---------------|------------|"
    }
    pub fn row(&self) -> String {
        format!(
            "| {:<10} | {:<8} | {:>14} | {:>14.1} s | {:>8.1} s | {:>7.0} | {:>12.0} | {:>7.0} | {:>7} | {:>18.1} | {:>11.1} s | {:>8.0} % |",
            self.store.name(),
            if self.bulk { "bulk" } else { "per run" },
            format!("{}/{}", self.in_flight, self.runs),
            self.submit_all_secs,
            self.polled_all_secs,
            self.rss_mib,
            self.hwm_mib,
            self.threads,
            self.sockets,
            self.backend_rps,
            self.end_seen_secs,
            self.cpu_pct,
        )
    }
}

fn spec(url: &str) -> String {
    format!(
        "# fleet bench: capacity\npoll_interval = \"5s\"\n[job]\nkind = \"spark-standalone\"\n\
         master_rest = \"{url}\"\nmaster_ui = \"{url}\"\napp_resource = \"file:/bench/app.jar\"\n\
         main_class = \"bench.Main\"\n"
    )
}

pub async fn measure(
    kind: StoreKind,
    runs: usize,
    window: Duration,
    bulk: bool,
) -> anyhow::Result<CapacityResult> {
    let fake = FakeSpark::start().await?;
    let scratch = Scratch::new(kind).await?;
    let store = tether_store::open(&scratch.location).await?;
    let text = spec(&fake.url());
    let hash = format!("{:016x}", fnv1a64(text.as_bytes()));

    // Write the runs with a few concurrent writers.
    let t0 = Instant::now();
    let writers = 4;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let (store, text, hash) = (Arc::clone(&store), text.clone(), hash.clone());
        tasks.spawn(async move {
            for i in (w..runs).step_by(writers) {
                store
                    .create_run(&NewRun {
                        key: RunKey::new(format!("cap-{i:05}"))?,
                        kind: "spark-standalone".into(),
                        spec: text.clone(),
                        spec_name: "capacity.toml".into(),
                        spec_hash: hash.clone(),
                        queued: true,
                        base_dir: None,
                    })
                    .await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let create_secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "  capacity {}: {runs} runs written in {create_secs:.1} s",
        kind.name()
    );

    let jobs = scratch.dir.path().join("jobs");
    let n = runs.to_string();
    let mut worker = Tether::spawn_env(
        &scratch.location,
        &jobs,
        None,
        true,
        &[("TETHER_BULK_STATUS", if bulk { "on" } else { "off" })],
        &["worker", "--concurrency", &n],
        &scratch.dir.path().join("worker.log"),
    );
    let pid = worker.pid();
    let mut keep_log = KeepLog(Some(scratch.dir.path().join("worker.log")));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(300);
    let mut submit_all_secs = None;
    // Listings of the master once every run was submitted: the second covers every run.
    let mut listings_at_submit_all = u64::MAX;
    let mut last_report = Instant::now();
    let (mut progress, mut progress_at) = (0, Instant::now());
    let polled_all_secs = loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the worker did not submit and poll all {runs} runs within 5 minutes"
        );
        anyhow::ensure!(
            progress_at.elapsed() < Duration::from_secs(60),
            "no progress for 60 s: {progress} of {runs} runs submitted; see {}",
            scratch.dir.path().join("worker.log").display()
        );
        anyhow::ensure!(
            cpu_seconds(pid).is_some(),
            "the worker exited; see {}",
            scratch.dir.path().join("worker.log").display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        if submit_all_secs.is_none() {
            let submitted = count_submitted(store.as_ref()).await?;
            if submitted > progress {
                (progress, progress_at) = (submitted, Instant::now());
            }
            if submitted == runs {
                submit_all_secs = Some(start.elapsed().as_secs_f64());
                listings_at_submit_all = fake.stats.master_json.load(Ordering::Relaxed);
                // From now on the master lists its drivers, as a real one does (not before: the
                // submit phase is measured as in earlier bench runs, with an empty list).
                fake.stats.list_drivers.store(true, Ordering::SeqCst);
            } else if last_report.elapsed() > Duration::from_secs(10) {
                last_report = Instant::now();
                eprintln!(
                    "  capacity {}: {submitted}/{runs} submitted after {:.0} s, RSS {:.0} MiB",
                    kind.name(),
                    start.elapsed().as_secs_f64(),
                    proc_status(pid, "VmRSS").unwrap_or(0.0)
                );
            }
        }
        let polled = if bulk {
            fake.stats.master_json.load(Ordering::Relaxed)
                >= listings_at_submit_all.saturating_add(2)
        } else {
            fake.stats.polled_count() >= runs
        };
        if submit_all_secs.is_some() && polled {
            break start.elapsed().as_secs_f64();
        }
    };
    // Settle for one poll interval, then sample.
    tokio::time::sleep(Duration::from_secs_f64(POLL_SECS)).await;
    let cpu0 = cpu_seconds(pid).unwrap_or(0.0);
    let requests0 = requests(&fake);
    let t = Instant::now();
    let mut rss_max: f64 = 0.0;
    while t.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_max = rss_max.max(proc_status(pid, "VmRSS").unwrap_or(0.0));
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid).unwrap_or(0.0) - cpu0;
    let backend = requests(&fake) - requests0;
    let hwm_mib = proc_status(pid, "VmHWM").unwrap_or(0.0);
    let threads = proc_status(pid, "Threads").unwrap_or(0.0);
    let (_, sockets) = fds(pid);
    let in_flight = count_submitted(store.as_ref()).await?;
    let s = &fake.stats;
    let (open, total) = fake.server.connections();
    let lost = std::fs::read_to_string(scratch.dir.path().join("worker.log"))
        .unwrap_or_default()
        .matches("lease lost")
        .count();
    // Renewal outages: the heartbeat logs the first failed beat of each (then stays quiet).
    let log = std::fs::read_to_string(scratch.dir.path().join("worker.log")).unwrap_or_default();
    let outages: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cannot renew leases"))
        .collect();
    let renew_failed = outages.len();
    if let Some(first) = outages.first() {
        eprintln!("  capacity {}: first renewal outage: {first}", kind.name());
    }
    eprintln!(
        "  capacity {}: {lost} runs dropped as lost, {renew_failed} renewal outages; fake master saw {} creates, {} /json/, {} log reads, {} other, {} connections ({} open)",
        kind.name(),
        s.creates.load(Ordering::Relaxed),
        s.master_json.load(Ordering::Relaxed),
        s.logs.load(Ordering::Relaxed),
        s.other.load(Ordering::Relaxed),
        total,
        open,
    );
    // Every driver ends at once: how soon does the worker see it?
    fake.stats.finished.store(true, Ordering::SeqCst);
    let ended = Instant::now();
    let end_seen_secs = loop {
        let finished = count(store.as_ref(), RunState::is_finished).await?;
        if finished == runs {
            break ended.elapsed().as_secs_f64();
        }
        anyhow::ensure!(
            ended.elapsed() < Duration::from_secs(180),
            "only {finished} of {runs} runs finished 180 s after their drivers did"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let result = CapacityResult {
        store: kind,
        bulk,
        backend_rps: backend as f64 / secs,
        end_seen_secs,
        runs,
        in_flight,
        create_secs,
        submit_all_secs: submit_all_secs.unwrap_or(0.0),
        polled_all_secs,
        rss_mib: rss_max,
        hwm_mib,
        threads,
        sockets,
        cpu_pct: 100.0 * cpu / secs,
        window_secs: secs,
        server_conns: open,
        lost,
    };
    worker.stop(Duration::from_secs(30));
    keep_log.0 = None;
    drop(store);
    scratch.close().await;
    Ok(result)
}

/// On a failed measurement, copies the worker's log out of the scratch directory (which is
/// removed) so the messages pointing at it can be followed.
struct KeepLog(Option<std::path::PathBuf>);

impl Drop for KeepLog {
    fn drop(&mut self) {
        if let Some(log) = self.0.take() {
            let kept =
                std::env::temp_dir().join(format!("fleet-capacity-{}.log", std::process::id()));
            if std::fs::copy(&log, &kept).is_ok() {
                eprintln!("  capacity: the worker's log is kept at {}", kept.display());
            }
        }
    }
}

/// Every request the fake master answered so far.
fn requests(fake: &FakeSpark) -> u64 {
    let s = &fake.stats;
    s.statuses.load(Ordering::Relaxed)
        + s.json_received.load(Ordering::Relaxed)
        + s.logs.load(Ordering::Relaxed)
        + s.other.load(Ordering::Relaxed)
        + s.creates.load(Ordering::Relaxed)
}

/// Runs in flight (intent or submitted: an intent lasts only until its submit answers).
async fn count_submitted(store: &dyn tether_core::Store) -> anyhow::Result<usize> {
    count(store, |s| s == RunState::Running).await
}

/// Runs in the states `which` admits, by one grouped count: reading every run twice a second
/// (`list_runs`) loaded the store beside the worker it measures, O(all runs) each time.
async fn count(
    store: &dyn tether_core::Store,
    which: impl Fn(RunState) -> bool,
) -> anyhow::Result<usize> {
    Ok(store
        .count_runs()
        .await?
        .into_iter()
        .filter(|(state, _, _)| which(*state))
        .map(|(_, _, n)| n as usize)
        .sum())
}
