//! The recovery shape of spark-k8s chosen by the Spark version: the spec's `spark_version`, or
//! what the real pyspark 4.3 `spark-submit --version` says (read at the first recovery
//! submission). The real spark-submit submits to the test kit's fake Kubernetes API server and
//! the test reads the conf Spark put into the driver's config map.
#![cfg(feature = "spark-k8s")]
mod spark_support;

use std::{path::Path, sync::Arc, time::Duration};

use tether_connectors::{
    conformance::{fresh_request, Fixture},
    registry::{BuildContext, Registry},
    spark::version::{cached, spark_version},
};
use tether_core::{connector::SubmitRequest, ids::ExternalId, journal::Shape, Connector};
use tether_testkit::fakes::kubernetes::{FakeKubernetes, Kind};

const NS: &str = "etl";
const TOKEN: &str = "fake-token-k8s-recovery";
const FLAG: &str = "spark.kubernetes.allocation.recoveryMode.enabled";

fn spark_home() -> std::path::PathBuf {
    spark_support::cluster()
        .spark_home
        .clone()
        .expect("SPARK_HOME in the cluster env")
}

fn spec(kubeconfig: &Path, extra: &str) -> String {
    format!(
        "[job]\nkind = \"spark-k8s\"\napp_resource = \"local:///opt/spark/examples/jars/spark-examples.jar\"\n\
         main_class = \"org.apache.spark.examples.SparkPi\"\nimage = \"apache/spark:4.3.0\"\n\
         namespace = \"{NS}\"\nkubeconfig = \"{}\"\nspark_home = \"{}\"\nrequest_timeout = \"2s\"\n{extra}\
         [job.executor]\ncores = 4\n",
        kubeconfig.display(),
        spark_home().display()
    )
}

fn connector(text: &str) -> Arc<dyn Connector> {
    match Registry::builtin().build("k8s.toml", text, &BuildContext::default()) {
        Ok(b) => b.connector,
        Err(e) => panic!("{e}\n{text}"),
    }
}

fn request(c: &Arc<dyn Connector>, what: &str, shape: Shape) -> SubmitRequest {
    let f = Fixture {
        name: "k8s-recovery".into(),
        succeeds: c.clone(),
        fails: c.clone(),
        runs_long: c.clone(),
        unknown_id: ExternalId("nope".into()),
        timeout: Duration::from_secs(60),
        poll: Duration::from_secs(1),
    };
    fresh_request(&f, what, shape)
}

/// The `spark.properties` Spark put in the config map of `driver`'s submission.
fn properties(fake: &FakeKubernetes, driver: &str) -> String {
    let pod = fake.pod(NS, driver).expect("the driver pod");
    let volumes = pod["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let maps: Vec<String> = volumes
        .iter()
        .filter_map(|v| v["configMap"]["name"].as_str().map(str::to_string))
        .collect();
    fake.list(Kind::ConfigMap, NS, "")
        .iter()
        .filter(|cm| {
            maps.iter()
                .any(|m| cm["metadata"]["name"].as_str() == Some(m.as_str()))
        })
        .filter_map(|cm| cm["data"]["spark.properties"].as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join("\n")
}

fn has(props: &str, key: &str, value: &str) -> bool {
    props
        .lines()
        .any(|l| l.trim() == format!("{key}={value}") || l.trim() == format!("{key}\\={value}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_banner_of_the_real_spark_submit_gives_4_3_and_is_cached() {
    let home = spark_home();
    let v = spark_version(&home, Duration::from_secs(120))
        .await
        .expect("pyspark's spark-submit --version");
    assert!(v.starts_with("4.3"), "{v}");
    assert_eq!(cached(&home), Some(v));
    let e = spark_version(Path::new("/nonexistent-spark"), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(e.contains("/nonexistent-spark/bin/spark-submit"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_spark_version_the_distribution_s_4_3_picks_the_native_flag() {
    let fake = FakeKubernetes::start(Some(TOKEN)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = fake.write_kubeconfig(dir.path(), NS, TOKEN).unwrap();
    let c = connector(&spec(&kc, ""));
    let req = request(&c, "native", Shape::Recovery);
    let id = c.submit(&req).await.expect("recovery submit");
    let props = properties(&fake, &id.0);
    assert!(has(&props, FLAG, "true"), "{props}");
    assert!(has(&props, "spark.executor.cores", "4"), "{props}");
    assert!(has(&props, "spark.tether.shape", "recovery"), "{props}");
    // Once read, the history's description names the version.
    let said = c.recovery().unwrap().describe();
    assert!(said.contains("Spark 4.3 recovery-mode executors"), "{said}");
    // A normal submission leaves the flag as the user set it (unset).
    let normal = request(&c, "normal", Shape::Normal);
    let id = c.submit(&normal).await.expect("normal submit");
    let props = properties(&fake, &id.0);
    assert!(!props.contains(FLAG), "{props}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spec_s_older_spark_version_shrinks_cores_and_keeps_the_pod() {
    let fake = FakeKubernetes::start(Some(TOKEN)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = fake.write_kubeconfig(dir.path(), NS, TOKEN).unwrap();
    let c = connector(&spec(&kc, "spark_version = \"4.1.1\"\n"));
    let said = c.recovery().unwrap().describe();
    assert!(!said.contains("not known"), "{said}");
    let req = request(&c, "older", Shape::Recovery);
    let id = c.submit(&req).await.expect("recovery submit");
    let props = properties(&fake, &id.0);
    assert!(!props.contains(FLAG), "{props}");
    assert!(has(&props, "spark.executor.cores", "1"), "{props}");
    assert!(
        has(&props, "spark.kubernetes.executor.request.cores", "4"),
        "{props}"
    );
}
