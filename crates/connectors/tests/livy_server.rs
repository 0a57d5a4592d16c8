//! `scripts/livy-server` proven on the real test YARN: a Livy batch runs pyspark's spark-submit
//! into YARN cluster mode and ends `success` with the application Livy reports really FINISHED
//! and SUCCEEDED on the ResourceManager; and Livy refuses a second batch under a name it still
//! tracks (HTTP 400 "Duplicate session name"), the rule the Livy connector will lean on.
//!
//! Needs `TETHER_LIVY_ENV=<dir>/livy.env` (written by `scripts/livy-server start <dir>`;
//! `scripts/test` starts one on its YARN); skipped with a message without it.
mod livy_support;

use std::{
    path::PathBuf,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use livy_support::{http, livy_env_or_skip};

const T: Duration = Duration::from_secs(300);

fn alloc_batch(name: &str, spark_home: &str) -> serde_json::Value {
    let file: PathBuf = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/spark-job/python/alloc.py")
        .canonicalize()
        .expect("alloc.py");
    serde_json::json!({
        "file": file.display().to_string(),
        "args": ["64", "1"],
        "name": name,
        "driverMemory": "512m",
        "conf": {
            "spark.yarn.jars": format!("local:{spark_home}/jars/*"),
            "spark.yarn.maxAppAttempts": "1",
        },
    })
}

fn fresh_name(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("tether-test-{what}-{}-{nanos}", std::process::id())
}

#[test]
fn livy_batch_runs_on_yarn_and_the_rm_saw_it_succeed() {
    let Some(e) = livy_env_or_skip("livy_batch_runs_on_yarn_and_the_rm_saw_it_succeed") else {
        return;
    };
    let url = &e["LIVY_URL"];
    let name = fresh_name("livy");
    let (code, created) = http(
        "POST",
        &format!("{url}/batches"),
        Some(&alloc_batch(&name, &e["SPARK_HOME"])),
    );
    assert_eq!(code, 201, "POST /batches: {created}");
    let id = created["id"].as_u64().expect("batch id");
    let deadline = Instant::now() + T;
    let batch = loop {
        let (_, b) = http("GET", &format!("{url}/batches/{id}"), None);
        if matches!(
            b["state"].as_str(),
            Some("success" | "dead" | "killed" | "error")
        ) {
            break b;
        }
        assert!(Instant::now() < deadline, "batch {id} did not end: {b}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(batch["state"], "success", "{batch}");
    assert_eq!(batch["name"], name.as_str(), "{batch}");
    if e.get("LIVY_MASTER").map(String::as_str) == Some("yarn") {
        let app = batch["appId"].as_str().expect("Livy found the YARN app");
        let (code, a) = http(
            "GET",
            &format!("{}/ws/v1/cluster/apps/{app}", e["YARN_RM_URL"]),
            None,
        );
        assert_eq!(code, 200, "{a}");
        assert_eq!(a["app"]["state"], "FINISHED", "{a}");
        assert_eq!(a["app"]["finalStatus"], "SUCCEEDED", "{a}");
    }
}

#[test]
fn livy_refuses_a_second_batch_under_a_name_it_tracks() {
    let Some(e) = livy_env_or_skip("livy_refuses_a_second_batch_under_a_name_it_tracks") else {
        return;
    };
    let url = &e["LIVY_URL"];
    let name = fresh_name("dup");
    let body = alloc_batch(&name, &e["SPARK_HOME"]);
    let (code, first) = http("POST", &format!("{url}/batches"), Some(&body));
    assert_eq!(code, 201, "{first}");
    let (code, second) = http("POST", &format!("{url}/batches"), Some(&body));
    assert_eq!(code, 400, "{second}");
    assert!(
        second.to_string().contains("Duplicate session name"),
        "{second}"
    );
    // Leave nothing running behind the test.
    let id = first["id"].as_u64().expect("batch id");
    let (code, _) = http("DELETE", &format!("{url}/batches/{id}"), None);
    assert_eq!(code, 200);
}
