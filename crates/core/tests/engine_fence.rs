//! The fence's confirmation right after a fresh intent (issue 15, durability overhead): it
//! costs no store write when the intent, a fenced write, just found the lease ours and the
//! lease was extended recently; otherwise it is the fenced renewal it always was.
mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use tether_core::{engine::Finish, ids::OwnerId, journal::Outcome};
use tether_testkit::{Call, Op, ScriptedConnector};

/// Pins the store writes of one `tether run` (acquire, intent, id, outcome): the confirmation
/// right after the intent is not a renewal. Fails if a write per submission grows back.
#[tokio::test]
async fn a_fresh_intent_is_confirmed_without_a_store_write() {
    let store = store().await;
    let connector = Arc::new(ScriptedConnector::new(vec![succeeded()]));
    let r = engine(&store, &connector)
        .run(&key(), &OwnerId("me".into()))
        .await;
    assert!(
        matches!(r, Ok(Finish::Outcome(Outcome::Succeeded { .. }))),
        "{r:?}"
    );
    assert_eq!(connector.calls(Call::Created), 1);
    for (op, n) in [
        (Op::Acquire, 1),
        (Op::Renew, 0),
        (Op::RecordIntent, 1),
        (Op::RecordSubmitted, 1),
        (Op::RecordFinished, 1),
    ] {
        assert_eq!(store.calls(op), n, "{op:?} calls of one durable run");
    }
}

/// A submit that waits (a look-up, a slot) past the intent's freshness confirms with the store,
/// as before: a takeover meanwhile would stop it.
#[tokio::test]
async fn a_submit_slower_than_the_intent_freshness_renews() {
    let store = store().await;
    let connector = Arc::new(ScriptedConnector::new(vec![succeeded()]));
    connector.hold(Call::Submit);
    let driving = {
        let (store, connector) = (store.clone(), connector.clone());
        tokio::spawn(async move {
            engine(&store, &connector)
                .run(&key(), &OwnerId("me".into()))
                .await
        })
    };
    while connector.calls(Call::Submit) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    connector.release(Call::Submit);
    let r = driving.await.unwrap();
    assert!(
        matches!(r, Ok(Finish::Outcome(Outcome::Succeeded { .. }))),
        "{r:?}"
    );
    assert_eq!(
        store.calls(Op::Renew),
        1,
        "the confirmation renewed the lease"
    );
}

/// `drive` alone (a worker's claimed run) knows nothing of when its lease was extended: its
/// confirmation always asks the store.
#[tokio::test]
async fn a_drive_without_a_known_extension_renews() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let connector = Arc::new(ScriptedConnector::new(vec![succeeded()]));
    let r = engine(&store, &connector)
        .drive(&lease, record, tether_core::engine::RunSignals::new())
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(store.calls(Op::Renew), 1);
}
