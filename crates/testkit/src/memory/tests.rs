//! The fake's own promises: the ones `tether_core::store` asks of every store.
use std::time::Duration;

use tether_core::{
    ids::{Epoch, ExternalId, Generation, OwnerId, RunKey, Tag},
    journal::{Outcome, Phase, Shape, Submission},
    placement::Placement,
    store::{Acquire, ClaimFilter, Created, HistoryEntry, Lease, NewRun, Rerun, StoreError},
    Store,
};

use super::{Fault, MemoryStore, Op};

const TTL: Duration = Duration::from_secs(9);

fn key(k: &str) -> RunKey {
    RunKey::new(k).unwrap()
}

fn owner(o: &str) -> OwnerId {
    OwnerId(o.into())
}

async fn create(s: &MemoryStore, k: &str, kind: &str, queued: bool) {
    let new = NewRun {
        key: key(k),
        kind: kind.into(),
        spec: "spec".into(),
        spec_name: "a.toml".into(),
        spec_hash: "h".into(),
        queued,
        base_dir: None,
    };
    assert!(matches!(s.create_run(&new).await.unwrap(), Created::New(_)));
    assert!(matches!(
        s.create_run(&new).await.unwrap(),
        Created::Existing(_)
    ));
}

async fn acquire(s: &MemoryStore, k: &str, o: &str) -> Lease {
    match s.acquire(&key(k), &owner(o), TTL).await.unwrap() {
        Acquire::Acquired(l, _) => l,
        Acquire::Held(r) => panic!("held: {r:?}"),
    }
}

fn sub(k: &str, g: u32) -> Submission {
    Submission {
        generation: Generation(g),
        tag: Tag::derive(
            &tether_core::ids::StoreId::new("memstore").unwrap(),
            &key(k),
            Generation(g),
        ),
        shape: Shape::Normal,
    }
}

fn e(epoch: Epoch, what: &str) -> HistoryEntry {
    HistoryEntry {
        at_ms: 0,
        epoch,
        generation: None,
        decision: what.into(),
        reason: what.into(),
    }
}

fn lost<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(matches!(r, Err(StoreError::LeaseLost { .. })), "{r:?}");
}

#[tokio::test]
async fn leases_expire_by_the_store_clock_and_stale_epochs_are_fenced() {
    let s = MemoryStore::new();
    create(&s, "r", "k", false).await;
    let a = acquire(&s, "r", "a").await;
    assert_eq!(a.epoch, Epoch(1));
    assert!(matches!(
        s.acquire(&key("r"), &owner("b"), TTL).await.unwrap(),
        Acquire::Held(_)
    ));
    s.advance(TTL);
    assert!(!s.get_run(&key("r")).await.unwrap().unwrap().lease_alive);
    let b = acquire(&s, "r", "b").await;
    assert_eq!(b.epoch, Epoch(2));
    lost(s.renew(&a, TTL).await);
    lost(
        s.record_intent(&a, &sub("r", 1), None, None, &e(a.epoch, "x"))
            .await,
    );
    lost(s.append_history(&a, &e(a.epoch, "x")).await);
    lost(s.release(&a).await);
    s.record_intent(&b, &sub("r", 1), None, None, &e(b.epoch, "submit"))
        .await
        .unwrap();
    s.record_submitted(
        &b,
        Generation(1),
        &ExternalId("0".into()),
        &e(b.epoch, "submitted"),
    )
    .await
    .unwrap();
    let done = Outcome::Cancelled {
        message: "m".into(),
    };
    s.record_finished(&b, &done, &e(b.epoch, "finish"))
        .await
        .unwrap();
    let r = s.get_run(&key("r")).await.unwrap().unwrap();
    assert_eq!(
        r.journal.phase,
        Phase::Finished {
            outcome: done.clone()
        }
    );
    assert_eq!((r.owner, r.epoch), (None, Epoch(2)));
    assert_eq!(
        s.submissions(&key("r")).await.unwrap()[0].outcome,
        Some(done)
    );
    // A finished run is never leased again, and its finisher cannot write as owner.
    assert!(matches!(
        s.acquire(&key("r"), &owner("c"), TTL).await.unwrap(),
        Acquire::Held(_)
    ));
    lost(s.renew(&b, TTL).await);
    let names: Vec<String> = s
        .history(&key("r"))
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.decision.into())
        .collect();
    assert_eq!(
        names,
        [
            "lease-acquired",
            "lease-acquired",
            "submit",
            "submitted",
            "finish"
        ]
    );
}

