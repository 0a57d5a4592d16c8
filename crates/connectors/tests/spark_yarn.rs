//! The spark-yarn connector on the real YARN of `scripts/yarn-cluster` (real spark-submit, real
//! ResourceManager and NodeManager): the connector conformance suite, plus what YARN alone can
//! show (the tag and attempts YARN recorded, a kill through the RM).
//!
//! Needs `TETHER_YARN_ENV` (see `yarn_support`); skipped with a message without it.
#![cfg(feature = "spark-yarn")]
mod yarn_support;

use std::{sync::Arc, time::Duration};

use tether_connectors::{
    conformance::{self, Fixture},
    registry::{BuildContext, Registry},
};
use tether_core::{ids::ExternalId, Connector};
use yarn_support::{Yarn, T};

/// A connector for the test job with `args` (small: 512m driver and executor, one executor).
fn connector(y: &Yarn, args: &[&str], extra: &str) -> Arc<dyn Connector> {
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    let spec = format!(
        "[job]\nkind = \"spark-yarn\"\napp_resource = \"{jar}\"\nmain_class = \"dev.tether.testjob.TestJob\"\n\
         args = [{args}]\nhadoop_conf_dir = \"{conf}\"\nspark_home = \"{home}\"\n{extra}\n\
         [job.conf]\n\"spark.driver.memory\" = \"512m\"\n\"spark.executor.memory\" = \"512m\"\n\
         \"spark.executor.instances\" = \"1\"\n",
        jar = y.job_jar,
        args = args.join(", "),
        conf = y.hadoop_conf_dir,
        home = y.spark_home,
    );
    match Registry::builtin().build("yarn.toml", &spec, &BuildContext::default()) {
        Ok(b) => b.connector,
        Err(e) => panic!("{e}\n{spec}"),
    }
}

/// spark-submit needs a JVM: the cluster's.
fn java_env(y: &Yarn) {
    if std::env::var_os("JAVA_HOME").is_none() {
        std::env::set_var("JAVA_HOME", &y.java_home);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_suite_on_real_yarn() {
    let Some(y) = yarn_support::cluster_or_skip("conformance_suite_on_real_yarn") else {
        return;
    };
    java_env(&y);
    let fixture = Fixture {
        name: "yarn".into(),
        succeeds: connector(&y, &["pi", "2"], ""),
        fails: connector(&y, &["fail"], ""),
        // One partition holding 10 MB for an hour: a SparkContext (so the AM registers and the
        // app is RUNNING) and nothing else.
        runs_long: connector(&y, &["skew", "10", "10", "1", "3600000"], ""),
        unknown_id: ExternalId("application_1000000000000_9999".into()),
        timeout: T,
        poll: Duration::from_secs(2),
    };
    let verdicts = conformance::run_all(&fixture)
        .await
        .unwrap_or_else(|f| panic!("{f} (RM {})", y.rm_url));
    for (check, v) in &verdicts {
        assert_eq!(*v, conformance::Verdict::Passed, "{check} was not run");
    }
}
