//! The fence's confirmation right before a connector creates a job is always a fenced renewal
//! in the store, even right after the intent: only the store can say that nobody took the run
//! over meanwhile (a PostgreSQL owner whose liveness session dropped looks dead at once). A
//! skip after a fresh intent was measured (issue 15, durability overhead) and not kept: one
//! commit saved, no measurable wall time, a wider window for a zombie create.
mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use tether_core::{engine::Finish, ids::OwnerId, journal::Outcome};
use tether_testkit::{Call, Op, ScriptedConnector};

/// Pins the store writes of one `tether run`: acquire, intent, the confirmation's renewal, id,
/// outcome. Fails if a write per submission grows back, or if the confirmation stops asking.
#[tokio::test]
async fn a_fresh_intent_is_still_confirmed_by_the_store() {
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
        (Op::Renew, 1),
        (Op::RecordIntent, 1),
        (Op::RecordSubmitted, 1),
        (Op::RecordFinished, 1),
    ] {
        assert_eq!(store.calls(op), n, "{op:?} calls of one durable run");
    }
}

/// A submit that waits (a look-up, a slot) confirms with the store once: a takeover meanwhile
/// would stop it.
#[tokio::test]
async fn a_slow_submit_confirms_with_the_store_once() {
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
