//! The spark-k8s connector against the test kit's fake Kubernetes API server (HTTPS, its own
//! CA, a bearer token, reached through a kubeconfig file as a user's would be). The test plays
//! the kubelet. Submission runs the real pyspark `spark-submit` (`spark_support` gives
//! SPARK_HOME); everything after it goes through `kube`.
#![cfg(feature = "spark-k8s")]
mod spark_support;

use std::{path::Path, sync::Arc, time::Duration};

use serde_json::json;
use tether_connectors::{
    conformance::{fresh_request, Fixture},
    registry::{BuildContext, Registry},
    spark::tag::{driver_pod_name, label_value},
};
use tether_core::{
    connector::{CancelError, JobRef, LogCursor, LogStream, SubmitRequest},
    ids::ExternalId,
    journal::Shape,
    observe::{ActiveState, FailureClass, JobStatus, Lookup},
    Connector,
};
use tether_testkit::fakes::kubernetes::{FakeKubernetes, Outage};

const NS: &str = "etl";
const TOKEN: &str = "fake-token-k8s-connector";

/// A kubeconfig naming the fake (CA file, token), as `kubectl config` writes one.
fn kubeconfig(fake: &FakeKubernetes, dir: &Path) -> std::path::PathBuf {
    fake.write_kubeconfig(dir, NS, TOKEN).unwrap()
}

fn spec(kubeconfig: &Path, extra: &str) -> String {
    let home = spark_support::cluster()
        .spark_home
        .clone()
        .expect("SPARK_HOME in the cluster env");
    format!(
        "[job]\nkind = \"spark-k8s\"\napp_resource = \"local:///opt/spark/examples/jars/spark-examples.jar\"\n\
         main_class = \"org.apache.spark.examples.SparkPi\"\nargs = [\"10\"]\nimage = \"apache/spark:4.3.0\"\n\
         namespace = \"{NS}\"\nkubeconfig = \"{}\"\nspark_home = \"{}\"\nrequest_timeout = \"2s\"\n{extra}",
        kubeconfig.display(),
        home.display()
    )
}

fn connector(text: &str) -> Arc<dyn Connector> {
    match Registry::builtin().build("k8s.toml", text, &BuildContext::default()) {
        Ok(b) => b.connector,
        Err(e) => panic!("{e}\n{text}"),
    }
}

fn request(c: &Arc<dyn Connector>, what: &str) -> SubmitRequest {
    let f = Fixture {
        name: "k8s".into(),
        succeeds: c.clone(),
        fails: c.clone(),
        runs_long: c.clone(),
        unknown_id: ExternalId("nope".into()),
        timeout: Duration::from_secs(60),
        poll: Duration::from_secs(1),
    };
    fresh_request(&f, what, Shape::Normal)
}

fn job_ref(req: &SubmitRequest, id: &str) -> JobRef {
    JobRef {
        external_id: ExternalId(id.into()),
        submission: req.submission.clone(),
    }
}

