//! Bulk observation of spark-k8s (issue 15 part 2) against the test kit's fake Kubernetes API
//! server: one list of tether's driver pods per tick judges every run as `status` would, a pod
//! the list lacks is left to `status`, and a failed list is an error (unknown for every run).
//! The test plays spark-submit (creating the driver pods) and the kubelet.
#![cfg(feature = "spark-k8s")]

use std::{path::Path, sync::Arc};

use serde_json::json;
use tether_connectors::{
    registry::{BuildContext, Registry},
    spark::tag::{driver_pod_name, label_value},
};
use tether_core::{
    connector::JobRef,
    ids::{ExternalId, Generation, RunKey, StoreId, Tag},
    journal::{Shape, Submission},
    observe::JobStatus,
    Connector,
};
use tether_testkit::fakes::kubernetes::{FakeKubernetes, Kind, Outage};

const NS: &str = "etl";
const TOKEN: &str = "fake-token-k8s-bulk";

fn connector(kubeconfig: &Path) -> Arc<dyn Connector> {
    let text = format!(
        "[job]\nkind = \"spark-k8s\"\napp_resource = \"local:///opt/app/etl.py\"\n\
         image = \"apache/spark:4.3.0\"\nnamespace = \"{NS}\"\nkubeconfig = \"{}\"\nrequest_timeout = \"2s\"\n",
        kubeconfig.display()
    );
    Registry::builtin()
        .build("k8s.toml", &text, &BuildContext::default())
        .unwrap()
        .connector
}

fn job(n: usize) -> JobRef {
    let tag = Tag::derive(
        &StoreId::new("bulk0001").unwrap(),
        &RunKey::new(format!("run-{n}")).unwrap(),
        Generation(1),
    );
    JobRef {
        external_id: ExternalId(driver_pod_name(&tag)),
        submission: Submission {
            generation: Generation(1),
            tag,
            shape: Shape::Normal,
        },
    }
}

/// The driver pod of `job`, as Spark creates it.
fn driver_pod(fake: &FakeKubernetes, job: &JobRef) {
    let pod = json!({"metadata": {"name": job.external_id.0, "labels": {
        "tether-tag": label_value(&job.submission.tag), "spark-role": "driver",
        "spark-app-selector": format!("spark-{}", job.external_id.0)}},
        "spec": {"containers": [{"name": "spark-kubernetes-driver", "image": "apache/spark:4.3.0"}]}});
    fake.create(Kind::Pod, NS, pod).unwrap();
}

fn pod_lists(fake: &FakeKubernetes) -> usize {
    fake.server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == format!("/api/v1/namespaces/{NS}/pods"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn n_runs_cost_one_pod_list_per_tick_and_are_judged_as_status_judges() {
    const N: usize = 12;
    let fake = FakeKubernetes::start(Some(TOKEN)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = fake.write_kubeconfig(dir.path(), NS, TOKEN).unwrap();
    let c = connector(&kc);
    let bulk = c.bulk_status().expect("spark-k8s offers bulk status");
    assert!(bulk.endpoint().contains(NS), "{}", bulk.endpoint());
    let jobs: Vec<JobRef> = (0..N).map(job).collect();
    for j in &jobs[..N - 1] {
        driver_pod(&fake, j);
    }
    // Running, succeeded, killed for memory, pending; the last one was never created.
    for j in &jobs[..8] {
        fake.set_running(NS, &j.external_id.0);
    }
    fake.succeed(NS, &jobs[0].external_id.0);
    fake.fail(NS, &jobs[1].external_id.0, "OOMKilled", 137);
    let before = pod_lists(&fake);
    for tick in 1..=3 {
        let answer = bulk
            .fetch(&jobs.iter().collect::<Vec<_>>())
            .await
            .expect("one list");
        let judged: Vec<Option<JobStatus>> = jobs.iter().map(|j| bulk.judge(&answer, j)).collect();
        assert_eq!(
            pod_lists(&fake) - before,
            tick,
            "one list per tick for {N} runs"
        );
        assert_eq!(
            judged[N - 1],
            None,
            "a pod the list lacks is left to status"
        );
        for (j, got) in jobs[..N - 1].iter().zip(&judged) {
            let want = c.status(j).await;
            assert_eq!(got.as_ref(), Some(&want), "{}", j.external_id.0);
        }
    }
    assert!(matches!(
        bulk.judge(
            &bulk.fetch(&jobs.iter().collect::<Vec<_>>()).await.unwrap(),
            &jobs[1]
        ),
        Some(JobStatus::Failed { .. })
    ));
    // A pod of our name without our tag: the status's own words (a mismatch), not ours.
    let mut other = jobs[2].clone();
    other.submission.tag = Tag::from_stored("tether-someone-else");
    let answer = bulk.fetch(&jobs.iter().collect::<Vec<_>>()).await.unwrap();
    assert_eq!(bulk.judge(&answer, &other), Some(c.status(&other).await));
    // The API server down: the list fails (the fleet reports unknown for every run).
    fake.outage(Some(Outage::Unavailable));
    let Err(e) = bulk.fetch(&jobs.iter().collect::<Vec<_>>()).await else {
        panic!("the list succeeded during an outage")
    };
    assert!(e.reason.contains(fake.url()), "{}", e.reason);
    fake.outage(None);
    assert!(bulk.fetch(&jobs.iter().collect::<Vec<_>>()).await.is_ok());
}
