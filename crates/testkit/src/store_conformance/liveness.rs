//! Liveness: an owner's runs are taken over at once when its signal is gone, never while it
//! lives (see [`tether_core::store::Store::hold_liveness`]).
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use tether_core::{
    ids::Epoch,
    store::{Acquire, ClaimFilter},
};

use super::{helpers::*, lease_lost, StoreHarness, R};

/// How long a store may take to notice a released signal (PostgreSQL: the server ending the
/// closed session). Far below `LONG`, so a takeover within it cannot be lease expiry.
const NOTICE: Duration = Duration::from_secs(5);

/// Property: while an owner holds its liveness signal its runs stay its own until the lease
/// expires; once the signal is released they are acquired and claimed at once, each with a
/// new epoch, and the dead owner's writes are fenced. A live owner's runs are not touched.
pub async fn a_dead_owner_is_taken_over_at_once_a_live_one_is_not<H: StoreHarness>(h: H) -> R {
    let a_store = h.store().await?;
    let b = h.store().await?;
    let a_live = a_store
        .hold_liveness(&owner("live-a"))
        .await?
        .context("this store must hold a liveness signal")?;
    let d_live = b
        .hold_liveness(&owner("live-d"))
        .await?
        .context("liveness")?;
    let _b_live = b
        .hold_liveness(&owner("live-b"))
        .await?
        .context("liveness")?;
    create(&a_store, "live-1").await?;
    create(&a_store, "live-2").await?;
    create(&a_store, "live-3").await?;
    let l1 = acquire(&a_store, "live-1", "live-a", LONG).await?;
    let l2 = acquire(&a_store, "live-2", "live-a", LONG).await?;
    let _l3 = acquire(&b, "live-3", "live-d", LONG).await?;

    // All owners alive: nothing to take.
    match b.acquire(&key("live-1"), &owner("live-b"), LONG).await? {
        Acquire::Held(r) => ensure!(r.owner == Some(owner("live-a")) && r.epoch == Epoch(1)),
        Acquire::Acquired(..) => anyhow::bail!("took the run of a live owner"),
    }
    let got = b
        .claim(&owner("live-b"), LONG, 10, &ClaimFilter::default())
        .await?;
    ensure!(got.is_empty(), "claimed runs of live owners: {got:?}");

    // Owner A dies (its signal released); D lives on.
    drop(a_live);
    let start = Instant::now();
    let taken = loop {
        match b.acquire(&key("live-1"), &owner("live-b"), LONG).await? {
            Acquire::Acquired(lease, _) => break lease,
            Acquire::Held(_) if start.elapsed() < NOTICE => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Acquire::Held(r) => {
                anyhow::bail!("dead owner's run still held after {NOTICE:?}: {r:?}")
            }
        }
    };
    ensure!(
        taken.epoch == Epoch(2),
        "epoch bumped on takeover: {taken:?}"
    );
    let got = b
        .claim(&owner("live-b"), LONG, 10, &ClaimFilter::default())
        .await?;
    let keys: Vec<&str> = got.iter().map(|(l, _)| l.key.as_str()).collect();
    ensure!(
        keys == ["live-2"],
        "claim takes exactly the dead owner's run: {keys:?}"
    );
    ensure!(got[0].0.epoch == Epoch(2));

    // The dead owner's writes are fenced, as after any takeover.
    lease_lost(a_store.renew(&l1, LONG).await, "renew by the dead owner")?;
    lease_lost(
        a_store
            .append_history(&l2, &entry(l2.epoch, None, "poll", "late"))
            .await,
        "history by the dead owner",
    )?;
    let h1 = b.history(&key("live-1")).await?;
    let last = h1.last().context("history")?;
    ensure!(
        last.reason.contains("took over from live-a") && last.reason.contains("owner gone"),
        "takeover reason: {:?}",
        last.reason
    );
    let r3 = b.get_run(&key("live-3")).await?.context("run")?;
    ensure!(r3.owner == Some(owner("live-d")) && r3.epoch == Epoch(1));
    drop(d_live);
    h.finish().await;
    Ok(())
}

/// Property: an owner that never held a liveness signal (an older build, liveness switched
/// off) is judged by its lease alone: held until expiry, then taken as before.
pub async fn an_owner_without_liveness_is_judged_by_its_lease<H: StoreHarness>(h: H) -> R {
    let s = h.store().await?;
    let b = h.store().await?;
    let _b_live = b
        .hold_liveness(&owner("lease-b"))
        .await?
        .context("liveness")?;
    create(&s, "lease-1").await?;
    create(&s, "lease-2").await?;
    acquire(&s, "lease-1", "lease-c", LONG).await?;
    acquire(&s, "lease-2", "lease-c", SHORT).await?;
    match b.acquire(&key("lease-1"), &owner("lease-b"), LONG).await {
        Ok(Acquire::Held(r)) => ensure!(r.owner == Some(owner("lease-c"))),
        other => anyhow::bail!("expected Held, got {other:?}"),
    }
    tokio::time::sleep(SHORT * 2).await;
    let got = b
        .claim(&owner("lease-b"), LONG, 10, &ClaimFilter::default())
        .await?;
    let keys: Vec<&str> = got.iter().map(|(l, _)| l.key.as_str()).collect();
    ensure!(
        keys == ["lease-2"],
        "only the expired lease is taken: {keys:?}"
    );
    h.finish().await;
    Ok(())
}
