//! The lease keeper and the run signals (`engine/lease.rs`), in paused time: each test fails
//! if the line it names is mutated (issue 8).
mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use tether_core::{
    engine::{LeaseKeeper, RunSignals},
    Store,
};
use tether_testkit::Op;
use tokio::time::{sleep, timeout, Instant};

/// Renewals every TTL/3 (3 s of a 9 s TTL): three by 10 s, each followed by a read of the
/// cancel flag; none after `stop`.
#[tokio::test(start_paused = true)]
async fn the_keeper_renews_every_third_of_the_ttl_until_stopped() {
    let store = store().await;
    let (lease, _) = acquire(&store, "me").await;
    let keeper = LeaseKeeper::start(store.clone(), lease, TTL);
    sleep(Duration::from_millis(2_900)).await;
    assert_eq!(store.calls(Op::Renew), 0);
    sleep(Duration::from_millis(7_100)).await;
    assert_eq!(store.calls(Op::Renew), 3, "at 3, 6 and 9 s");
    assert_eq!(store.calls(Op::GetRun), 3);
    assert!(store.get_run(&key()).await.unwrap().unwrap().lease_alive);
    keeper.stop().await;
    sleep(Duration::from_secs(30)).await;
    assert_eq!(store.calls(Op::Renew), 3, "stopped");
}

/// A down store is retried at the next beat (not a lost lease); a fenced-out renewal is.
#[tokio::test(start_paused = true)]
async fn the_keeper_tells_an_outage_from_a_lost_lease() {
    let store = store().await;
    let (lease, _) = acquire(&store, "me").await;
    let keeper = LeaseKeeper::start(store.clone(), lease, TTL);
    let signals = keeper.signals();
    store.outage(Duration::from_secs(4));
    sleep(Duration::from_secs(7)).await;
    assert_eq!(
        store.calls(Op::Renew),
        2,
        "the 3 s beat failed, the 6 s one went through"
    );
    assert!(!signals.is_lost(), "an outage is not a lost lease");
    take_over(&store).await;
    sleep(Duration::from_secs(3)).await;
    assert!(signals.is_lost(), "the 9 s renewal was fenced out");
    assert!(Arc::ptr_eq(&signals, &keeper.signals()));
    keeper.stop().await;
}

/// The keeper raises `tether cancel` from the store's flag, read after each renewal.
#[tokio::test(start_paused = true)]
async fn the_keeper_raises_a_cancel_requested_in_the_store() {
    let store = store().await;
    let (lease, _) = acquire(&store, "me").await;
    let keeper = LeaseKeeper::start(store.clone(), lease, TTL);
    let signals = keeper.signals();
    sleep(Duration::from_secs(4)).await;
    assert!(!signals.cancel_requested());
    store.request_cancel(&key()).await.unwrap();
    sleep(Duration::from_secs(3)).await;
    assert!(signals.cancel_requested());
    assert!(!signals.is_lost());
    keeper.stop().await;
}

#[tokio::test(start_paused = true)]
async fn signals_wake_waiters_and_sleepers() {
    // Nothing raised: a waiter waits.
    let s = RunSignals::new();
    assert!(timeout(Duration::from_secs(60), s.interrupted())
        .await
        .is_err());
    // A waiter wakes on the first cancel request.
    let waiter = tokio::spawn({
        let s = s.clone();
        async move { s.interrupted().await }
    });
    sleep(Duration::from_millis(10)).await;
    s.request_cancel();
    timeout(Duration::from_secs(1), waiter)
        .await
        .expect("a cancel wakes the waiter")
        .unwrap();
    // Already cancelled: returns at once.
    timeout(Duration::from_secs(1), s.interrupted())
        .await
        .expect("an earlier cancel counts");

    // A sleep lasts its time unless the lease is lost meanwhile; lost, it does not sleep.
    let s = RunSignals::new();
    let t = Instant::now();
    s.sleep(Duration::from_secs(5)).await;
    assert_eq!(t.elapsed(), Duration::from_secs(5));
    let sleeper = tokio::spawn({
        let s = s.clone();
        async move {
            let t = Instant::now();
            s.sleep(Duration::from_secs(60)).await;
            t.elapsed()
        }
    });
    sleep(Duration::from_secs(1)).await;
    s.mark_lost();
    assert!(sleeper.await.unwrap() < Duration::from_secs(2));
    let t = Instant::now();
    s.sleep(Duration::from_secs(60)).await;
    assert_eq!(t.elapsed(), Duration::ZERO);
    timeout(Duration::from_secs(1), s.interrupted())
        .await
        .expect("a lost lease interrupts");
}
