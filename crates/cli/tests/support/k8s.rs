//! What the CLI's Spark-on-Kubernetes tests share: the test kit's fake API server (a fake: no
//! Kubernetes runs here) on a runtime of its own, a kubeconfig for it, a `spark-k8s` spec
//! running SparkPi through the real spark-submit, and the run's tags. Included with
//! `#[path = "support/k8s.rs"] mod k8s;` next to `mod common;` and `mod spark_support;`.
#![allow(dead_code)]

use serde_json::Value;
use tether_core::ids::{Generation, RunKey, Tag};
use tether_testkit::fakes::kubernetes::{FakeKubernetes, Fate};

use super::common::Env;
use super::spark_support::cluster;

/// The namespace every test runs in.
pub const NS: &str = "etl";

/// The fake API server (the test itself is synchronous).
pub struct K8s {
    pub fake: FakeKubernetes,
    pub kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

impl K8s {
    /// The fake, accepting `token`, whose driver pods end as `fate` says from their spec.
    pub fn start(token: &str, fate: impl Fn(&Value) -> Fate + Send + Sync + 'static) -> K8s {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let fake = rt.block_on(FakeKubernetes::start(Some(token))).unwrap();
        fake.fate(fate);
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = fake.write_kubeconfig(dir.path(), NS, token).unwrap();
        K8s {
            fake,
            kubeconfig,
            _dir: dir,
            _rt: rt,
        }
    }

    /// A spec running SparkPi with `arg` as its last argument: `top` above `[job]`, `job` at
    /// the end of it.
    pub fn spec_with(&self, arg: &str, top: &str, job: &str) -> String {
        let home = cluster()
            .spark_home
            .clone()
            .expect("SPARK_HOME in the cluster env");
        format!(
            "poll_interval = \"1s\"\nbackoff = \"1s\"\n{top}\n[job]\nkind = \"spark-k8s\"\n\
             app_resource = \"local:///opt/spark/examples/jars/spark-examples.jar\"\n\
             main_class = \"org.apache.spark.examples.SparkPi\"\nargs = [\"{arg}\"]\n\
             image = \"apache/spark:4.3.0\"\nnamespace = \"{NS}\"\nkubeconfig = \"{}\"\n\
             spark_home = \"{}\"\nrequest_timeout = \"2s\"\n{job}\n",
            self.kubeconfig.display(),
            home.display()
        )
    }
}

/// The last argument of a driver pod's container.
pub fn last_arg(pod: &Value) -> Option<&str> {
    pod.pointer("/spec/containers/0/args")
        .and_then(Value::as_array)
        .and_then(|a| a.last())
        .and_then(Value::as_str)
}

/// The tag of generation `g` of run `key` in `env`'s store.
pub fn tag(env: &Env, key: &str, g: u32) -> Tag {
    let store = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(tether_store::open(&env.state))
        .expect("open the test store");
    Tag::derive(store.store_id(), &RunKey::new(key).unwrap(), Generation(g))
}
