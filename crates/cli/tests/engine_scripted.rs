//! Engine tests against a **scripted fake backend** (this file's `Scripted` connector: it is a
//! fake, answering from a script) and a real SQLite store. They cover what no real backend here
//! can be made to do on demand: answer "unknown" for a while, or forever.
use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use async_trait::async_trait;
use tether_core::{
    connector::{CancelError, FindByTag, JobRef, SubmitError, SubmitRequest},
    engine::{Engine, Finish, LeaseSettings, Quiet},
    ids::{ExternalId, OwnerId, RunKey, Tag},
    journal::Outcome,
    observe::{JobStatus, Lookup},
    spec::Policy,
    store::Created,
    Connector, Store,
};

/// A fake backend that answers status calls from a script (last answer repeats).
struct Scripted {
    submits: AtomicUsize,
    script: Mutex<VecDeque<JobStatus>>,
    last: Mutex<JobStatus>,
}

impl Scripted {
    fn new(script: Vec<JobStatus>) -> Arc<Self> {
        Arc::new(Scripted {
            submits: AtomicUsize::new(0),
            script: Mutex::new(script.into()),
            last: Mutex::new(JobStatus::Unknown {
                reason: "empty script".into(),
            }),
        })
    }
    fn set(&self, s: JobStatus) {
        self.script.lock().unwrap().clear();
        *self.last.lock().unwrap() = s;
    }
}

#[async_trait]
impl Connector for Scripted {
    fn kind(&self) -> &str {
        "scripted"
    }
    async fn submit(&self, _req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        let n = self.submits.fetch_add(1, Ordering::SeqCst);
        Ok(ExternalId(n.to_string())) // the first id is "0": a valid id
    }
    async fn status(&self, _job: &JobRef) -> JobStatus {
        let next = self.script.lock().unwrap().pop_front();
        match next {
            Some(s) => {
                *self.last.lock().unwrap() = s.clone();
                s
            }
            None => self.last.lock().unwrap().clone(),
        }
    }
    async fn cancel(&self, _job: &JobRef) -> Result<(), CancelError> {
        Ok(())
    }
    fn find_by_tag(&self) -> Option<&dyn FindByTag> {
        Some(self)
    }
}

#[async_trait]
impl FindByTag for Scripted {
    async fn find_by_tag(&self, _tag: &Tag) -> Lookup {
        Lookup::Unknown {
            reason: "fake backend unreachable".into(),
        }
    }
}

async fn setup(key: &str) -> (tempfile::TempDir, Arc<dyn Store>, RunKey) {
    let dir = tempfile::tempdir().unwrap();
    let store = tether_store::open(&dir.path().join("s.db").display().to_string())
        .await
        .unwrap();
    let key = RunKey::new(key).unwrap();
    assert!(matches!(
        store
            .create_run(&tether_testkit::scripted_run(&key))
            .await
            .unwrap(),
        Created::New(_)
    ));
    (dir, store, key)
}

/// An owner that recorded the intent of generation 1 and died before recording the job id;
/// returns once its lease has expired, with the intent's tag.
async fn crashed_after_intent(store: &Arc<dyn Store>, key: &RunKey) -> Tag {
    let owner = OwnerId("crashed".into());
    let lease = match store
        .acquire(key, &owner, Duration::from_millis(200))
        .await
        .unwrap()
    {
        tether_core::store::Acquire::Acquired(l, _) => l,
        other => panic!("{other:?}"),
    };
    let tag = Tag::derive(store.store_id(), key, tether_core::ids::Generation(1));
    let sub = tether_core::journal::Submission {
        generation: tether_core::ids::Generation(1),
        tag: tag.clone(),
        shape: tether_core::journal::Shape::Normal,
    };
    let entry = tether_core::store::HistoryEntry {
        at_ms: 0,
        epoch: lease.epoch,
        generation: None,
        decision: "submit".into(),
        reason: "test".into(),
    };
    store
        .record_intent(&lease, &sub, None, None, &entry)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // its lease expires
    tag
}

fn policy(status_timeout: Duration) -> Policy {
    Policy {
        poll_interval: Duration::from_millis(20),
        backoff: Duration::from_millis(20),
        backoff_max: Duration::from_millis(50),
        status_timeout,
        ..Policy::default()
    }
}

fn unknown() -> JobStatus {
    JobStatus::Unknown {
        reason: "HTTP 503".into(),
    }
}

