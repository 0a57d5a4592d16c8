//! Pins the commits of a `tether run`'s store path on SQLite (issue 15, durability overhead):
//! holding the liveness signal writes nothing by itself; the owner's row commits with its
//! first lease.
use std::time::Duration;

use tether_core::{
    ids::{OwnerId, RunKey},
    store::{Acquire, NewRun, Store},
};

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
            "SELECT COUNT(*) FROM owner_liveness WHERE owner = ?1",
            [&owner.0],
            |r| r.get(0),
        )
        .expect("count")
    };
    assert_eq!(rows, 1, "the owner is registered with its lease");
    assert!(!store.unregistered(&owner), "registered once, not again");
}
