//! Bulk status on the real Livy and the real YARN under it (issue 15 part 2): one Livy batch
//! submitted by the connector is judged running from Livy's paged `GET /batches`, and its YARN
//! application from the RM's one `GET /ws/v1/cluster/apps?states=...` (the tag is in
//! `spark.yarn.tags`); once it ended both leave it to the per-run status.
//!
//! Starts its own Livy on the test YARN (`FreshLivy`, whose whitelist is this checkout's
//! `tests/`); needs `TETHER_YARN_ENV` (skipped with a message otherwise).
mod livy_support;

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use livy_support::FreshLivy;
use tether_connectors::registry::{BuildContext, Registry};
use tether_core::{
    connector::{JobRef, NoFence, SubmitRequest},
    ids::{ExternalId, Generation, RunKey, StoreId, Tag},
    journal::{Shape, Submission},
    observe::{ActiveState, JobStatus},
    Connector,
};

const T: Duration = Duration::from_secs(300);

fn build(name: &str, text: &str) -> Arc<dyn Connector> {
    Registry::builtin()
        .build(name, text, &BuildContext::default())
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .connector
}

#[tokio::test]
async fn one_bulk_call_judges_a_real_batch_on_livy_and_its_app_on_yarn() {
    let Some(fresh) =
        FreshLivy::start_or_skip("one_bulk_call_judges_a_real_batch_on_livy_and_its_app_on_yarn")
    else {
        return;
    };
    let e = fresh.env.clone();
    let rm = &e["YARN_RM_URL"];
    let file: PathBuf = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/spark-job/python/alloc.py")
        .canonicalize()
        .unwrap();
    let livy = build(
        "livy.toml",
        &format!(
            "[job]\nkind = \"livy\"\nurl = \"{}\"\nfile = \"{}\"\nargs = [\"16\", \"25\"]\n\
             driver_memory = \"512m\"\nrm_url = \"{rm}\"\n[job.conf]\n\
             \"spark.yarn.jars\" = \"local:{}/jars/*\"\n\"spark.yarn.maxAppAttempts\" = \"1\"\n\
             \"spark.yarn.am.waitTime\" = \"600s\"\n",
            e["LIVY_URL"],
            file.display(),
            e["SPARK_HOME"]
        ),
    );
    let yarn = build(
        "yarn.toml",
        &format!(
            "[job]\nkind = \"spark-yarn\"\nrm_url = \"{rm}\"\napp_resource = \"{}\"\n",
            file.display()
        ),
    );
    let key = RunKey::new(format!("bulk-{}", std::process::id())).unwrap();
    let submission = Submission {
        generation: Generation(1),
        tag: Tag::derive(&StoreId::new("livybulk").unwrap(), &key, Generation(1)),
        shape: Shape::Normal,
    };
    let id = livy
        .submit(&SubmitRequest::new(
            key,
            submission.clone(),
            Arc::new(NoFence),
        ))
        .await
        .unwrap();
    let batch = JobRef {
        external_id: id.clone(),
        submission: submission.clone(),
    };
    let lb = livy.bulk_status().unwrap();
    let yb = yarn.bulk_status().unwrap();
    // Running on both: Livy's list says so, and the RM's list of unfinished apps.
    let deadline = Instant::now() + T;
    let app = loop {
        let (_, b) =
            livy_support::http("GET", &format!("{}/batches/{}", e["LIVY_URL"], id.0), None);
        if b["state"] == "running" {
            if let Some(app) = b["appId"].as_str() {
                break app.to_string();
            }
        }
        assert!(Instant::now() < deadline, "batch {} never ran: {b}", id.0);
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let answer = lb.fetch(&[&batch]).await.unwrap();
    assert!(
        matches!(
            lb.judge(&answer, &batch),
            Some(JobStatus::Active {
                state: ActiveState::Running,
                ..
            })
        ),
        "{:?}",
        lb.judge(&answer, &batch)
    );
    let on_yarn = JobRef {
        external_id: ExternalId(app.clone()),
        submission,
    };
    let deadline = Instant::now() + T;
    loop {
        let answer = yb.fetch(&[&on_yarn]).await.unwrap();
        match yb.judge(&answer, &on_yarn) {
            Some(JobStatus::Active {
                state: ActiveState::Running,
                ..
            }) => break,
            Some(JobStatus::Active { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            other => panic!("application {app} on YARN: {other:?}"),
        }
    }
    // Ended: both lists leave it to the per-run status, which reads the outcome.
    let deadline = Instant::now() + T;
    while matches!(
        livy.status(&batch).await,
        JobStatus::Active { .. } | JobStatus::Unknown { .. }
    ) {
        assert!(Instant::now() < deadline, "batch {} did not end", id.0);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(matches!(
        livy.status(&batch).await,
        JobStatus::Succeeded { .. }
    ));
    let answer = lb.fetch(&[&batch]).await.unwrap();
    assert_eq!(lb.judge(&answer, &batch), None);
    let answer = yb.fetch(&[&on_yarn]).await.unwrap();
    assert_eq!(yb.judge(&answer, &on_yarn), None);
    assert!(matches!(
        yarn.status(&on_yarn).await,
        JobStatus::Succeeded { .. }
    ));
}
