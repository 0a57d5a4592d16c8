//! `scripts/yarn-cluster` proven with real Spark applications on its real ResourceManager and
//! NodeManager: a Spark job ends FINISHED/SUCCEEDED exactly once, and a driver that allocates
//! past its container is killed by the NodeManager with exit -104 (YARN's physical-memory kill,
//! which the Spark-on-YARN connector must classify as an OOM).
//!
//! Needs `TETHER_YARN_ENV` (see `yarn_support`); skipped with a message without it.
mod yarn_support;

use yarn_support::{cluster_or_skip, fresh_tag, repo_root};

fn alloc_py() -> String {
    repo_root()
        .join("tests/spark-job/python/alloc.py")
        .display()
        .to_string()
}

#[test]
fn spark_pi_on_yarn_finishes_succeeded_exactly_once() {
    let Some(y) = cluster_or_skip("spark_pi_on_yarn_finishes_succeeded_exactly_once") else {
        return;
    };
    let tag = fresh_tag("pi");
    y.submit(
        &tag,
        Some("dev.tether.testjob.TestJob"),
        &y.job_jar,
        &["pi", "2"],
    );
    let apps = y.wait_ended(&tag);
    assert_eq!(apps.len(), 1, "one submit, one YARN app: {apps:?}");
    let a = &apps[0];
    assert_eq!(a["state"], "FINISHED", "{a}");
    assert_eq!(a["finalStatus"], "SUCCEEDED", "{a}");
    assert_eq!(a["applicationType"], "SPARK", "{a}");
    assert!(
        a["applicationTags"].as_str().unwrap_or("").contains(&tag),
        "the app carries our tag: {a}"
    );
}

#[test]
fn pyspark_driver_past_its_container_is_killed_by_the_nodemanager_with_104() {
    let Some(y) =
        cluster_or_skip("pyspark_driver_past_its_container_is_killed_by_the_nodemanager_with_104")
    else {
        return;
    };
    let tag = fresh_tag("oom");
    // 512m driver + 384m overhead = a 1 GB container; the Python driver touches 1.5 GB.
    y.submit(&tag, None, &alloc_py(), &["1500", "60"]);
    let apps = y.wait_ended(&tag);
    assert_eq!(apps.len(), 1, "{apps:?}");
    let a = &apps[0];
    assert_eq!(a["finalStatus"], "FAILED", "{a}");
    let diag = a["diagnostics"].as_str().unwrap_or("");
    assert!(
        diag.contains("exitCode: -104"),
        "NM pmem kill expected: {diag}"
    );
    assert!(
        diag.contains("beyond the 'PHYSICAL' memory limit"),
        "NM pmem kill expected: {diag}"
    );
}

/// The control for the test above: the same Python driver under its limit succeeds, so the
/// -104 there comes from the memory and not from a broken PySpark-on-YARN path.
#[test]
fn pyspark_driver_within_its_container_succeeds() {
    let Some(y) = cluster_or_skip("pyspark_driver_within_its_container_succeeds") else {
        return;
    };
    let tag = fresh_tag("fits");
    y.submit(&tag, None, &alloc_py(), &["64", "1"]);
    let apps = y.wait_ended(&tag);
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(apps[0]["finalStatus"], "SUCCEEDED", "{}", apps[0]);
}
