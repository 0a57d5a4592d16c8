//! The engine loop's bookkeeping, on the testkit fakes: cancels raised while driving, backoff
//! served once, why a generation ended (stored on it), history without repeats, checkpoints and
//! events, and the fence a connector confirms before creating (issue 8, mutation testing).
mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::*;
use tether_core::{
    connector::SubmitError,
    engine::{Checkpoint, Engine, EngineError, Event, Finish, LeaseSettings, Observer, RunSignals},
    ids::{ExternalId, Generation, RunKey},
    journal::Outcome,
    observe::{FailureClass, JobStatus},
    spec::Policy,
    Store,
};
use tether_testkit::{Call, Fault, MemoryStore, Op, ScriptedConnector};
use tokio::time::{timeout, Instant};

#[derive(Default)]
struct Recorder {
    points: Mutex<Vec<&'static str>>,
    decided: Mutex<Vec<(Option<Generation>, Option<ExternalId>)>>,
}

impl Observer for Recorder {
    fn event(&self, _key: &RunKey, event: &Event) {
        if let Event::Decided {
            generation,
            external_id,
            ..
        } = event
        {
            self.decided
                .lock()
                .unwrap()
                .push((*generation, external_id.clone()));
        }
    }
    fn checkpoint(&self, _key: &RunKey, point: Checkpoint) {
        self.points.lock().unwrap().push(point.name());
    }
}

fn engine_with(
    store: &Arc<MemoryStore>,
    c: &Arc<ScriptedConnector>,
    p: Policy,
    o: Arc<dyn Observer>,
) -> Engine {
    let leases = LeaseSettings {
        ttl: TTL,
        follow_interval: Duration::from_millis(10),
    };
    Engine::new(store.clone(), c.clone(), p, leases, o)
}

async fn decisions(store: &MemoryStore) -> Vec<String> {
    store
        .history(&key())
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.decision.into())
        .collect()
}

/// Checkpoints come in protocol order under their `TETHER_FAULT` names; events carry the
/// current generation and job id.
#[tokio::test]
async fn checkpoints_and_events_follow_the_protocol() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let connector = Arc::new(ScriptedConnector::new(vec![succeeded()]));
    let rec = Arc::new(Recorder::default());
    let r = engine_with(&store, &connector, policy(), rec.clone())
        .drive(&lease, record, RunSignals::new())
        .await;
    assert!(
        matches!(r, Ok(Finish::Outcome(Outcome::Succeeded { .. }))),
        "{r:?}"
    );
    assert_eq!(
        *rec.points.lock().unwrap(),
        ["after-intent", "after-submit", "after-submitted"]
    );
    let decided = rec.decided.lock().unwrap().clone();
    assert_eq!(decided.first(), Some(&(None, None)), "the first submit");
    assert_eq!(
        decided.last(),
        Some(&(Some(Generation(1)), Some(ExternalId("job-1".into())))),
        "the finish"
    );
}

/// A cancel raised on the signals while driving (by the lease keeper or a worker) reaches
/// the decision: the job is killed and the run ends cancelled.
#[tokio::test(start_paused = true)]
async fn a_cancel_raised_while_driving_cancels_the_job() {
    let store = store().await;
    let (lease, _) = acquire(&store, "me").await;
    submitted(&store, &lease).await;
    let record = store.get_run(&key()).await.unwrap().unwrap();
    let connector = Arc::new(ScriptedConnector::new(vec![active()]));
    let signals = RunSignals::new();
    signals.request_cancel();
    let engine = engine(&store, &connector);
    let drive = engine.drive(&lease, record, signals);
    let r = timeout(Duration::from_secs(600), drive)
        .await
        .expect("cancelled in time");
    assert!(
        matches!(r, Ok(Finish::Outcome(Outcome::Cancelled { .. }))),
        "{r:?}"
    );
    assert_eq!(connector.calls(Call::Cancel), 1);
}

