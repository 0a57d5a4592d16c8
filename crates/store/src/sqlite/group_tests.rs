//! Group commit ([`super::group`]): writes waiting together share one transaction, and each
//! stands or falls on its own inside it.
use std::time::Duration;

use rusqlite::params;
use tether_core::{
    history::HistoryKind,
    ids::{Epoch, OwnerId, RunKey},
    store::{Acquire, HistoryEntry, Lease, NewRun, Store, StoreError},
};

use super::SqliteStore;

const TTL: Duration = Duration::from_secs(60);

async fn store_with_leases(dir: &tempfile::TempDir, n: usize) -> (SqliteStore, Vec<Lease>) {
    let store = SqliteStore::open(dir.path().join("group.db"))
        .await
        .expect("open");
    let mut leases = Vec::new();
    for i in 0..n {
        let key = RunKey::new(format!("g{i:03}")).expect("key");
        store
            .create_run(&NewRun {
                key: key.clone(),
                kind: "local".into(),
                spec: String::new(),
                spec_name: "g.toml".into(),
                spec_hash: "h".into(),
                queued: false,
                base_dir: None,
            })
            .await
            .expect("create");
        match store
            .acquire(&key, &OwnerId("w".into()), TTL)
            .await
            .expect("acquire")
        {
            Acquire::Acquired(lease, _) => leases.push(lease),
            other => panic!("not acquired: {other:?}"),
        }
    }
    (store, leases)
}

fn entry(epoch: Epoch, reason: &str) -> HistoryEntry {
    HistoryEntry {
        at_ms: 0,
        epoch,
        generation: None,
        decision: HistoryKind::Other("group-test".into()),
        reason: reason.into(),
    }
}

/// Holds the connection (as a long write would) until `n` writes wait, then lets them go.
// Holding the connection's lock while the writes queue up is the point: they must all wait.
#[allow(clippy::await_holding_lock)]
async fn release_when_waiting(
    store: &SqliteStore,
    n: usize,
    held: std::sync::MutexGuard<'_, rusqlite::Connection>,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while store.inner.queue.waiting() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {n} writes queued",
            store.inner.queue.waiting()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_waiting_together_commit_once_and_a_lost_lease_fails_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, leases) = store_with_leases(&dir, 40).await;
    // The last run was taken over: its old lease must fail, the others must not notice.
    let stale = Lease {
        epoch: Epoch(leases[39].epoch.0 + 1),
        ..leases[39].clone()
    };
    let before = store.inner.queue.commits();
    let held = store.inner.conn.lock().expect("conn");
    let mut tasks = tokio::task::JoinSet::new();
    for (i, lease) in leases[..39].iter().cloned().chain([stale]).enumerate() {
        let store = store.clone();
        tasks.spawn(async move {
            (
                i,
                store
                    .append_history(&lease, &entry(lease.epoch, &format!("w{i}")))
                    .await,
            )
        });
    }
    release_when_waiting(&store, 40, held).await;
    while let Some(done) = tasks.join_next().await {
        let (i, result) = done.expect("task");
        if i == 39 {
            assert!(
                matches!(result, Err(StoreError::LeaseLost { .. })),
                "stale write: {result:?}"
            );
        } else {
            result.unwrap_or_else(|e| panic!("write {i}: {e}"));
        }
    }
    // One transaction (one fsync) for 40 writes; one per write before group commit.
    assert_eq!(store.inner.queue.commits() - before, 1);
    for (i, lease) in leases.iter().enumerate() {
        let history = store.history(&lease.key).await.expect("history");
        let ours = history
            .iter()
            .filter(|e| e.reason == format!("w{i}"))
            .count();
        assert_eq!(ours, usize::from(i != 39), "run {i}: {history:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_rolls_back_its_own_changes_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, leases) = store_with_leases(&dir, 1).await;
    let key = leases[0].key.as_str().to_string();
    let insert = "INSERT INTO history (key, at_ms, epoch, generation, decision, reason) \
                  VALUES (?1, 1, 1, NULL, 'group-test', ?2)";
    let held = store.inner.conn.lock().expect("conn");
    let (k1, k2) = (key.clone(), key.clone());
    let failing = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write("test-failing", move |tx, _| {
                    tx.execute(insert, params![k1, "half-done"])
                        .expect("insert");
                    Err::<(), _>(StoreError::NotFound {
                        key: RunKey::new("gone").expect("key"),
                    })
                })
                .await
        })
    };
    let fine = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write("test-fine", move |tx, _| {
                    tx.execute(insert, params![k2, "done"]).expect("insert");
                    Ok(())
                })
                .await
        })
    };
    release_when_waiting(&store, 2, held).await;
    assert!(matches!(
        failing.await.expect("task"),
        Err(StoreError::NotFound { .. })
    ));
    fine.await.expect("task").expect("the other write commits");
    let reasons: Vec<String> = store
        .history(&leases[0].key)
        .await
        .expect("history")
        .into_iter()
        .map(|e| e.reason)
        .collect();
    assert!(reasons.contains(&"done".to_string()), "{reasons:?}");
    assert!(!reasons.contains(&"half-done".to_string()), "{reasons:?}");
}
