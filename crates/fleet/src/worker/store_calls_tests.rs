//! What the worker's idle check and the `tether_runs` gauge ask of the store: one bounded
//! query each, never every run (`list_runs`), which cost O(all runs) per tick or per scrape.
use std::sync::Arc;

use tether_core::{
    ids::RunKey,
    store::{ClaimFilter, NewRun},
    Store,
};
use tether_testkit::{MemoryStore, Op};

async fn queued(store: &MemoryStore, key: &str, kind: &str) {
    store
        .create_run(&NewRun {
            key: RunKey::new(key).unwrap(),
            kind: kind.into(),
            spec: "[job]".into(),
            spec_name: "s.toml".into(),
            spec_hash: "h".into(),
            queued: true,
            base_dir: None,
        })
        .await
        .unwrap();
}

fn filter(kinds: &[&str]) -> ClaimFilter {
    ClaimFilter {
        host: Some("here".into()),
        kinds: Some(kinds.iter().map(|k| k.to_string()).collect()),
    }
}

#[tokio::test]
async fn the_idle_check_asks_one_bounded_question_not_for_every_run() {
    let store = MemoryStore::new();
    queued(&store, "a", "local").await;
    assert!(!super::nothing_left(&store, &filter(&["local"])).await);
    assert!(
        super::nothing_left(&store, &filter(&["yarn"])).await,
        "no run of a kind this worker builds"
    );
    assert_eq!(store.calls(Op::AnyUnfinished), 2);
    assert_eq!(
        store.calls(Op::ListRuns),
        0,
        "the idle check read every run"
    );
}

#[tokio::test]
async fn the_run_gauge_is_one_grouped_count_not_every_run() {
    let store = Arc::new(MemoryStore::new());
    queued(&store, "a", "local").await;
    queued(&store, "b", "local").await;
    queued(&store, "c", "yarn").await;
    let metrics = crate::metrics::Metrics::new();
    metrics.attach_store(store.clone());
    metrics.refresh().await;
    let text = metrics.encode();
    assert!(
        text.contains(r#"tether_runs{state="queued",kind="local"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"tether_runs{state="queued",kind="yarn"} 1"#),
        "{text}"
    );
    assert_eq!(store.calls(Op::CountRuns), 1);
    assert_eq!(store.calls(Op::ListRuns), 0, "a scrape read every run");
}
