//! A writer leaves a short WAL behind: the next process's first connection reads every frame
//! of it before its first statement (issue 15, durability overhead).
use tether_core::{
    ids::RunKey,
    store::{NewRun, Store},
};

use super::{open::wal_path, SqliteStore, WAL_TRIM_BYTES};

async fn write_runs(store: &SqliteStore, n: usize) {
    for i in 0..n {
        store
            .create_run(&NewRun {
                key: RunKey::new(format!("wal-{i}")).expect("key"),
                kind: "local".into(),
                spec: "x".repeat(8 * 1024),
                spec_name: "w.toml".into(),
                spec_hash: format!("h{i}"),
                queued: false,
                base_dir: None,
            })
            .await
            .expect("create");
    }
}

fn wal_len(db: &std::path::Path) -> u64 {
    std::fs::metadata(wal_path(db))
        .map(|m| m.len())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_writer_truncates_a_long_wal_when_it_closes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("w.db");
    let store = SqliteStore::open(&db).await.expect("open");
    write_runs(&store, 200).await;
    let before = wal_len(&db);
    assert!(before > WAL_TRIM_BYTES, "the WAL grew to {before} bytes");
    drop(store);
    // The last handle may be a moment later in the blocking pool (the group leader's).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while wal_len(&db) > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(wal_len(&db), 0, "truncated on close (was {before} bytes)");
    // Nothing was lost: the runs are in the database.
    let store = SqliteStore::open(&db).await.expect("reopen");
    let run = store.get_run(&RunKey::new("wal-199").expect("key")).await;
    assert!(run.expect("read").is_some(), "the last run is there");
}

#[tokio::test]
async fn a_short_wal_is_left_as_it_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let store = SqliteStore::open(&db).await.expect("open");
    write_runs(&store, 2).await;
    let before = wal_len(&db);
    assert!(before > 0 && before <= WAL_TRIM_BYTES, "{before}");
    drop(store);
    assert_eq!(wal_len(&db), before, "no checkpoint for a short WAL");
}
