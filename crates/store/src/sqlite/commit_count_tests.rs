//! Pins the commits of a `tether run`'s store path on SQLite (issue 15, durability overhead):
//! holding the liveness signal writes nothing by itself; the owner's row commits with its
//! first lease; only the writes before an effect outside the store are fsynced.
use std::time::Duration;

use tether_core::{
    history::HistoryKind,
    ids::{ExternalId, Generation, OwnerId, RunKey, StoreId, Tag},
    journal::{Outcome, Shape, Submission},
    store::{Acquire, HistoryEntry, NewRun, Store},
};

const TTL: Duration = Duration::from_secs(60);

use super::SqliteStore;

#[tokio::test]
async fn liveness_registers_with_the_first_lease_in_one_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("c.db"))
        .await
        .expect("open");
    let key = RunKey::new("counted").expect("key");
    let owner = OwnerId("run@here:1:counted".into());
    let before = store.inner.queue.commits();
    let _alive = store
        .hold_liveness(&owner)
        .await
        .expect("hold")
        .expect("held");
    store
        .create_run(&NewRun {
            key: key.clone(),
            kind: "local".into(),
            spec: String::new(),
            spec_name: "c.toml".into(),
            spec_hash: "h".into(),
            queued: false,
            base_dir: None,
        })
        .await
        .expect("create");
    let acquired = store
        .acquire(&key, &owner, Duration::from_secs(60))
        .await
        .expect("acquire");
    assert!(matches!(acquired, Acquire::Acquired(..)), "{acquired:?}");
    assert_eq!(
        store.inner.queue.commits() - before,
        2,
        "hold_liveness + create_run + acquire commit twice (the row rides with the lease)"
    );
    let rows: i64 = {
        let conn = store.inner.conn.lock().expect("conn");
        conn.query_row(
            "SELECT COUNT(*) FROM owner_locks WHERE owner = ?1",
            [&owner.0],
            |r| r.get(0),
        )
        .expect("count")
    };
    assert_eq!(rows, 1, "the owner is registered with its lease");
    assert!(!store.unregistered(&owner), "registered once, not again");
}

fn entry(epoch: tether_core::ids::Epoch, reason: &str) -> HistoryEntry {
    HistoryEntry {
        at_ms: 0,
        epoch,
        generation: Some(Generation(1)),
        decision: HistoryKind::Other("count-test".into()),
        reason: reason.into(),
    }
}

fn synchronous(store: &SqliteStore) -> i64 {
    let conn = store.inner.conn.lock().expect("conn");
    conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
        .expect("pragma")
}

/// A `tether run`'s path fsyncs only before effects outside the store: the intent (before the
/// submit), the id (before the first poll), the outcome (before the answer). Its create, lease,
/// renewal and poll history commit without one; a queued submission is durable.
#[tokio::test]
async fn only_writes_before_an_effect_are_fsynced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("s.db"))
        .await
        .expect("open");
    let key = RunKey::new("synced").expect("key");
    let owner = OwnerId("run@here:2:synced".into());
    let new = |key: &RunKey, queued| NewRun {
        key: key.clone(),
        kind: "local".into(),
        spec: String::new(),
        spec_name: "s.toml".into(),
        spec_hash: "h".into(),
        queued,
        base_dir: None,
    };
    let synced = |store: &SqliteStore| store.inner.queue.synced();
    let start = synced(&store);
    store.create_run(&new(&key, false)).await.expect("create");
    let lease = match store.acquire(&key, &owner, TTL).await.expect("acquire") {
        Acquire::Acquired(lease, _) => lease,
        other => panic!("not acquired: {other:?}"),
    };
    assert_eq!(
        synced(&store) - start,
        0,
        "create + acquire are bookkeeping"
    );
    assert_eq!(
        synchronous(&store),
        1,
        "NORMAL while only bookkeeping commits"
    );
    let sub = Submission {
        generation: Generation(1),
        tag: Tag::derive(&StoreId::new("synced00").unwrap(), &key, Generation(1)),
        shape: Shape::Normal,
    };
    let e = |r| entry(lease.epoch, r);
    store
        .record_intent(&lease, &sub, None, None, &e("submit"))
        .await
        .expect("intent");
    assert_eq!(
        synced(&store) - start,
        1,
        "the intent is on disk before the submit"
    );
    assert_eq!(synchronous(&store), 2, "FULL for the intent's batch");
    store.renew(&lease, TTL).await.expect("renew");
    store
        .record_submitted(&lease, Generation(1), &ExternalId("j".into()), &e("id"))
        .await
        .expect("id");
    store
        .append_history(&lease, &e("poll"))
        .await
        .expect("poll");
    let outcome = Outcome::Succeeded {
        result: serde_json::json!({"exit_code": 0}),
    };
    store
        .record_finished(&lease, &outcome, &e("done"))
        .await
        .expect("finish");
    assert_eq!(
        synced(&store) - start,
        3,
        "intent, id and outcome fsynced; renewal and poll history not"
    );
    let queued = RunKey::new("queued").expect("key");
    store.create_run(&new(&queued, true)).await.expect("submit");
    assert_eq!(
        synced(&store) - start,
        4,
        "an acknowledged submission is durable"
    );
}
