//! Durability overhead per submission: `tether run` of a trivial local job (`true`) end to end,
//! `durable = true` (journal, lease, intent before the submit, id before the first poll)
//! against `durable = false` (plain submit, poll, result), alternating in the same bench run
//! so that both see the same machine load. Wall time from spawning the process to its exit.
use std::time::{Duration, Instant};

use super::procs::{percentile, Tether};
use super::{Scratch, StoreKind};

fn spec(durable: bool) -> String {
    format!(
        "# fleet bench: durability overhead\ndurable = {durable}\n[job]\nkind = \"local\"\n\
         command = [\"true\"]\n"
    )
}

/// Wall times (µs) of every round, sorted, for each mode.
pub struct DurabilityResult {
    pub store: StoreKind,
    pub durable: Vec<i64>,
    pub plain: Vec<i64>,
}

impl DurabilityResult {
    pub fn header() -> &'static str {
        "| store      | rounds | durable p50 | plain p50 | overhead p50 | durable p90 | plain p90 |\n\
         |------------|--------|-------------|-----------|--------------|-------------|-----------|"
    }
    pub fn row(&self) -> String {
        let (d50, p50) = (
            percentile(&self.durable, 50.0),
            percentile(&self.plain, 50.0),
        );
        let ms = |us: i64| us as f64 / 1000.0;
        format!(
            "| {:<10} | {:>6} | {:>8.1} ms | {:>6.1} ms | {:>9.1} ms | {:>8.1} ms | {:>6.1} ms |",
            self.store.name(),
            self.durable.len(),
            ms(d50),
            ms(p50),
            ms(d50 - p50),
            ms(percentile(&self.durable, 90.0)),
            ms(percentile(&self.plain, 90.0)),
        )
    }
}

pub async fn measure(kind: StoreKind, rounds: usize) -> anyhow::Result<DurabilityResult> {
    let scratch = Scratch::new(kind).await?;
    let jobs = scratch.dir.path().join("jobs");
    let (mut durable, mut plain) = (Vec::new(), Vec::new());
    for d in [true, false] {
        std::fs::write(scratch.dir.path().join(format!("d{d}.toml")), spec(d))?;
    }
    // One unmeasured run per mode first: the store is created and migrated, the binary cached.
    for round in 0..=rounds {
        for d in [true, false] {
            let file = scratch.dir.path().join(format!("d{d}.toml"));
            let file = file.display().to_string();
            let key = format!("dur-{d}-{round}");
            let log = scratch.dir.path().join(format!("{key}.log"));
            let t = Instant::now();
            let mut p = Tether::spawn_with(
                &scratch.location,
                &jobs,
                None,
                true,
                &["run", &file, "--key", &key],
                &log,
            );
            let ok = p.wait(Duration::from_secs(60))?;
            let us = t.elapsed().as_micros() as i64;
            anyhow::ensure!(ok, "tether run failed; see {}", log.display());
            if round > 0 {
                if d { &mut durable } else { &mut plain }.push(us);
            }
        }
    }
    durable.sort_unstable();
    plain.sort_unstable();
    scratch.close().await;
    Ok(DurabilityResult {
        store: kind,
        durable,
        plain,
    })
}
