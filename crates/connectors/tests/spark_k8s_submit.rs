//! The real pyspark `spark-submit` (Spark's fabric8 Kubernetes client) against the test kit's
//! fake Kubernetes API server, through tether's spark-submit runner: the fake must serve every
//! request Spark makes (an unknown request fails the test), and a second submission of the same
//! driver pod name must meet `409 AlreadyExists` and create nothing.
mod spark_support;

use std::{path::PathBuf, time::Duration};

use spark_support::cluster;
use tether_connectors::spark::{
    conf::SparkConf,
    submit::{Cluster, SparkSubmit},
};
use tether_core::connector::SubmitError;
use tether_testkit::fakes::kubernetes::{FakeKubernetes, Kind};

const NS: &str = "spark-jobs";
const TOKEN: &str = "fake-k8s-token-1";

fn spark_home() -> PathBuf {
    cluster()
        .spark_home
        .clone()
        .expect("the cluster env names SPARK_HOME (pyspark's distribution)")
}

fn submission(fake: &FakeKubernetes, ca: &std::path::Path, pod: &str) -> SparkSubmit {
    let mut conf = SparkConf::default();
    for (k, v) in [
        ("spark.kubernetes.namespace", NS),
        ("spark.kubernetes.container.image", "apache/spark:4.3.0"),
        ("spark.kubernetes.driver.pod.name", pod),
        ("spark.kubernetes.driver.label.tether-tag", pod),
        ("spark.kubernetes.executor.label.tether-tag", pod),
        ("spark.kubernetes.submission.waitAppCompletion", "false"),
        ("spark.kubernetes.authenticate.submission.oauthToken", TOKEN),
        ("spark.tether.tag", pod),
    ] {
        conf.set(k, v);
    }
    conf.set(
        "spark.kubernetes.authenticate.submission.caCertFile",
        ca.display().to_string(),
    );
    SparkSubmit {
        spark_home: Some(spark_home()),
        cluster: Cluster::Kubernetes,
        master: format!("k8s://{}", fake.url()),
        main_class: Some("org.apache.spark.examples.SparkPi".into()),
        app_resource: "local:///opt/spark/examples/jars/spark-examples.jar".into(),
        args: vec!["10".into()],
        conf,
        env_allow: vec![],
        // No kubeconfig of the machine's: Spark's client would merge it in.
        env: vec![("KUBECONFIG".into(), "/nonexistent/kubeconfig".into())],
        timeout: Duration::from_secs(240),
        output_cap: 256 << 10,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn real_spark_submit_creates_the_driver_pod_and_a_second_create_is_409() {
    let fake = FakeKubernetes::start(Some(TOKEN)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &fake.ca.ca_pem).unwrap();
    let pod = "tether-proof-x1-driver";
    let first = submission(&fake, &ca, pod).run().await;
    // What Spark 4.3 sends with waitAppCompletion=false: the driver pod, then its service,
    // network policy and conf map by server-side apply, owned by the pod. Nothing else.
    let lines: Vec<String> = fake
        .server
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    eprintln!("spark-submit sent: {lines:#?}");
    let submitted = first.unwrap_or_else(|e| panic!("spark-submit against the fake: {e:?}"));
    assert!(
        fake.unknown_requests().is_empty(),
        "spark-submit made requests the fake does not serve: {:?}",
        fake.unknown_requests()
    );
    assert_eq!(submitted.id.0, pod, "{}", submitted.output);
    assert_eq!(lines[0], format!("POST /api/v1/namespaces/{NS}/pods"));
    let applied = |kind: &str| {
        lines
            .iter()
            .filter(|l| l.starts_with("PATCH") && l.contains(kind))
            .count()
    };
    assert_eq!(
        (
            applied("/services/"),
            applied("/networkpolicies/"),
            applied("/configmaps/")
        ),
        (1, 1, 1),
        "{lines:?}"
    );
    let auth = fake.server.requests()[0].header("authorization");
    assert_eq!(auth.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    let driver = fake.pod(NS, pod).expect("the driver pod exists");
    assert_eq!(driver["metadata"]["labels"]["tether-tag"], pod, "{driver}");
    assert_eq!(
        driver["metadata"]["labels"]["spark-role"], "driver",
        "{driver}"
    );
    assert_eq!(fake.pods_created(), 1);
    // Spark's other resources name the driver pod as their owner (its garbage collection).
    let uid = driver["metadata"]["uid"].clone();
    let owned: Vec<_> = fake
        .list(Kind::ConfigMap, NS, "")
        .into_iter()
        .chain(fake.list(Kind::Service, NS, ""))
        .filter(|o| o["metadata"]["ownerReferences"][0]["uid"] == uid)
        .collect();
    assert!(
        !owned.is_empty(),
        "no configmap or service owned by the driver pod"
    );

    // The same driver pod name again: 409 AlreadyExists, and nothing new is created.
    let second = submission(&fake, &ca, pod).run().await;
    assert!(
        fake.unknown_requests().is_empty(),
        "{:?}",
        fake.unknown_requests()
    );
    assert_eq!(fake.pods_created(), 1, "a second driver pod was created");
    // Spark cleans up after a failure past the pod's creation only: the existing pod stays.
    let still = fake
        .pod(NS, pod)
        .expect("the first driver pod is still there");
    assert!(still["metadata"]["deletionTimestamp"].is_null(), "{still}");
    // spark-submit exits 1 naming the conflict; the runner cannot tell this from any other
    // failure without an id (`Ambiguous`, its output cut short): the spark-k8s connector looks
    // the pod up by its name and tag label instead, and adopts it.
    match second {
        Err(SubmitError::Ambiguous { reason }) => {
            let conflict = format!("pods \"{pod}\" already exists");
            assert!(reason.contains(&conflict), "{reason}");
        }
        other => panic!("a second submission of the same pod name: {other:?}"),
    }
}
