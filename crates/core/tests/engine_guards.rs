//! The engine's guards, each test aimed at one line of `engine/drive.rs` or
//! `engine/drive/submit.rs` that crash-safety rests on (issue 8: every test here fails if the
//! guard it names is removed or inverted — mutation testing found them unguarded).
//!
//! Fakes: [`tether_testkit::MemoryStore`] and [`tether_testkit::ScriptedConnector`].
mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use tether_core::{
    engine::{EngineError, Finish, RunSignals},
    journal::Outcome,
    observe::FailureClass,
    Store,
};
use tether_testkit::{Call, Fault, Op, ScriptedConnector};

fn assert_lost<T: std::fmt::Debug>(r: &Result<T, EngineError>) {
    assert!(matches!(r, Err(EngineError::LeaseLost { .. })), "{r:?}");
}

/// `check_lease`: once the lease is known lost, the driver stops before any backend call —
/// not only when a later store write bounces (a fresh run would otherwise reach `submit`).
#[tokio::test]
async fn a_lost_lease_stops_the_driver_before_any_backend_call() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let connector = Arc::new(ScriptedConnector::new(vec![succeeded()]));
    let signals = RunSignals::new();
    signals.mark_lost();
    let r = engine(&store, &connector)
        .drive(&lease, record, signals)
        .await;
    assert_lost(&r);
    assert_eq!(
        connector.calls(Call::Submit),
        0,
        "no submit after the lease was lost"
    );
    assert_eq!(store.calls(Op::RecordIntent), 0, "no intent either");

    // Same for a submitted run: not even a status call.
    let store = common::store().await;
    let (lease, _) = acquire(&store, "me").await;
    submitted(&store, &lease).await;
    let record = store.get_run(&key()).await.unwrap().unwrap();
    let signals = RunSignals::new();
    signals.mark_lost();
    let r = engine(&store, &connector)
        .drive(&lease, record, signals)
        .await;
    assert_lost(&r);
    assert_eq!(connector.calls(Call::Status), 0);
}

/// `touch`: the fenced renewal right before a cancel. History writes are down (they are
/// skipped, not fatal), so the renewal is the only write between the decision and the kill:
/// an owner whose lease was taken over must not kill the new owner's job.
#[tokio::test]
async fn a_lost_owner_does_not_cancel_the_job() {
    let store = store().await;
    let (lease, _) = acquire(&store, "me").await;
    submitted(&store, &lease).await;
    assert!(store.request_cancel(&key()).await.unwrap());
    let record = store.get_run(&key()).await.unwrap().unwrap();
    take_over(&store).await;
    store.fail(Op::AppendHistory, Fault::Unavailable, usize::MAX);
    let connector = Arc::new(ScriptedConnector::new(vec![active()]));
    let r = engine(&store, &connector)
        .drive(&lease, record, RunSignals::new())
        .await;
    assert_lost(&r);
    assert_eq!(
        connector.calls(Call::Status),
        1,
        "the cancel decision was reached"
    );
    assert_eq!(store.calls(Op::Renew), 1, "the lease was confirmed first");
    assert_eq!(
        connector.calls(Call::Cancel),
        0,
        "a lost owner kills nothing"
    );
}

/// `write()` retries a down store with a doubling wait (0.2 s, 0.4 s, 0.8 s, 1.6 s): an outage
/// of 3 s costs exactly five attempts at the intent, not a busy loop, and the run then goes on.
#[tokio::test(start_paused = true)]
async fn a_store_outage_is_waited_out_with_a_growing_wait() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let connector = Arc::new(ScriptedConnector::new(vec![succeeded()]));
    store.outage(Duration::from_secs(3));
    let r = engine(&store, &connector)
        .drive(&lease, record, RunSignals::new())
        .await;
    assert!(
        matches!(r, Ok(Finish::Outcome(Outcome::Succeeded { .. }))),
        "{r:?}"
    );
    assert_eq!(
        store.calls(Op::RecordIntent),
        5,
        "attempts at 0, 0.2, 0.6, 1.4 and 3.0 s"
    );
    assert_eq!(connector.calls(Call::Created), 1);
}

/// `write()` gives up at once on a failure that retrying cannot fix, naming the record.
#[tokio::test]
async fn a_non_transient_store_failure_stops_the_run_with_what_failed() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let connector = Arc::new(ScriptedConnector::new(vec![succeeded()]));
    store.fail(Op::RecordIntent, Fault::Query, 1);
    let r = engine(&store, &connector)
        .drive(&lease, record, RunSignals::new())
        .await;
    match r {
        Err(EngineError::Record { what, .. }) => assert_eq!(what, "the intent"),
        other => panic!("expected a Record error, got {other:?}"),
    }
    assert_eq!(store.calls(Op::RecordIntent), 1, "not retried");
    assert_eq!(connector.calls(Call::Submit), 0);
}

/// `write()` turns a fenced write that bounced into `LeaseLost` (and raises the signal), not
/// into a store failure.
#[tokio::test]
async fn a_write_fenced_out_is_a_lost_lease() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    take_over(&store).await;
    let connector = Arc::new(ScriptedConnector::new(vec![succeeded()]));
    let signals = RunSignals::new();
    let r = engine(&store, &connector)
        .drive(&lease, record, signals.clone())
        .await;
    assert_lost(&r);
    assert!(signals.is_lost());
    assert_eq!(store.calls(Op::RecordIntent), 1, "not retried");
    assert_eq!(connector.calls(Call::Submit), 0);
}

/// `finish()`: the outcome write committed but its answer was lost; the retry is fenced out
/// (the run is finished, the lease cleared). The outcome recorded under our epoch is ours:
/// success, not a lost lease.
#[tokio::test]
async fn an_ambiguous_outcome_commit_under_our_epoch_is_success() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let connector = Arc::new(ScriptedConnector::new(vec![succeeded()]));
    store.fail(Op::RecordFinished, Fault::CommitThenUnavailable, 1);
    let r = engine(&store, &connector)
        .drive(&lease, record, RunSignals::new())
        .await;
    assert!(
        matches!(r, Ok(Finish::Outcome(Outcome::Succeeded { .. }))),
        "{r:?}"
    );
    assert_eq!(store.calls(Op::RecordFinished), 2);
}

/// `finish()`: while our outcome write waited out an outage, another owner took over and
/// recorded its own outcome under its epoch. That outcome is not ours to report.
#[tokio::test]
async fn an_outcome_recorded_under_another_epoch_is_a_lost_lease() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let connector = Arc::new(ScriptedConnector::new(vec![succeeded()]));
    store.fail(Op::RecordFinished, Fault::Unavailable, 1);
    let driving = {
        let (store, connector) = (store.clone(), connector.clone());
        tokio::spawn(async move {
            engine(&store, &connector)
                .drive(&lease, record, RunSignals::new())
                .await
        })
    };
    // The first outcome write failed; the engine waits 0.2 s before retrying it.
    while store.calls(Op::RecordFinished) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let theirs = take_over(&store).await;
    let failed = Outcome::Failed {
        class: FailureClass::Other,
        message: "the other owner's verdict".into(),
    };
    store
        .record_finished(&theirs, &failed, &entry(&theirs, "finish"))
        .await
        .unwrap();
    let r = driving.await.unwrap();
    assert_lost(&r);
    assert_eq!(
        store.calls(Op::RecordFinished),
        3,
        "ours, theirs, our retry"
    );
}