/// A driver pod as Spark creates it for `req` (the test standing in for spark-submit).
fn driver_pod(fake: &FakeKubernetes, req: &SubmitRequest) -> String {
    let name = driver_pod_name(&req.submission.tag);
    let pod = json!({"metadata": {"name": name, "labels": {"tether-tag": label_value(&req.submission.tag),
        "spark-role": "driver", "spark-app-selector": "spark-1"}},
        "spec": {"containers": [{"name": "spark-kubernetes-driver", "image": "apache/spark:4.3.0"}]}});
    fake.create(tether_testkit::fakes::kubernetes::Kind::Pod, NS, pod)
        .unwrap();
    name
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_creates_one_driver_pod_and_a_second_submit_returns_it() {
    let fake = FakeKubernetes::start(Some(TOKEN)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&spec(&kubeconfig(&fake, dir.path()), ""));
    let req = request(&c, "submit");
    let id = c.submit(&req).await.expect("submit");
    assert_eq!(id.0, driver_pod_name(&req.submission.tag));
    assert!(
        fake.unknown_requests().is_empty(),
        "{:?}",
        fake.unknown_requests()
    );
    let pod = fake.pod(NS, &id.0).expect("the driver pod");
    assert_eq!(
        pod["metadata"]["labels"]["tether-tag"],
        label_value(&req.submission.tag)
    );
    // Executors carry the tag too (Spark puts the conf into the pod's properties).
    let cm = fake.list(tether_testkit::fakes::kubernetes::Kind::ConfigMap, NS, "");
    let props = cm[0]["data"]["spark.properties"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        props.contains("spark.kubernetes.executor.label.tether-tag"),
        "{props}"
    );
    // The same tag again (a crash after submit, before the id was recorded): the same pod.
    let again = c.submit(&req).await.expect("second submit");
    assert_eq!(again, id);
    assert_eq!(fake.pods_created(), 1);
    let found = c
        .find_by_tag()
        .unwrap()
        .find_by_tag(&req.submission.tag)
        .await;
    assert_eq!(
        found,
        Lookup::Found {
            external_id: id.clone()
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_follows_the_driver_pod_and_logs_page() {
    let fake = FakeKubernetes::start(Some(TOKEN)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&spec(&kubeconfig(&fake, dir.path()), ""));
    let req = request(&c, "status");
    let name = driver_pod(&fake, &req);
    let job = job_ref(&req, &name);
    let s = c.status(&job).await;
    assert!(
        matches!(
            s,
            JobStatus::Active {
                state: ActiveState::Queued,
                ..
            }
        ),
        "{s:?}"
    );
    fake.set_running(NS, &name);
    let s = c.status(&job).await;
    assert!(
        matches!(
            s,
            JobStatus::Active {
                state: ActiveState::Running,
                ..
            }
        ),
        "{s:?}"
    );
    fake.append_log(NS, &name, "line one\nPi is roughly 3.14");
    let logs = c.logs().unwrap();
    let first = logs
        .read_logs(&job, LogStream::Stderr, &LogCursor::start(), 5)
        .await
        .unwrap();
    assert_eq!(first.data, b"line ");
    let rest = logs
        .read_logs(&job, LogStream::Stderr, &first.next, 1 << 20)
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&rest.data),
        "one\nPi is roughly 3.14\n"
    );
    fake.fail(NS, &name, "OOMKilled", 137);
    match c.status(&job).await {
        JobStatus::Failed { class, message } => {
            assert_eq!(class, FailureClass::Oom, "{message}");
            assert!(message.contains("OOMKilled"), "{message}");
        }
        s => panic!("{s:?}"),
    }
    // Gone (evicted and collected): not found, for the engine's identity rules.
    fake.remove_pod(NS, &name);
    assert!(matches!(c.status(&job).await, JobStatus::NotFound { .. }));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_driver_reports_reason_exit_code_and_spark_exit_exception() {
    let fake = FakeKubernetes::start(Some(TOKEN)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&spec(&kubeconfig(&fake, dir.path()), ""));
    let req = request(&c, "failed");
    let name = driver_pod(&fake, &req);
    fake.annotate(
        NS,
        &name,
        "spark.exit-exception",
        "java.lang.IllegalArgumentException: no input",
    );
    fake.fail(NS, &name, "Error", 1);
    match c.status(&job_ref(&req, &name)).await {
        JobStatus::Failed { class, message } => {
            assert_eq!(class, FailureClass::Other);
            assert!(
                message.contains("Error (exit code 1)") && message.contains("no input"),
                "{message}"
            );
        }
        s => panic!("{s:?}"),
    }
    let ok = request(&c, "ok");
    let name = driver_pod(&fake, &ok);
    fake.succeed(NS, &name);
    let s = c.status(&job_ref(&ok, &name)).await;
    assert!(matches!(s, JobStatus::Succeeded { .. }), "{s:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_deletes_only_our_driver_pod_and_what_it_owns() {
    let fake = FakeKubernetes::start(Some(TOKEN)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&spec(&kubeconfig(&fake, dir.path()), ""));
    let req = request(&c, "cancel");
    let name = driver_pod(&fake, &req);
    let uid = fake.pod(NS, &name).unwrap()["metadata"]["uid"].clone();
    let exec = json!({"metadata": {"name": format!("{name}-exec-1"), "labels": {"spark-role": "executor"},
        "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}]},
        "spec": {"containers": [{"name": "spark-kubernetes-executor", "image": "i"}]}});
    fake.create(tether_testkit::fakes::kubernetes::Kind::Pod, NS, exec)
        .unwrap();
    // Someone else's pod under our id: refused.
    let other = request(&c, "other");
    let refused = c.cancel(&job_ref(&other, &name)).await;
    assert!(
        matches!(refused, Err(CancelError::Refused { .. })),
        "{refused:?}"
    );
    c.cancel(&job_ref(&req, &name)).await.expect("cancel");
    fake.finish_deletions();
    assert!(fake.pod(NS, &name).is_none());
    assert!(
        fake.pod(NS, &format!("{name}-exec-1")).is_none(),
        "the executor went with its owner"
    );
    // Already gone: cancelled.
    c.cancel(&job_ref(&req, &name))
        .await
        .expect("cancel of a gone pod");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_api_server_is_unknown_never_a_failure() {
    let mut fake = FakeKubernetes::start(Some(TOKEN)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = connector(&spec(&kubeconfig(&fake, dir.path()), ""));
    let req = request(&c, "outage");
    let name = driver_pod(&fake, &req);
    let job = job_ref(&req, &name);
    fake.outage(Some(Outage::Unavailable));
    assert!(matches!(c.status(&job).await, JobStatus::Unknown { .. }));
    let found = c
        .find_by_tag()
        .unwrap()
        .find_by_tag(&req.submission.tag)
        .await;
    assert!(matches!(found, Lookup::Unknown { .. }), "{found:?}");
    // A submit that cannot look its tag up creates nothing.
    assert!(c.submit(&req).await.is_err());
    fake.outage(Some(Outage::Drop));
    assert!(matches!(c.status(&job).await, JobStatus::Unknown { .. }));
    fake.outage(None);
    fake.server.stop().await;
    match c.status(&job).await {
        JobStatus::Unknown { reason } => assert!(!reason.contains(TOKEN), "{reason}"),
        s => panic!("{s:?}"),
    }
    assert_eq!(fake.pods_created(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_specs_are_rejected_naming_the_field() {
    let fake = FakeKubernetes::start(Some(TOKEN)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(&fake, dir.path());
    let build = |text: &str| {
        Registry::builtin()
            .build("k8s.toml", text, &BuildContext::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = build(&spec(&kc, "imagePullPolicy = \"Always\"\n"));
    assert!(
        e.contains("imagePullPolicy") && e.contains("k8s.toml:"),
        "{e}"
    );
    let e = build(&spec(&kc, "context = \"prod\"\n"));
    assert!(e.contains("job.context") && e.contains("prod"), "{e}");
    let e = build(&spec(&dir.path().join("missing"), ""));
    assert!(e.contains("job.kubeconfig"), "{e}");
    let e = build(&spec(
        &kc,
        "[job.conf]\n\"spark.kubernetes.driver.pod.name\" = \"mine\"\n",
    ));
    assert!(e.contains("spark.kubernetes.driver.pod.name"), "{e}");
}

/// A submission that races another one of the same tag: spark-submit meets the 409 (here a
/// stand-in spark-submit, a real process, that waits while the other pod appears and then fails
/// as Spark's does) and the connector adopts the pod of its name and tag instead of failing.
#[tokio::test(flavor = "multi_thread")]
async fn a_spark_submit_that_meets_409_adopts_the_pod_of_its_tag() {
    use std::os::unix::fs::PermissionsExt;
    let fake = FakeKubernetes::start(Some(TOKEN)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("spark");
    std::fs::create_dir_all(home.join("bin")).unwrap();
    let script = home.join("bin/spark-submit");
    std::fs::write(
        &script,
        "#!/bin/sh\nsleep 3\necho 'Exception in thread \"main\" io.fabric8.kubernetes.client.KubernetesClientException: pods already exists' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let real_home = spark_support::cluster().spark_home.clone().unwrap();
    let text = spec(&kubeconfig(&fake, dir.path()), "").replace(
        &format!("spark_home = \"{}\"", real_home.display()),
        &format!("spark_home = \"{}\"", home.display()),
    );
    let c = connector(&text);
    let req = request(&c, "race");
    let submit = tokio::spawn({
        let (c, req) = (c.clone(), req.clone());
        async move { c.submit(&req).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let name = driver_pod(&fake, &req);
    let id = submit.await.unwrap().expect("the raced pod is adopted");
    assert_eq!(id.0, name);
    assert_eq!(fake.pods_created(), 1);
    // Without a pod of the tag, the same failure stays a failure.
    let other = request(&c, "race-lost");
    assert!(c.submit(&other).await.is_err());
}