#[tokio::test]
async fn claims_follow_the_filter_and_queued_runs_come_first() {
    let s = MemoryStore::new();
    create(&s, "old", "spark", false).await;
    create(&s, "placed", "local", false).await;
    create(&s, "queued", "spark", true).await;
    let l = acquire(&s, "placed", "x").await;
    let here = Placement {
        host: "h1".into(),
        boot_id: "b".into(),
        location: "/j".into(),
    };
    s.record_intent(
        &l,
        &sub("placed", 1),
        None,
        Some(&here),
        &e(l.epoch, "submit"),
    )
    .await
    .unwrap();
    s.release(&l).await.unwrap();
    let w = owner("w");
    let all = ClaimFilter::default();
    let got = s.claim(&w, TTL, 10, &all).await.unwrap();
    let keys: Vec<&str> = got.iter().map(|(l, _)| l.key.as_str()).collect();
    assert_eq!(keys, ["queued", "old"], "placed runs only go to their host");
    s.advance(TTL);
    let spark_only = ClaimFilter {
        host: Some("h1".into()),
        kinds: Some(vec!["local".into()]),
    };
    let got = s.claim(&w, TTL, 10, &spark_only).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].0.key.as_str(), got[0].0.epoch),
        ("placed", Epoch(2))
    );
    let renewed = s.renew_all(&w, TTL).await.unwrap();
    assert_eq!(
        renewed.len(),
        3,
        "expired leases of the same owner are renewed too"
    );
    assert_eq!(
        s.forget_host("h1", "gone").await.unwrap(),
        vec![key("placed")]
    );
    assert!(s
        .get_run(&key("placed"))
        .await
        .unwrap()
        .unwrap()
        .placement
        .is_none());
}

#[tokio::test]
async fn rerun_makes_a_finished_run_fresh_and_keeps_the_generation() {
    let s = MemoryStore::new();
    create(&s, "r", "k", false).await;
    assert!(matches!(
        s.rerun(&key("r"), None).await.unwrap(),
        Rerun::NotFinished(_)
    ));
    let l = acquire(&s, "r", "a").await;
    s.record_intent(&l, &sub("r", 1), None, None, &e(l.epoch, "submit"))
        .await
        .unwrap();
    s.record_finished(
        &l,
        &Outcome::Cancelled {
            message: "m".into(),
        },
        &e(l.epoch, "finish"),
    )
    .await
    .unwrap();
    assert!(s.request_cancel(&key("r")).await.is_ok_and(|asked| !asked));
    let Rerun::Fresh(r) = s.rerun(&key("r"), None).await.unwrap() else {
        panic!("finished run must rerun");
    };
    assert_eq!(r.journal.phase, Phase::Empty);
    assert_eq!(r.journal.after_generation, Some(Generation(1)));
    assert!(matches!(
        s.rerun(&key("nope"), None).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn faults_fail_before_or_after_the_change_and_calls_are_counted() {
    let s = MemoryStore::new();
    create(&s, "r", "k", false).await;
    let l = acquire(&s, "r", "a").await;
    s.fail(Op::AppendHistory, Fault::Unavailable, 1);
    assert!(s
        .append_history(&l, &e(l.epoch, "one"))
        .await
        .is_err_and(|e| e.is_transient()));
    s.fail(Op::AppendHistory, Fault::CommitThenUnavailable, 1);
    assert!(s
        .append_history(&l, &e(l.epoch, "two"))
        .await
        .is_err_and(|e| e.is_transient()));
    s.fail(Op::AppendHistory, Fault::Query, 1);
    assert!(s
        .append_history(&l, &e(l.epoch, "three"))
        .await
        .is_err_and(|e| !e.is_transient()));
    s.append_history(&l, &e(l.epoch, "four")).await.unwrap();
    let h: Vec<String> = s
        .history(&key("r"))
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.decision.into())
        .collect();
    assert_eq!(h, ["lease-acquired", "two", "four"]);
    assert_eq!(s.calls(Op::AppendHistory), 4);
}

#[tokio::test(start_paused = true)]
async fn an_outage_lasts_its_time() {
    let s = MemoryStore::new();
    s.outage(Duration::from_secs(2));
    assert!(s.get_run(&key("r")).await.is_err_and(|e| e.is_transient()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(s.get_run(&key("r")).await.unwrap().is_none());
    assert_eq!(s.total_calls(), 2);
}
