//! The connector conformance suite for spark-k8s: the real pyspark `spark-submit` creates the
//! driver pods in the test kit's fake Kubernetes API server, whose auto-kubelet moves each pod
//! by a fate read from the application's last argument (`succeed`, `fail`, `forever`).
#![cfg(feature = "spark-k8s")]
mod spark_support;

use std::{sync::Arc, time::Duration};

use serde_json::Value;
use tether_connectors::{
    conformance::{self, Fixture},
    registry::{BuildContext, Registry},
};
use tether_core::{ids::ExternalId, Connector};
use tether_testkit::fakes::kubernetes::{FakeKubernetes, Fate};

const NS: &str = "conform";
const TOKEN: &str = "fake-token-k8s-conformance";

/// The fate of a driver pod from the application's last argument (in the pod's container args,
/// as Spark writes them: `driver --properties-file … spark-internal <args>`).
pub fn fate_by_last_arg(pod: &Value) -> Fate {
    let last = pod
        .pointer("/spec/containers/0/args")
        .and_then(Value::as_array)
        .and_then(|a| a.last())
        .and_then(Value::as_str)
        .unwrap_or_default();
    match last {
        "succeed" => Fate::Succeed("Pi is roughly 3.14\n".into()),
        "fail" => Fate::Fail {
            reason: "Error".into(),
            exit_code: 1,
            log: "Exception in thread \"main\" java.lang.IllegalArgumentException: no input\n"
                .into(),
        },
        "forever" => Fate::RunForever,
        _ => Fate::Driven,
    }
}

fn connector(kubeconfig: &std::path::Path, arg: &str) -> Arc<dyn Connector> {
    let home = spark_support::cluster()
        .spark_home
        .clone()
        .expect("SPARK_HOME in the cluster env");
    let text = format!(
        "[job]\nkind = \"spark-k8s\"\napp_resource = \"local:///opt/spark/examples/jars/spark-examples.jar\"\n\
         main_class = \"org.apache.spark.examples.SparkPi\"\nargs = [\"{arg}\"]\nimage = \"apache/spark:4.3.0\"\n\
         namespace = \"{NS}\"\nkubeconfig = \"{}\"\nspark_home = \"{}\"\nspark_version = \"4.3.0\"\nrequest_timeout = \"2s\"\n\
         [recovery]\nenabled = true\n",
        kubeconfig.display(),
        home.display()
    );
    match Registry::builtin().build("k8s.toml", &text, &BuildContext::default()) {
        Ok(b) => b.connector,
        Err(e) => panic!("{e}\n{text}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_against_the_fake_api_server_with_the_real_spark_submit() {
    let fake = FakeKubernetes::start(Some(TOKEN)).await.unwrap();
    fake.fate(fate_by_last_arg);
    let dir = tempfile::tempdir().unwrap();
    let kc = fake.write_kubeconfig(dir.path(), NS, TOKEN).unwrap();
    let fixture = Fixture {
        name: "spark-k8s".into(),
        succeeds: connector(&kc, "succeed"),
        fails: connector(&kc, "fail"),
        runs_long: connector(&kc, "forever"),
        unknown_id: ExternalId("tether-never-issued-driver".into()),
        timeout: Duration::from_secs(240),
        poll: Duration::from_millis(200),
    };
    let verdicts = conformance::run_all(&fixture)
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    for (check, v) in &verdicts {
        assert_eq!(*v, conformance::Verdict::Passed, "{check} was not run");
    }
    assert!(
        fake.unknown_requests().is_empty(),
        "requests the fake does not serve: {:?}",
        fake.unknown_requests()
    );
}
