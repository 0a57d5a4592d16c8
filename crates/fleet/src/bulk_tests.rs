use std::sync::atomic::{AtomicUsize, Ordering};

use tether_core::{
    connector::{BulkAnswer, BulkError},
    ids::{ExternalId, Generation, RunKey, StoreId, Tag},
    journal::{Shape, Submission},
};

use super::*;

/// What the fake's bulk call answers.
#[derive(Clone, Copy)]
enum Mode {
    /// Every job running, its id in the detail.
    Running,
    /// The call fails.
    Fail,
    /// Jobs whose id ends in an odd digit are missing from the answer.
    OddMissing,
}

struct Fake {
    mode: Mode,
    delay: Duration,
    bulk_calls: AtomicUsize,
    single_calls: AtomicUsize,
    /// The jobs of each bulk call, in call order.
    batches: Mutex<Vec<Vec<String>>>,
}

impl Fake {
    fn new(mode: Mode) -> Arc<Fake> {
        Arc::new(Fake {
            mode,
            delay: Duration::ZERO,
            bulk_calls: AtomicUsize::new(0),
            single_calls: AtomicUsize::new(0),
            batches: Mutex::default(),
        })
    }
}

#[async_trait]
impl Connector for Fake {
    fn kind(&self) -> &str {
        "fake"
    }
    async fn submit(&self, _: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        unreachable!("not submitted in these tests")
    }
    async fn status(&self, job: &JobRef) -> JobStatus {
        self.single_calls.fetch_add(1, Ordering::SeqCst);
        JobStatus::running(format!("single {}", job.external_id.0))
    }
    async fn cancel(&self, _: &JobRef) -> Result<(), CancelError> {
        Ok(())
    }
    fn bulk_status(&self) -> Option<&dyn BulkStatus> {
        Some(self)
    }
}

#[async_trait]
impl BulkStatus for Fake {
    fn endpoint(&self) -> String {
        "fake://endpoint".into()
    }
    async fn fetch(&self, jobs: &[&JobRef]) -> Result<BulkAnswer, BulkError> {
        self.bulk_calls.fetch_add(1, Ordering::SeqCst);
        let ids: Vec<String> = jobs.iter().map(|j| j.external_id.0.clone()).collect();
        self.batches.lock().unwrap().push(ids.clone());
        tokio::time::sleep(self.delay).await;
        match self.mode {
            Mode::Fail => Err(BulkError {
                reason: "GET fake://endpoint/all: HTTP 503".into(),
            }),
            Mode::Running => Ok(BulkAnswer::new(ids)),
            Mode::OddMissing => Ok(BulkAnswer::new(
                ids.into_iter()
                    .filter(|id| !id.ends_with(['1', '3', '5', '7', '9']))
                    .collect::<Vec<_>>(),
            )),
        }
    }
    fn judge(&self, answer: &BulkAnswer, job: &JobRef) -> Option<JobStatus> {
        let listed: &Vec<String> = answer.get()?;
        listed
            .contains(&job.external_id.0)
            .then(|| JobStatus::running(format!("bulk {}", job.external_id.0)))
    }
}

fn job(n: usize) -> JobRef {
    JobRef {
        external_id: ExternalId(format!("job-{n}")),
        submission: Submission {
            generation: Generation(1),
            tag: Tag::derive(
                &StoreId::new("abcd1234").unwrap(),
                &RunKey::new(format!("run-{n}")).unwrap(),
                Generation(1),
            ),
            shape: Shape::Normal,
        },
    }
}

async fn ask_all(connector: &Arc<dyn Connector>, n: usize) -> Vec<JobStatus> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let c = connector.clone();
        tasks.spawn(async move { (i, c.status(&job(i)).await) });
    }
    let mut out = vec![None; n];
    while let Some(r) = tasks.join_next().await {
        let (i, st) = r.unwrap();
        out[i] = Some(st);
    }
    out.into_iter().map(Option::unwrap).collect()
}

