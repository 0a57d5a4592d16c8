//! Store throughput: runs driven through create → acquire → intent → submitted → finished
//! (5 state transitions each), on SQLite and on PostgreSQL, sequentially and with concurrent
//! drivers. Prints figures; asserts nothing about speed.
//!
//! `cargo bench -p tether-store --bench throughput` (PostgreSQL via `TETHER_TEST_PG_ADMIN`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`; skipped if unreachable).
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use tether_core::{
    ids::{Epoch, ExternalId, Generation, OwnerId, RunKey, Tag},
    journal::{Outcome, Shape, Submission},
    store::{Acquire, HistoryEntry, NewRun},
    Store,
};

/// Time spent per configuration.
const BUDGET: Duration = Duration::from_millis(1500);

fn entry(epoch: Epoch, decision: &str) -> HistoryEntry {
    HistoryEntry {
        at_ms: 0,
        epoch,
        generation: Some(Generation(1)),
        decision: decision.into(),
        reason: "bench".into(),
    }
}

/// Drives one run through its whole life.
async fn one_run(store: &dyn Store, key: RunKey, owner: &OwnerId) -> anyhow::Result<()> {
    store
        .create_run(&NewRun {
            key: key.clone(),
            kind: "local".into(),
            spec: "[job]\nkind = \"local\"\n".into(),
            spec_name: "bench.toml".into(),
            spec_hash: "h".into(),
            queued: false,
        })
        .await?;
    let lease = match store.acquire(&key, owner, Duration::from_secs(60)).await? {
        Acquire::Acquired(l, _) => l,
        Acquire::Held(_) => anyhow::bail!("run {key} held"),
    };
    let sub = Submission {
        generation: Generation(1),
        tag: Tag::derive(
            &tether_core::ids::StoreId::new("testst0r").unwrap(),
            &key,
            Generation(1),
        ),
        shape: Shape::Normal,
    };
    store
        .record_intent(&lease, &sub, None, None, &entry(lease.epoch, "submit"))
        .await?;
    store
        .record_submitted(
            &lease,
            Generation(1),
            &ExternalId("app-1".into()),
            &entry(lease.epoch, "submitted"),
        )
        .await?;
    let outcome = Outcome::Succeeded {
        result: serde_json::json!({"exit_code": 0}),
    };
    store
        .record_finished(&lease, &outcome, &entry(lease.epoch, "finish"))
        .await?;
    Ok(())
}

async fn measure(label: &'static str, store: Arc<dyn Store>, drivers: usize) -> anyhow::Result<()> {
    let counter = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for d in 0..drivers {
        let (store, counter) = (Arc::clone(&store), Arc::clone(&counter));
        tasks.spawn(async move {
            let owner = OwnerId(format!("bench-{d}"));
            while start.elapsed() < BUDGET {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                one_run(
                    store.as_ref(),
                    RunKey::new(format!("{label}-{drivers}-{n}"))?,
                    &owner,
                )
                .await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let secs = start.elapsed().as_secs_f64();
    let runs = counter.load(Ordering::Relaxed) as f64;
    println!(
        "{label:<10} drivers={drivers:<3} runs={runs:<6} {:>8.0} runs/s {:>9.0} transitions/s",
        runs / secs,
        runs * 5.0 / secs
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");
    let sqlite = tether_store::open(path.to_str().unwrap_or("bench.db")).await?;
    measure("sqlite", Arc::clone(&sqlite), 1).await?;
    measure("sqlite", sqlite, 4).await?;

    match tether_store::postgres::scratch::ScratchDb::create_from_env().await {
        Ok(db) => {
            let pg = tether_store::open(db.url()).await?;
            measure("postgres", Arc::clone(&pg), 1).await?;
            measure("postgres", Arc::clone(&pg), 16).await?;
            measure("postgres", pg, 64).await?;
            db.drop_db().await;
        }
        Err(e) => println!("postgres   skipped: {e}"),
    }
    Ok(())
}