/// After a failure the next generation waits its backoff once (one `backoff` entry, none
/// before the first submission), and the failure is stored on the generation that failed.
#[tokio::test(start_paused = true)]
async fn a_resubmission_waits_its_backoff_once_and_records_why() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let failed = JobStatus::Failed {
        class: FailureClass::Other,
        message: "exit 1".into(),
    };
    let connector = Arc::new(ScriptedConnector::new(vec![failed, succeeded()]));
    let p = Policy {
        backoff: Duration::from_secs(10),
        backoff_max: Duration::from_secs(20),
        ..policy()
    };
    let t = Instant::now();
    let r = engine_with(&store, &connector, p, Arc::new(tether_core::engine::Quiet))
        .drive(&lease, record, RunSignals::new())
        .await;
    assert!(
        matches!(r, Ok(Finish::Outcome(Outcome::Succeeded { .. }))),
        "{r:?}"
    );
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(20),
        "{waited:?}"
    );
    let names = decisions(&store).await;
    assert_eq!(
        names.iter().filter(|d| *d == "backoff").count(),
        1,
        "{names:?}"
    );
    assert_eq!(
        names[1], "submit",
        "no backoff before the first submission: {names:?}"
    );
    let subs = store.submissions(&key()).await.unwrap();
    assert_eq!(subs.len(), 2);
    assert!(
        matches!(
            &subs[0].outcome,
            Some(Outcome::Failed {
                class: FailureClass::Other,
                ..
            })
        ),
        "{subs:?}"
    );
}

/// A job the backend lost is resubmitted, and generation 1 is marked lost.
#[tokio::test(start_paused = true)]
async fn a_lost_job_is_recorded_as_lost_on_its_generation() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let gone = JobStatus::NotFound {
        detail: "no such job".into(),
    };
    let connector = Arc::new(ScriptedConnector::new(vec![gone, succeeded()]));
    let r = engine(&store, &connector)
        .drive(&lease, record, RunSignals::new())
        .await;
    assert!(
        matches!(r, Ok(Finish::Outcome(Outcome::Succeeded { .. }))),
        "{r:?}"
    );
    let subs = store.submissions(&key()).await.unwrap();
    assert!(
        matches!(
            &subs[0].outcome,
            Some(Outcome::Failed {
                class: FailureClass::Lost,
                ..
            })
        ),
        "{subs:?}"
    );
}

/// A submit that answers "the job of this tag existed and is gone" (a Databricks token whose
/// run was deleted) is a lost generation: the next one is submitted with a new tag.
#[tokio::test(start_paused = true)]
async fn a_submit_that_says_its_job_is_gone_moves_to_the_next_generation() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let connector = Arc::new(ScriptedConnector::new(vec![succeeded()]).without_lookups());
    connector.fail_submit(SubmitError::Lost {
        message: "the run of this token was deleted".into(),
    });
    let r = engine(&store, &connector)
        .drive(&lease, record, RunSignals::new())
        .await;
    assert!(
        matches!(r, Ok(Finish::Outcome(Outcome::Succeeded { .. }))),
        "{r:?}"
    );
    let subs = store.submissions(&key()).await.unwrap();
    assert_eq!(subs.len(), 2, "{subs:?}");
    assert_ne!(subs[0].submission.tag, subs[1].submission.tag);
    assert!(
        matches!(&subs[0].outcome, Some(Outcome::Failed { class: FailureClass::Lost, message })
            if message.contains("deleted")),
        "{subs:?}"
    );
    assert_eq!(connector.calls(Call::Submit), 2);
}

/// A backend flapping between running and unknown writes each kind of entry once a minute,
/// not once per answer.
#[tokio::test(start_paused = true)]
async fn a_flapping_backend_does_not_flood_the_history() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let unknown = || JobStatus::Unknown {
        reason: "HTTP 503".into(),
    };
    let connector = Arc::new(ScriptedConnector::new(vec![
        active(),
        unknown(),
        active(),
        unknown(),
        active(),
        succeeded(),
    ]));
    let r = engine(&store, &connector)
        .drive(&lease, record, RunSignals::new())
        .await;
    assert!(
        matches!(r, Ok(Finish::Outcome(Outcome::Succeeded { .. }))),
        "{r:?}"
    );
    let names = decisions(&store).await;
    assert_eq!(
        names.iter().filter(|d| *d == "poll").count(),
        1,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|d| *d == "ask-again").count(),
        1,
        "{names:?}"
    );
}

/// A job moving from queued to running gets one history entry per state, saying which.
#[tokio::test(start_paused = true)]
async fn the_history_tells_a_queued_job_from_a_running_one() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let connector = Arc::new(ScriptedConnector::new(vec![
        JobStatus::queued("SUBMITTED"),
        JobStatus::queued("SUBMITTED"),
        active(),
        active(),
        succeeded(),
    ]));
    let r = engine(&store, &connector)
        .drive(&lease, record, RunSignals::new())
        .await;
    assert!(
        matches!(r, Ok(Finish::Outcome(Outcome::Succeeded { .. }))),
        "{r:?}"
    );
    let polls: Vec<String> = store
        .history(&key())
        .await
        .unwrap()
        .into_iter()
        .filter(|h| h.decision == "poll")
        .map(|h| h.reason)
        .collect();
    assert_eq!(polls.len(), 2, "{polls:?}");
    assert!(polls[0].contains("is queued (SUBMITTED)"), "{polls:?}");
    assert!(polls[1].contains("is running (RUNNING)"), "{polls:?}");
}

