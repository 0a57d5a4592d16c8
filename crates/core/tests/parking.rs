//! A parking drive (`Engine::drive_parking`, the worker's): a run that only waits for its next
//! status is handed back without a task, and resumed it goes on exactly as if it had slept.
mod common;

use std::{sync::Arc, time::Instant};

use common::*;
use tether_core::{
    engine::{EngineError, Finish, Parked, RunSignals, Stepped},
    journal::Outcome,
    store::Lease,
    Store,
};
use tether_testkit::{Call, ScriptedConnector};

fn parked(step: Result<Stepped, EngineError>) -> Parked {
    match step {
        Ok(Stepped::Parked(p)) => p,
        other => panic!("expected a parked run, got {other:?}"),
    }
}

async fn poll_rows(store: &dyn Store) -> usize {
    store
        .history(&key())
        .await
        .unwrap()
        .iter()
        .filter(|h| h.decision == "poll")
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_parked_run_resumes_as_if_it_had_slept() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let connector = Arc::new(ScriptedConnector::new(vec![
        active(),
        active(),
        succeeded(),
    ]));
    let engine = engine(&store, &connector);
    let before = Instant::now();
    let p = parked(
        engine
            .drive_parking(&lease, record, RunSignals::new())
            .await,
    );
    // Submitted once, polled once, and handed back due one poll interval later.
    assert_eq!(connector.calls(Call::Created), 1);
    assert_eq!(connector.calls(Call::Status), 1);
    assert!(p.due() >= before + policy().poll_interval, "{p:?}");
    assert!(!p.interrupted());
    assert_eq!(p.generation().map(|g| g.0), Some(1));
    let p = parked(engine.resume(&lease, p).await);
    assert_eq!(connector.calls(Call::Status), 2);
    // The repeat clock went through the parking: the second poll of the same state is not
    // written again.
    assert_eq!(poll_rows(store.as_ref()).await, 1);
    match engine.resume(&lease, p).await {
        Ok(Stepped::Finished(Finish::Outcome(Outcome::Succeeded { .. }))) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(connector.calls(Call::Created), 1, "never submitted twice");
}

#[tokio::test(start_paused = true)]
async fn a_cancel_requested_while_parked_wakes_it_and_cancels_the_job() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let connector = Arc::new(ScriptedConnector::new(vec![active()]));
    let engine = engine(&store, &connector);
    let signals = RunSignals::new();
    let p = parked(engine.drive_parking(&lease, record, signals.clone()).await);
    signals.request_cancel();
    assert!(p.interrupted(), "a cancel the drive has not seen wakes it");
    match engine.resume(&lease, p).await {
        Ok(Stepped::Finished(Finish::Outcome(Outcome::Cancelled { .. }))) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(connector.calls(Call::Cancel), 1);
}

#[tokio::test(start_paused = true)]
async fn a_lease_lost_while_parked_ends_the_run_untouched() {
    let store = store().await;
    let (lease, record): (Lease, _) = acquire(&store, "me").await;
    let connector = Arc::new(ScriptedConnector::new(vec![active()]));
    let engine = engine(&store, &connector);
    let signals = RunSignals::new();
    let p = parked(engine.drive_parking(&lease, record, signals.clone()).await);
    signals.mark_lost();
    assert!(p.interrupted());
    let statuses = connector.calls(Call::Status);
    let r = engine.resume(&lease, p).await;
    assert!(matches!(r, Err(EngineError::LeaseLost { .. })), "{r:?}");
    assert_eq!(
        connector.calls(Call::Status),
        statuses,
        "no call after the loss"
    );
    assert_eq!(connector.calls(Call::Cancel), 0);
}

#[tokio::test(start_paused = true)]
async fn a_parked_run_given_its_status_decides_on_it_without_asking() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let connector = Arc::new(ScriptedConnector::new(vec![active()]));
    let engine = engine(&store, &connector);
    let mut p = parked(
        engine
            .drive_parking(&lease, record, RunSignals::new())
            .await,
    );
    let job = p.job().expect("a parked run waits for a submitted job");
    assert_eq!(
        job.external_id.0, "job-1",
        "the scripted connector's first job"
    );
    assert_eq!(job.submission.generation.0, 1);
    let statuses = connector.calls(Call::Status);
    p.set_status(succeeded());
    match engine.resume(&lease, p).await {
        Ok(Stepped::Finished(Finish::Outcome(Outcome::Succeeded { .. }))) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        connector.calls(Call::Status),
        statuses,
        "the given status was used"
    );
}

/// A backend with no definite answer (a failed bulk call answers a whole tick so): the run
/// parks for the ask-again wait as it would have slept, instead of holding a task.
#[tokio::test(start_paused = true)]
async fn a_run_asked_to_ask_again_parks_for_the_wait() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let unknown = tether_core::observe::JobStatus::Unknown {
        reason: "HTTP 503".into(),
    };
    let connector = Arc::new(ScriptedConnector::new(vec![unknown]));
    let engine = engine(&store, &connector);
    let before = Instant::now();
    let p = parked(
        engine
            .drive_parking(&lease, record, RunSignals::new())
            .await,
    );
    assert!(p.due() > before, "{p:?}");
    let names: Vec<String> = store
        .history(&key())
        .await
        .unwrap()
        .iter()
        .map(|h| h.decision.to_string())
        .collect();
    assert!(names.iter().any(|d| d == "ask-again"), "{names:?}");
    let mut p = p;
    p.set_status(succeeded());
    match engine.resume(&lease, p).await {
        Ok(Stepped::Finished(Finish::Outcome(Outcome::Succeeded { .. }))) => {}
        other => panic!("{other:?}"),
    }
}
