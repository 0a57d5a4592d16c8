//! The spark-standalone connector's status mapping against **recorded** answers of a real Spark
//! 4.3 standalone cluster (`tests/fixtures/spark_standalone/`, re-recorded by
//! `scripts/record-spark-fixtures`), replayed offline by the test kit's fake HTTP server: the
//! REST status answer, the master's `/json/` and the driver's worker log pages, byte for byte.
//! Only the connector's public API is used (`status`, find by tag), so the mapping is pinned
//! whatever its internals: a FAILED driver reported as succeeded fails here.
#![cfg(feature = "spark-standalone")]

use std::{collections::HashMap, path::PathBuf};

use tether_connectors::registry::{BuildContext, Registry};
use tether_core::{
    connector::JobRef,
    ids::{ExternalId, Generation, Tag},
    journal::{Shape, Submission},
    observe::{ActiveState, FailureClass, JobStatus, Lookup},
    Connector,
};
use tether_testkit::http::{FakeServer, Reply, Request};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spark_standalone")
}

fn read(case: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(dir().join(case).join(file)).ok()
}

/// What a fixture case recorded about its driver.
struct Meta {
    driver_id: String,
    tag: String,
    worker_ui: String,
}

fn meta(case: &str) -> Meta {
    let m: serde_json::Value = serde_json::from_str(&read(case, "meta.json").unwrap()).unwrap();
    let s = |k: &str| m[k].as_str().unwrap_or_default().to_string();
    Meta {
        driver_id: s("driver_id"),
        tag: s("tag"),
        worker_ui: s("worker_ui"),
    }
}

/// Every recorded log page, by driver id and log type: a master's `/json/` lists the drivers of
/// earlier cases too, and find by tag reads their logs.
fn log_pages() -> HashMap<(String, String), String> {
    let mut pages = HashMap::new();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let case = entry.unwrap().file_name().to_string_lossy().into_owned();
        if read(&case, "meta.json").is_none() {
            continue;
        }
        let m = meta(&case);
        for t in ["stderr", "stdout"] {
            if let Some(page) = read(&case, &format!("{t}.txt")) {
                pages.insert((m.driver_id.clone(), t.to_string()), page);
            }
        }
    }
    pages
}

/// A fake master (REST and web UI) and worker web UI in one server, replaying case `case`.
async fn replay(case: &str) -> FakeServer {
    replay_with(case, |m| m).await
}

/// [`replay`], with the master's `/json/` changed by `edit` first.
async fn replay_with(case: &str, edit: impl FnOnce(String) -> String) -> FakeServer {
    let status = read(case, "status.json").unwrap();
    let master = edit(read(case, "master.json").unwrap());
    let recorded_ui = meta(case).worker_ui;
    let pages = log_pages();
    let json = |body: String| {
        Reply::text(200, body).header("content-type", "application/json;charset=utf-8")
    };
    FakeServer::builder()
        .fallback(move |r: &Request| {
            if r.path.starts_with("/v1/submissions/status/") {
                json(status.clone())
            } else if r.path.starts_with("/json") {
                // The worker's web UI is this server now.
                let here = format!("http://{}", r.header("host").unwrap_or_default());
                let body = if recorded_ui.is_empty() {
                    master.clone()
                } else {
                    master.replace(&recorded_ui, &here)
                };
                json(body)
            } else if r.path == "/log/" {
                let key = (
                    r.query_param("driverId").unwrap_or_default(),
                    r.query_param("logType").unwrap_or_default(),
                );
                match pages.get(&key) {
                    Some(page) => Reply::text(200, page.clone()),
                    None => Reply::text(404, "no such log in the fixtures"),
                }
            } else {
                Reply::text(404, format!("not recorded: {}", r.line()))
            }
        })
        .start()
        .await
        .unwrap()
}

fn connector(url: &str, args: &[&str]) -> std::sync::Arc<dyn Connector> {
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    let text = format!(
        "[job]\nkind = \"spark-standalone\"\nmaster_rest = \"{url}\"\nmaster_ui = \"{url}\"\n\
         app_resource = \"file:/jobs/tether-test-job.jar\"\nmain_class = \"dev.tether.testjob.TestJob\"\n\
         args = [{}]\nrequest_timeout = \"10s\"\n",
        args.join(", ")
    );
    Registry::builtin()
        .build("spark.toml", &text, &BuildContext::default())
        .unwrap_or_else(|e| panic!("spec rejected: {e}\n{text}"))
        .connector
}

fn job(m: &Meta) -> JobRef {
    JobRef {
        external_id: ExternalId(m.driver_id.clone()),
        submission: Submission {
            generation: Generation(1),
            tag: Tag::from_stored(&m.tag),
            shape: Shape::Normal,
        },
    }
}

/// The connector's `status()` of case `case`'s driver, replayed.
async fn status_of(case: &str, args: &[&str]) -> JobStatus {
    let srv = replay(case).await;
    let m = meta(case);
    let st = connector(srv.url(), args).status(&job(&m)).await;
    assert!(srv.count() > 0, "{case}: the connector asked nothing");
    st
}