/// A history write fenced out stops the run (history is skipped only when the store is down).
#[tokio::test(start_paused = true)]
async fn a_history_write_fenced_out_stops_the_run() {
    let store = store().await;
    let (lease, _) = acquire(&store, "me").await;
    submitted(&store, &lease).await;
    let record = store.get_run(&key()).await.unwrap().unwrap();
    take_over(&store).await;
    let connector = Arc::new(ScriptedConnector::new(vec![active()]));
    let engine = engine(&store, &connector);
    let drive = engine.drive(&lease, record, RunSignals::new());
    let r = timeout(Duration::from_secs(600), drive)
        .await
        .expect("stopped in time");
    assert!(matches!(r, Err(EngineError::LeaseLost { .. })), "{r:?}");
    assert_eq!(connector.calls(Call::Status), 1);
}

/// The fence: another owner took the run over while the connector was about to create the
/// job. Its confirmation fails, nothing is created, and the driver stops at once.
#[tokio::test]
async fn a_takeover_before_the_create_creates_nothing() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let connector = Arc::new(ScriptedConnector::new(vec![succeeded()]));
    connector.hold(Call::Submit);
    let driving = {
        let (store, connector) = (store.clone(), connector.clone());
        tokio::spawn(async move {
            engine(&store, &connector)
                .drive(&lease, record, RunSignals::new())
                .await
        })
    };
    while connector.calls(Call::Submit) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    take_over(&store).await;
    connector.release(Call::Submit);
    let r = driving.await.unwrap();
    assert!(matches!(r, Err(EngineError::LeaseLost { .. })), "{r:?}");
    assert_eq!(connector.calls(Call::Created), 0);
    assert_eq!(
        store.calls(Op::AppendHistory),
        0,
        "stopped at once, nothing more written"
    );
}

/// The fence: a store that cannot confirm the lease (outage) is not a lost lease: nothing is
/// created then, the tag is looked up, and the next attempt creates the job.
#[tokio::test(start_paused = true)]
async fn an_unconfirmed_fence_creates_nothing_and_the_run_goes_on() {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let connector = Arc::new(ScriptedConnector::new(vec![succeeded()]));
    store.fail(Op::Renew, Fault::Unavailable, 1);
    let r = engine(&store, &connector)
        .drive(&lease, record, RunSignals::new())
        .await;
    assert!(
        matches!(r, Ok(Finish::Outcome(Outcome::Succeeded { .. }))),
        "{r:?}"
    );
    assert_eq!(connector.calls(Call::Submit), 2);
    assert_eq!(connector.calls(Call::Created), 1);
    assert_eq!(connector.calls(Call::Lookup), 1);
}

/// Records when the lease was taken (virtual time).
#[derive(Default)]
struct AcquiredAt(Mutex<Option<Instant>>);

impl Observer for AcquiredAt {
    fn event(&self, _key: &RunKey, event: &Event) {
        if let Event::Acquired { .. } = event {
            self.0.lock().unwrap().get_or_insert_with(Instant::now);
        }
    }
}

/// A follower that finds the run held looks again soon, then less and less often: an owner
/// whose death is a moment from being visible (its PostgreSQL session not yet closed when a
/// rerun after `kill -9` first asks) is taken over a moment later, not a whole
/// `follow_interval` later (the rerun bench's p99 was 0.7 s for that reason).
#[tokio::test(start_paused = true)]
async fn a_follower_looks_again_soon_after_it_first_finds_the_run_held() {
    let store = store().await;
    let (lease, _) = acquire(&store, "dying").await;
    let follow = Duration::from_millis(800);
    let at = Arc::new(AcquiredAt::default());
    let engine = Engine::new(
        store.clone(),
        Arc::new(ScriptedConnector::new(vec![succeeded()])),
        policy(),
        LeaseSettings {
            ttl: TTL,
            follow_interval: follow,
        },
        at.clone(),
    );
    let start = Instant::now();
    let releaser = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            store.release(&lease).await.unwrap();
        })
    };
    let r = engine
        .run(&key(), &tether_core::ids::OwnerId("rerun".into()))
        .await;
    releaser.await.unwrap();
    assert!(
        matches!(r, Ok(Finish::Outcome(Outcome::Succeeded { .. }))),
        "{r:?}"
    );
    let took = at.0.lock().unwrap().expect("acquired") - start;
    assert!(
        took <= follow / 4,
        "taken over {took:?} after the owner let go (follow interval {follow:?})"
    );
}
