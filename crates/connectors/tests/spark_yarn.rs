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

/// The driver's stdout and stderr come from its NodeManager, paged by the cursor.
#[tokio::test(flavor = "multi_thread")]
async fn driver_logs_are_read_from_the_nodemanager_in_pages() {
    use tether_core::{
        connector::{LogCursor, LogStream},
        journal::Shape,
    };
    let Some(y) =
        yarn_support::cluster_or_skip("driver_logs_are_read_from_the_nodemanager_in_pages")
    else {
        return;
    };
    java_env(&y);
    let c = connector(&y, &["pi", "2"], "");
    let req = conformance::fresh_request(
        &Fixture {
            name: "yarn".into(),
            succeeds: c.clone(),
            fails: c.clone(),
            runs_long: c.clone(),
            unknown_id: ExternalId(String::new()),
            timeout: T,
            poll: Duration::from_secs(2),
        },
        "logs",
        Shape::Normal,
    );
    let id = c.submit(&req).await.expect("submit");
    let job = tether_core::connector::JobRef {
        external_id: id,
        submission: req.submission.clone(),
    };
    let deadline = std::time::Instant::now() + T;
    while !c.status(&job).await.is_terminal() {
        assert!(std::time::Instant::now() < deadline, "never ended");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let logs = c.logs().expect("logs capability");
    let first = logs
        .read_logs(&job, LogStream::Stdout, &LogCursor::start(), 10)
        .await
        .expect("stdout");
    assert_eq!(first.data, b"tether tes", "the first page");
    let rest = logs
        .read_logs(&job, LogStream::Stdout, &first.next, 1 << 20)
        .await
        .expect("stdout, second page");
    let text = String::from_utf8_lossy(&rest.data);
    assert!(text.starts_with("t job: mode pi"), "{text}");
    assert!(text.contains("Pi is roughly"), "{text}");
    let err = logs
        .read_logs(&job, LogStream::Stderr, &LogCursor::start(), 1 << 20)
        .await
        .expect("stderr");
    assert!(
        String::from_utf8_lossy(&err.data).contains("ApplicationMaster"),
        "the AM's stderr"
    );
}
