//! The worker registry (see [`tether_core::store::WorkerBeat`]): upserted beats, removal on a
//! clean stop, pruning of the silent ones, ages by the store's clock.
use std::time::Duration;

use anyhow::ensure;
use tether_core::store::WorkerBeat;

use super::{helpers::*, StoreHarness, R};

fn beat(o: &str, pid: u32, concurrency: u32) -> WorkerBeat {
    WorkerBeat::new(owner(o), "host-a", pid, concurrency, "1.2.3")
}

/// Property: a beat registers a worker or refreshes it (first beat kept, last one moved, fields
/// replaced), every instance on the database sees it, a removal drops it, and a prune takes
/// only the workers silent for longer than asked (a dry run takes none).
pub async fn worker_registry_upserts_lists_removes_and_prunes<H: StoreHarness>(h: H) -> R {
    let a = h.store().await?;
    let b = h.store().await?;
    ensure!(
        b.list_workers().await?.is_empty(),
        "a fresh store has no workers"
    );
    a.worker_beat(&beat("w-1", 10, 4)).await?;
    a.worker_beat(&beat("w-2", 20, 8)).await?;
    let first = b.list_workers().await?;
    let owners: Vec<&str> = first.iter().map(|w| w.beat.owner.0.as_str()).collect();
    ensure!(owners == ["w-1", "w-2"], "by owner id: {owners:?}");
    let w1 = &first[0];
    ensure!(w1.beat == beat("w-1", 10, 4), "{w1:?}");
    ensure!(w1.started_at_ms == w1.heartbeat_at_ms, "first beat: {w1:?}");
    ensure!(
        (0..5_000).contains(&w1.heartbeat_age_ms),
        "age by the store's clock: {w1:?}"
    );

    tokio::time::sleep(Duration::from_millis(30)).await;
    a.worker_beat(&beat("w-1", 11, 2)).await?;
    let again = b.list_workers().await?;
    ensure!(again.len() == 2, "an upsert, not a second row: {again:?}");
    let w1b = &again[0];
    ensure!(w1b.beat == beat("w-1", 11, 2), "fields replaced: {w1b:?}");
    ensure!(
        w1b.started_at_ms == w1.started_at_ms,
        "first beat kept: {w1b:?}"
    );
    ensure!(
        w1b.heartbeat_at_ms > w1.heartbeat_at_ms,
        "last beat moved: {w1b:?}"
    );

    // w-2 has been silent for 600 ms or more, w-1 just beat (a busy machine's statements
    // take tens of ms: the margin is wide on both sides).
    tokio::time::sleep(Duration::from_millis(600)).await;
    a.worker_beat(&beat("w-1", 11, 2)).await?;
    let silent = Duration::from_millis(300);
    let dry = b.prune_workers(silent, true).await?;
    let dry: Vec<&str> = dry.iter().map(|w| w.beat.owner.0.as_str()).collect();
    ensure!(dry == ["w-2"], "a dry run names the silent one: {dry:?}");
    ensure!(
        b.list_workers().await?.len() == 2,
        "a dry run removes nothing"
    );
    let pruned = b.prune_workers(silent, false).await?;
    ensure!(
        pruned.len() == 1 && pruned[0].beat.owner == owner("w-2"),
        "{pruned:?}"
    );
    ensure!(pruned[0].heartbeat_age_ms >= 300, "{pruned:?}");
    let left = a.list_workers().await?;
    ensure!(
        left.len() == 1 && left[0].beat.owner == owner("w-1"),
        "{left:?}"
    );

    a.remove_worker(&owner("w-1")).await?;
    a.remove_worker(&owner("never-registered")).await?;
    ensure!(
        b.list_workers().await?.is_empty(),
        "a clean stop removes the row"
    );
    h.finish().await;
    Ok(())
}
