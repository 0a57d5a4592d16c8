//! Bulk observation of the spark-standalone connector (issue 15 part 2) against the test kit's
//! fake master (`testkit::fakes::spark_standalone`, listing its drivers as a real master does):
//! one `/json/` judges every driver, find-by-tag shares fresh listings, and what the list does
//! not settle is left to the per-driver status.
use std::sync::{atomic::Ordering, Arc};

use tether_connectors::registry::{BuildContext, Registry};
use tether_core::{
    connector::{FenceHandle, JobRef, NoFence, SubmitRequest},
    ids::{ExternalId, Generation, RunKey, StoreId, Tag},
    journal::{Shape, Submission},
    observe::JobStatus,
    Connector,
};
use tether_testkit::fakes::spark_standalone::FakeSpark;

fn connector(url: &str) -> Arc<dyn Connector> {
    let text = format!(
        "[job]\nkind = \"spark-standalone\"\nmaster_rest = \"{url}\"\nmaster_ui = \"{url}\"\n\
         app_resource = \"file:/jobs/etl.jar\"\nmain_class = \"com.example.Etl\"\n"
    );
    Registry::builtin()
        .build("spark.toml", &text, &BuildContext::default())
        .unwrap()
        .connector
}

fn submission(n: usize) -> Submission {
    Submission {
        generation: Generation(1),
        tag: Tag::derive(
            &StoreId::new("bulk0001").unwrap(),
            &RunKey::new(format!("run-{n}")).unwrap(),
            Generation(1),
        ),
        shape: Shape::Normal,
    }
}

async fn submit_all(c: &Arc<dyn Connector>, n: usize) -> Vec<JobRef> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let c = c.clone();
        tasks.spawn(async move {
            let submission = submission(i);
            let req = SubmitRequest {
                key: RunKey::new(format!("run-{i}")).unwrap(),
                submission: submission.clone(),
                fence: FenceHandle(Arc::new(NoFence)),
            };
            let id = c.submit(&req).await.unwrap();
            (
                i,
                JobRef {
                    external_id: id,
                    submission,
                },
            )
        });
    }
    let mut jobs = vec![None; n];
    while let Some(r) = tasks.join_next().await {
        let (i, job) = r.unwrap();
        jobs[i] = Some(job);
    }
    jobs.into_iter().map(Option::unwrap).collect()
}

async fn fake() -> FakeSpark {
    let fake = FakeSpark::start().await.unwrap();
    fake.stats.list_drivers.store(true, Ordering::SeqCst);
    fake
}

#[tokio::test]
async fn one_listing_judges_every_driver_and_submits_share_listings() {
    let fake = fake().await;
    let c = connector(&fake.url());
    let jobs = submit_all(&c, 200).await;
    let listings = fake.stats.json_received.load(Ordering::SeqCst);
    eprintln!("200 submits: {listings} listings");
    assert!(
        listings < 50,
        "200 concurrent submits read the driver list {listings} times (shared fresh listings)"
    );
    let bulk = c
        .bulk_status()
        .expect("spark-standalone offers bulk status");
    let before = fake.stats.json_received.load(Ordering::SeqCst);
    let answer = bulk.fetch(&jobs.iter().collect::<Vec<_>>()).await.unwrap();
    for job in &jobs {
        match bulk.judge(&answer, job) {
            Some(JobStatus::Active { detail, .. }) => assert_eq!(detail, "RUNNING"),
            other => panic!("{}: {other:?}", job.external_id.0),
        }
    }
    assert_eq!(fake.stats.json_received.load(Ordering::SeqCst), before + 1);
    assert_eq!(
        fake.stats.statuses.load(Ordering::SeqCst),
        0,
        "no per-driver status call"
    );
    assert_eq!(
        fake.stats.logs.load(Ordering::SeqCst),
        0,
        "tags known from submit"
    );
}

#[tokio::test]
async fn what_the_listing_does_not_settle_is_left_to_the_per_driver_status() {
    let fake = fake().await;
    let submitter = connector(&fake.url());
    let jobs = submit_all(&submitter, 3).await;
    // A connector that did not submit them (a worker that took the runs over): tags unread.
    let c = connector(&fake.url());
    let bulk = c.bulk_status().unwrap();
    let answer = bulk.fetch(&jobs.iter().collect::<Vec<_>>()).await.unwrap();
    assert!(
        bulk.judge(&answer, &jobs[0]).is_none(),
        "running with an unread tag: the per-driver status reads it"
    );
    assert!(matches!(c.status(&jobs[0]).await, JobStatus::Active { .. }));
    assert!(
        matches!(
            bulk.judge(&answer, &jobs[0]),
            Some(JobStatus::Active { .. })
        ),
        "its tag is cached now"
    );
    // Another run's tag on this driver: the per-driver status words the mismatch.
    let foreign = JobRef {
        external_id: jobs[1].external_id.clone(),
        submission: submission(99),
    };
    assert!(bulk.judge(&answer, &foreign).is_none());
    // A driver the master does not list: never `not found` on absence alone.
    let absent = JobRef {
        external_id: ExternalId("driver-20260101000000-99999".into()),
        submission: submission(7),
    };
    assert!(bulk.judge(&answer, &absent).is_none());
    assert!(matches!(
        c.status(&absent).await,
        JobStatus::NotFound { .. }
    ));
}

#[tokio::test]
async fn a_master_that_cannot_list_fails_the_bulk_call() {
    let fake = fake().await;
    let c = connector(&fake.url());
    let jobs = submit_all(&c, 2).await;
    fake.stats.json_unavailable.store(true, Ordering::SeqCst);
    let err = c
        .bulk_status()
        .unwrap()
        .fetch(&jobs.iter().collect::<Vec<_>>())
        .await
        .unwrap_err();
    assert!(err.reason.contains("503"), "{err}");
    assert!(err.reason.contains("/json/"), "says where: {err}");
}

#[tokio::test]
async fn specs_on_one_master_share_an_endpoint_and_the_token_never_shows() {
    let fake = fake().await;
    let (a, b) = (connector(&fake.url()), connector(&fake.url()));
    let endpoint = a.bulk_status().unwrap().endpoint();
    assert_eq!(endpoint, b.bulk_status().unwrap().endpoint());
    assert!(endpoint.contains(&fake.url()), "{endpoint}");
}
