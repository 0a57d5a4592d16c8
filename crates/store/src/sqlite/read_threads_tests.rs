//! Reads queued behind the one connection wait as tasks, not on threads of their own (issue 15:
//! a worker starting thousands of runs had up to 512 blocking threads parked on the mutex).
use std::time::Duration;

use tether_core::{ids::RunKey, store::Store};

use super::{SqliteStore, READERS};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_waiting_for_the_connection_hold_few_threads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(
        SqliteStore::open(dir.path().join("r.db"))
            .await
            .expect("open"),
    );
    let key = RunKey::new("absent").expect("key");
    // Warm the blocking pool's first thread, then hold the connection as a long read would.
    store.get_run(&key).await.expect("read");
    let before = threads();
    let (locked, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let holder = {
        let store = store.clone();
        let (locked, release) = (locked.0, release.1);
        std::thread::spawn(move || {
            let _held = store.inner.conn.lock().expect("conn");
            locked.send(()).expect("send");
            let _ = release.recv();
        })
    };
    locked.1.recv().expect("held");
    let reads: Vec<_> = (0..200)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move { store.get_run(&key).await.map(|r| r.is_none()) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = threads().saturating_sub(before);
    release.0.send(()).expect("release");
    holder.join().expect("holder");
    for r in reads {
        assert!(r.await.expect("task").expect("read"), "the run is absent");
    }
    // Other tests of this binary start threads too: the margin is wide, the failure was +200.
    assert!(
        during < READERS + 60,
        "{during} more threads while 200 reads waited for the connection"
    );
}