fn detail(st: &JobStatus) -> String {
    match st {
        JobStatus::Active { detail, .. } => detail.clone(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_runs_cost_a_couple_of_requests_and_each_gets_its_own_status() {
    let fake = Fake::new(Mode::Running);
    let observers = Observers::new(Duration::from_millis(300));
    let c = observers.wrap(fake.clone());
    let statuses = ask_all(&c, 1000).await;
    for (i, st) in statuses.iter().enumerate() {
        assert_eq!(detail(st), format!("bulk job-{i}"), "run {i}");
    }
    // The first question may go out alone before the others are queued; the rest wait for the
    // next tick together.
    let calls = fake.bulk_calls.load(Ordering::SeqCst);
    assert!((1..=3).contains(&calls), "{calls} bulk calls for 1000 runs");
    assert_eq!(fake.single_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_failed_bulk_call_is_unknown_for_every_run_it_covers() {
    let fake = Fake::new(Mode::Fail);
    let c = Observers::new(Duration::from_millis(50)).wrap(fake.clone());
    for st in ask_all(&c, 20).await {
        match st {
            JobStatus::Unknown { reason } => {
                assert!(reason.contains("bulk status request"), "{reason}");
                assert!(reason.contains("HTTP 503"), "{reason}");
            }
            other => panic!("expected unknown, got {other:?}"),
        }
    }
    assert_eq!(
        fake.single_calls.load(Ordering::SeqCst),
        0,
        "a failed bulk call is not retried run by run (that is the load it avoids)"
    );
}

#[tokio::test]
async fn a_run_missing_from_the_bulk_answer_gets_its_own_status_call() {
    let fake = Fake::new(Mode::OddMissing);
    let c = Observers::new(Duration::from_millis(50)).wrap(fake.clone());
    let statuses = ask_all(&c, 10).await;
    for (i, st) in statuses.iter().enumerate() {
        let want = if i % 2 == 1 { "single" } else { "bulk" };
        assert_eq!(detail(st), format!("{want} job-{i}"));
    }
    assert_eq!(fake.single_calls.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_question_is_never_served_by_a_request_that_started_before_it() {
    let mut fake = Fake::new(Mode::Running);
    Arc::get_mut(&mut fake).unwrap().delay = Duration::from_millis(300);
    let gap = Duration::from_millis(100);
    let c = Observers::new(gap).wrap(fake.clone());
    let early = {
        let c = c.clone();
        tokio::spawn(async move { c.status(&job(1)).await })
    };
    // Asked while the first request is in flight: it must wait for the next one.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = tokio::time::Instant::now();
    let late = c.status(&job(2)).await;
    assert_eq!(detail(&late), "bulk job-2");
    assert_eq!(detail(&early.await.unwrap()), "bulk job-1");
    let batches = fake.batches.lock().unwrap().clone();
    assert_eq!(
        batches,
        vec![vec!["job-1".to_string()], vec!["job-2".into()]]
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "waited for its own request"
    );
}

#[tokio::test]
async fn connectors_without_bulk_status_are_left_as_they_are() {
    let local: Arc<dyn Connector> = Arc::new(NoBulk);
    let wrapped = Observers::default().wrap(local.clone());
    assert!(Arc::ptr_eq(&local, &wrapped));
}

struct NoBulk;

#[async_trait]
impl Connector for NoBulk {
    fn kind(&self) -> &str {
        "nobulk"
    }
    async fn submit(&self, _: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        unreachable!()
    }
    async fn status(&self, _: &JobRef) -> JobStatus {
        JobStatus::running("x")
    }
    async fn cancel(&self, _: &JobRef) -> Result<(), CancelError> {
        Ok(())
    }
}

#[tokio::test]
async fn runs_of_two_specs_on_one_endpoint_share_the_request_and_are_judged_by_their_own() {
    let (a, b) = (Fake::new(Mode::Running), Fake::new(Mode::Running));
    let observers = Observers::new(Duration::from_millis(200));
    // Both queued before the observer's first request goes out (it waits for the first
    // question, then for nothing: questions asked together share it).
    let (ca, cb) = (observers.wrap(a.clone()), observers.wrap(b.clone()));
    let (ra, rb) = tokio::join!(ask_all(&ca, 50), ask_all(&cb, 50));
    assert!(ra
        .iter()
        .chain(&rb)
        .all(|s| detail(s).starts_with("bulk job-")));
    let calls = a.bulk_calls.load(Ordering::SeqCst) + b.bulk_calls.load(Ordering::SeqCst);
    assert!(
        calls <= 3,
        "{calls} requests for 100 runs of 2 specs on one endpoint"
    );
    assert_eq!(
        a.single_calls.load(Ordering::SeqCst) + b.single_calls.load(Ordering::SeqCst),
        0
    );
}

/// Runs that wait without a task (parked) ask through the spec's endpoint: they share the
/// ticks of the drives that wait in tasks, and what the answer does not settle still gets its
/// own status call.
#[tokio::test]
async fn asks_without_a_task_share_the_tick_and_fall_back_alike() {
    let fake = Fake::new(Mode::OddMissing);
    let observers = Observers::new(Duration::from_millis(50));
    let (c, endpoint) = observers.wrap_endpoint(fake.clone());
    let endpoint = endpoint.expect("a connector with bulk status has an endpoint");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..10 {
        let tx = tx.clone();
        endpoint.ask(
            job(i),
            Box::new(move |st| {
                let _ = tx.send((i, st));
            }),
        );
    }
    let waiting = ask_all(&c, 4).await;
    assert_eq!(detail(&waiting[0]), "bulk job-0");
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.push(rx.recv().await.unwrap());
    }
    answers.sort_by_key(|(i, _)| *i);
    for (i, st) in &answers {
        let want = if i % 2 == 1 { "single" } else { "bulk" };
        assert_eq!(detail(st), format!("{want} job-{i}"));
    }
    // Ten parked asks and four waiting drives: one or two ticks, not fourteen requests.
    let calls = fake.bulk_calls.load(Ordering::SeqCst);
    assert!((1..=2).contains(&calls), "{calls} bulk calls");
    assert_eq!(fake.single_calls.load(Ordering::SeqCst), 5 + 2);
    // A connector without bulk status has no endpoint: its runs are resumed to ask themselves.
    let plain = Observers::disabled().wrap_endpoint(fake.clone());
    assert!(plain.1.is_none());
}