#[tokio::test]
async fn unknown_status_is_asked_again_and_never_resubmitted() {
    let (_d, store, key) = setup("u1").await;
    let fake = Scripted::new(vec![
        JobStatus::running("RUNNING"),
        unknown(),
        unknown(),
        unknown(),
        JobStatus::running("RUNNING"),
        unknown(),
        JobStatus::Succeeded {
            result: serde_json::json!({"rows": 42}),
        },
    ]);
    let engine = Engine::new(
        store.clone(),
        fake.clone(),
        policy(Duration::from_secs(30)),
        LeaseSettings::default(),
        Arc::new(Quiet),
    );
    let finish = engine.run(&key, &OwnerId("t".into())).await.unwrap();
    assert_eq!(
        finish,
        Finish::Outcome(Outcome::Succeeded {
            result: serde_json::json!({"rows": 42})
        })
    );
    assert_eq!(
        fake.submits.load(Ordering::SeqCst),
        1,
        "unknown never leads to a resubmission"
    );
    let history = store.history(&key).await.unwrap();
    assert!(
        history.iter().any(|h| h.decision == "ask-again"),
        "{history:?}"
    );
}

#[tokio::test]
async fn unknown_beyond_status_timeout_gives_up_resumably_then_resumes_without_resubmitting() {
    let (_d, store, key) = setup("u2").await;
    let fake = Scripted::new(vec![JobStatus::running("RUNNING"), unknown()]);
    let engine = Engine::new(
        store.clone(),
        fake.clone(),
        policy(Duration::from_millis(300)),
        LeaseSettings::default(),
        Arc::new(Quiet),
    );
    let finish = engine.run(&key, &OwnerId("t1".into())).await.unwrap();
    assert!(matches!(finish, Finish::GaveUp { .. }), "{finish:?}");
    let run = store.get_run(&key).await.unwrap().unwrap();
    assert!(
        run.owner.is_none(),
        "the lease is released so anyone can resume at once"
    );
    assert_eq!(
        run.current().1,
        Some(&ExternalId("0".into())),
        "the id (\"0\") stays recorded"
    );
    // The backend answers again: the next run reconnects to job "0" instead of submitting.
    fake.set(JobStatus::Succeeded {
        result: serde_json::json!(null),
    });
    let finish = engine.run(&key, &OwnerId("t2".into())).await.unwrap();
    assert!(
        matches!(finish, Finish::Outcome(Outcome::Succeeded { .. })),
        "{finish:?}"
    );
    assert_eq!(fake.submits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unknown_lookup_after_an_intent_never_submits() {
    let (_d, store, key) = setup("u3").await;
    crashed_after_intent(&store, &key).await;
    let fake = Scripted::new(vec![]);
    let engine = Engine::new(
        store.clone(),
        fake.clone(),
        policy(Duration::from_millis(400)),
        LeaseSettings::default(),
        Arc::new(Quiet),
    );
    let finish = engine.run(&key, &OwnerId("heir".into())).await.unwrap();
    assert!(matches!(finish, Finish::GaveUp { .. }), "{finish:?}");
    assert_eq!(
        fake.submits.load(Ordering::SeqCst),
        0,
        "a lookup that cannot answer never leads to a submission"
    );
}

/// A fake backend that refuses every submission (connection refused) but answers look-ups:
/// e.g. a Spark master whose REST port is closed while its web UI is up.
struct RefusesSubmits {
    attempts: AtomicUsize,
}

#[async_trait]
impl Connector for RefusesSubmits {
    fn kind(&self) -> &str {
        "refuses-submits"
    }
    async fn submit(&self, _req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        Err(SubmitError::Unavailable {
            reason: "connection refused".into(),
        })
    }
    async fn status(&self, _job: &JobRef) -> JobStatus {
        JobStatus::NotFound {
            detail: "never submitted".into(),
        }
    }
    async fn cancel(&self, _job: &JobRef) -> Result<(), CancelError> {
        Ok(())
    }
    fn find_by_tag(&self) -> Option<&dyn FindByTag> {
        Some(self)
    }
}

#[async_trait]
impl FindByTag for RefusesSubmits {
    async fn find_by_tag(&self, _tag: &Tag) -> Lookup {
        Lookup::Absent
    }
}

#[tokio::test]
async fn submissions_refused_until_status_timeout_give_up_resumably() {
    let (_d, store, key) = setup("u4").await;
    let fake = Arc::new(RefusesSubmits {
        attempts: AtomicUsize::new(0),
    });
    let engine = Engine::new(
        store.clone(),
        fake.clone(),
        policy(Duration::from_millis(500)),
        LeaseSettings::default(),
        Arc::new(Quiet),
    );
    let owner = OwnerId("t".into());
    let run = engine.run(&key, &owner);
    let finish = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("must give up, not loop forever")
        .unwrap();
    assert!(matches!(finish, Finish::GaveUp { .. }), "{finish:?}");
    assert!(
        fake.attempts.load(Ordering::SeqCst) >= 2,
        "it did try again meanwhile"
    );
    let run = store.get_run(&key).await.unwrap().unwrap();
    assert_eq!(
        run.journal.phase.label(),
        "submitting",
        "the intent stays for the next attempt"
    );
}

/// A backend flapping between "running" and "unknown" on every poll adds at most one `poll`
/// and one `ask-again` row per minute, not one per poll.
#[tokio::test]
async fn a_flapping_backend_does_not_grow_the_history_by_a_row_per_poll() {
    let (_d, store, key) = setup("flap").await;
    let mut script = Vec::new();
    for _ in 0..30 {
        script.push(JobStatus::running("RUNNING"));
        script.push(unknown());
    }
    script.push(JobStatus::Succeeded {
        result: serde_json::json!({}),
    });
    let fake = Scripted::new(script);
    let mut p = policy(Duration::from_secs(30));
    p.poll_interval = Duration::from_millis(1);
    p.backoff = Duration::from_millis(1);
    p.backoff_max = Duration::from_millis(1);
    let engine = Engine::new(
        store.clone(),
        fake.clone(),
        p,
        LeaseSettings::default(),
        Arc::new(Quiet),
    );
    let finish = engine.run(&key, &OwnerId("t".into())).await.unwrap();
    assert!(matches!(finish, Finish::Outcome(Outcome::Succeeded { .. })));
    let history = store.history(&key).await.unwrap();
    let count = |d: &str| history.iter().filter(|h| h.decision == d).count();
    assert_eq!(count("poll"), 1, "{history:#?}");
    assert_eq!(count("ask-again"), 1, "{history:#?}");
    assert!(history.len() < 12, "{} rows: {history:#?}", history.len());
}

/// A fake backend that cannot search by tag but submits idempotently: a repeated tag gets the
/// job it already started (like a Databricks `idempotency_token` or a K8s driver pod name).
struct IdempotentBackend {
    idempotent: bool,
    jobs: Mutex<Vec<String>>,
}

#[async_trait]
impl Connector for IdempotentBackend {
    fn kind(&self) -> &str {
        "idempotent"
    }
    async fn submit(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        req.fence.confirm().await?;
        let mut jobs = self.jobs.lock().unwrap();
        let tag = req.submission.tag.to_string();
        if !jobs.contains(&tag) {
            jobs.push(tag.clone());
        }
        Ok(ExternalId(format!("job-{tag}")))
    }
    async fn status(&self, _job: &JobRef) -> JobStatus {
        JobStatus::Succeeded {
            result: serde_json::json!({}),
        }
    }
    async fn cancel(&self, _job: &JobRef) -> Result<(), CancelError> {
        Ok(())
    }
    fn idempotent_submit(&self) -> bool {
        self.idempotent
    }
}

/// An intent left without id by a crashed owner: an idempotent backend gets the same tag again
/// (one job in all); a backend that can neither search nor dedupe fails the run unverifiable.
#[tokio::test]
async fn an_intent_without_id_is_resubmitted_with_its_tag_only_on_an_idempotent_backend() {
    for idempotent in [true, false] {
        let (_d, store, key) = setup("idem").await;
        let tag = crashed_after_intent(&store, &key).await;
        // The crashed owner had reached the backend: its job exists.
        let fake = Arc::new(IdempotentBackend {
            idempotent,
            jobs: Mutex::new(vec![tag.to_string()]),
        });
        let engine = Engine::new(
            store.clone(),
            fake.clone(),
            policy(Duration::from_secs(5)),
            LeaseSettings::default(),
            Arc::new(Quiet),
        );
        let finish = engine.run(&key, &OwnerId("heir".into())).await.unwrap();
        assert_eq!(fake.jobs.lock().unwrap().len(), 1, "one job in all");
        match (idempotent, finish) {
            (true, Finish::Outcome(Outcome::Succeeded { .. })) => {}
            (false, Finish::Outcome(Outcome::Failed { class, .. })) => {
                assert_eq!(class, tether_core::observe::FailureClass::Unverifiable)
            }
            (i, f) => panic!("idempotent={i}: {f:?}"),
        }
    }
}
