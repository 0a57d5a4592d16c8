//! Bulk observation of the spark-standalone connector against a real Spark 4.3 standalone
//! cluster (see `spark_support`): the master's real `/json/` judges a running driver as its
//! per-driver status does, a connector that did not submit the driver leaves it to the
//! per-driver status until its tag is read, and an ended driver is left to the per-driver
//! status (which classifies it), then served from its cache.
mod spark_support;

use std::{sync::Arc, time::Instant};

use spark_support::*;
use tether_connectors::registry::{BuildContext, Registry};
use tether_core::{
    connector::{FenceHandle, JobRef, NoFence, SubmitRequest},
    ids::{Generation, RunKey, StoreId, Tag},
    journal::{Shape, Submission},
    observe::{FailureClass, JobStatus},
    Connector,
};

fn connector() -> Arc<dyn Connector> {
    let text = spec(&cluster().rest, &["sleep", "3600"], "", "", "");
    Registry::builtin()
        .build("spark.toml", &text, &BuildContext::default())
        .unwrap_or_else(|e| panic!("spec rejected: {e}\n{text}"))
        .connector
}

async fn judged(c: &dyn Connector, job: &JobRef) -> Option<JobStatus> {
    let bulk = c
        .bulk_status()
        .expect("spark-standalone offers bulk status");
    let answer = bulk.fetch(&[job]).await.expect("fetch");
    bulk.judge(&answer, job)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_real_masters_listing_judges_drivers_like_their_status() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let key = RunKey::new(format!("spark-bulk-{}-{nanos}", std::process::id())).unwrap();
    let submission = Submission {
        generation: Generation(1),
        tag: Tag::derive(&StoreId::new("testst0r").unwrap(), &key, Generation(1)),
        shape: Shape::Normal,
    };
    let submitter = connector();
    let req = SubmitRequest {
        key,
        submission: submission.clone(),
        fence: FenceHandle(Arc::new(NoFence)),
    };
    let job = JobRef {
        external_id: submitter.submit(&req).await.expect("submit"),
        submission,
    };
    let deadline = Instant::now() + T;
    loop {
        match judged(&*submitter, &job).await {
            Some(JobStatus::Active { detail, .. }) if detail == "RUNNING" => break,
            Some(JobStatus::Active { .. }) | None => {}
            other => panic!("{}: unexpected {other:?}", job.external_id),
        }
        assert!(Instant::now() < deadline, "{} never ran", job.external_id);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    assert!(
        matches!(submitter.status(&job).await, JobStatus::Active { detail, .. } if detail == "RUNNING"),
        "the per-driver status agrees"
    );

    // A worker that took the run over: the tag is not read yet, the listing leaves it open.
    let taker = connector();
    assert_eq!(judged(&*taker, &job).await, None);
    // The tag read by status settles it (once the worker has written the driver's launch
    // command: until then status says running, unverified, and reads it again next time).
    let deadline = Instant::now() + T;
    loop {
        assert!(matches!(taker.status(&job).await, JobStatus::Active { .. }));
        match judged(&*taker, &job).await {
            Some(JobStatus::Active { detail, .. }) if detail == "RUNNING" => break,
            None => {}
            other => panic!("{}: unexpected {other:?}", job.external_id),
        }
        assert!(
            Instant::now() < deadline,
            "{}: tag never read",
            job.external_id
        );
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }

    submitter.cancel(&job).await.expect("cancel");
    let deadline = Instant::now() + T;
    while !drivers()
        .iter()
        .any(|(id, s)| *id == job.external_id.0 && s == "KILLED")
    {
        assert!(Instant::now() < deadline, "{} not killed", job.external_id);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    assert_eq!(
        judged(&*taker, &job).await,
        None,
        "ended: the per-driver status classifies it"
    );
    let killed = taker.status(&job).await;
    assert!(
        matches!(
            killed,
            JobStatus::Failed {
                class: FailureClass::Killed,
                ..
            }
        ),
        "{killed:?}"
    );
    assert_eq!(
        judged(&*taker, &job).await,
        Some(killed),
        "then served from its cache"
    );
}