/// Find by tag of case `case`'s driver, replayed.
async fn find(case: &str, args: &[&str]) -> Lookup {
    find_in(replay(case).await, case, args).await
}

async fn find_in(srv: FakeServer, case: &str, args: &[&str]) -> Lookup {
    let m = meta(case);
    let c = connector(srv.url(), args);
    let finder = c.find_by_tag().expect("spark-standalone finds by tag");
    finder.find_by_tag(&Tag::from_stored(&m.tag)).await
}

#[tokio::test]
async fn queued_and_running_drivers_are_active() {
    match status_of("submitted", &["sleep", "1"]).await {
        JobStatus::Active { state, detail } => {
            assert_eq!(state, ActiveState::Queued, "{detail}");
            assert!(detail.starts_with("SUBMITTED"), "{detail}")
        }
        st => panic!("SUBMITTED: {st:?}"),
    }
    match status_of("running", &["sleep", "120"]).await {
        JobStatus::Active { state, detail } => {
            assert_eq!(state, ActiveState::Running);
            assert_eq!(detail, "RUNNING")
        }
        st => panic!("RUNNING: {st:?}"),
    }
}

#[tokio::test]
async fn a_finished_driver_succeeded() {
    let id = meta("finished").driver_id;
    match status_of("finished", &["sleep", "1"]).await {
        JobStatus::Succeeded { result } => {
            assert_eq!(result["driver_id"], id.as_str(), "{result}");
            assert_eq!(result["driver_state"], "FINISHED", "{result}");
        }
        st => panic!("FINISHED: {st:?}"),
    }
}

#[tokio::test]
async fn a_failed_driver_failed_with_its_cause() {
    match status_of("failed", &["fail"]).await {
        JobStatus::Failed { class, message } => {
            assert_eq!(class, FailureClass::Other, "{message}");
            assert!(!message.is_empty());
        }
        st => panic!("FAILED: {st:?}"),
    }
}

#[tokio::test]
async fn killed_drivers_failed_as_killed() {
    for case in ["killed", "killed_queued"] {
        match status_of(case, &["sleep", "120"]).await {
            JobStatus::Failed { class, message } => {
                assert_eq!(class, FailureClass::Killed, "{case}: {message}")
            }
            st => panic!("{case}: {st:?}"),
        }
    }
}

#[tokio::test]
async fn a_driver_whose_jar_is_missing_is_rejected() {
    match status_of("error", &["sleep", "1"]).await {
        JobStatus::Failed { class, message } => {
            assert_eq!(class, FailureClass::Rejected, "{message}");
            assert!(message.contains("NoSuchFileException"), "{message}");
        }
        st => panic!("ERROR: {st:?}"),
    }
}

#[tokio::test]
async fn an_id_the_master_never_issued_is_not_found() {
    match status_of("unknown", &["pi"]).await {
        JobStatus::NotFound { detail } => {
            assert!(detail.contains("driver-20000101000000-9999"), "{detail}")
        }
        st => panic!("unknown id: {st:?}"),
    }
}

#[tokio::test]
async fn find_by_tag_finds_started_drivers_by_the_tag_in_their_launch_command() {
    for (case, args) in [
        ("running", &["sleep", "120"][..]),
        ("finished", &["sleep", "1"][..]),
        ("failed", &["fail"][..]),
    ] {
        let id = meta(case).driver_id;
        match find(case, args).await {
            Lookup::Found { external_id } => assert_eq!(external_id.0, id, "{case}"),
            l => panic!("{case}: {l:?}"),
        }
    }
}

/// A master listing 40,000 more drivers (another application's, ~10 MiB of `/json/`) is still
/// read: the listing's cap was 8 MiB, like a REST answer's, and with it every find by tag (and
/// every bulk status) on such a master failed as unknown, for ever.
#[tokio::test]
async fn a_master_listing_tens_of_thousands_of_drivers_is_read() {
    let crowd = |master: String| {
        let mut m: serde_json::Value = serde_json::from_str(&master).unwrap();
        let drivers = m["activedrivers"].as_array_mut().unwrap();
        for i in 0..40_000 {
            drivers.push(serde_json::json!({
                "id": format!("driver-20261201000000-{i:05}"), "starttime": "1796146875720",
                "state": "RUNNING", "cores": 1, "memory": 450, "resources": {},
                "submitdate": "Tue Dec 01 17:41:15 UTC 2026",
                "worker": "worker-20261201173036-127.0.0.1-40023",
                "mainclass": "org.example.SomeoneElsesJob"
            }));
        }
        let text = m.to_string();
        assert!(text.len() > 8 << 20, "{} bytes", text.len());
        text
    };
    let id = meta("running").driver_id;
    let srv = replay_with("running", crowd).await;
    match find_in(srv, "running", &["sleep", "120"]).await {
        Lookup::Found { external_id } => assert_eq!(external_id.0, id),
        l => panic!("{l:?}"),
    }
}
