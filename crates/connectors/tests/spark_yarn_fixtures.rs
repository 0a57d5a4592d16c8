//! The spark-yarn connector's status mapping and find-by-tag against **recorded** answers of a
//! real YARN ResourceManager (`tests/fixtures/spark_yarn/`, re-recorded by
//! `scripts/record-yarn-fixtures`), replayed offline by the test kit's fake HTTP server byte for
//! byte. Only the connector's public API is used, so the mapping is pinned whatever its
//! internals: a FAILED application reported as succeeded fails here.
#![cfg(feature = "spark-yarn")]

use std::path::PathBuf;

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
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spark_yarn")
}

fn read(case: &str, file: &str) -> String {
    std::fs::read_to_string(dir().join(case).join(file))
        .unwrap_or_else(|e| panic!("fixture {case}/{file}: {e}"))
}

/// (application id, tag) a case recorded.
fn meta(case: &str) -> (String, String) {
    let m: serde_json::Value = serde_json::from_str(&read(case, "meta.json")).unwrap();
    (
        m["app_id"].as_str().unwrap().into(),
        m["tag"].as_str().unwrap().into(),
    )
}

/// A fake RM replaying case `case`: its app answer (404 for `not_found`) and its tag search.
async fn replay(case: &str) -> FakeServer {
    let app = read(case, "app.json");
    let apps = read(case, "apps.json");
    let app_status = if case == "not_found" { 404 } else { 200 };
    FakeServer::builder()
        .fallback(move |r: &Request| {
            let body = if r.path.starts_with("/ws/v1/cluster/apps/") {
                (app_status, app.clone())
            } else if r.path == "/ws/v1/cluster/apps" {
                (200, apps.clone())
            } else {
                (404, String::new())
            };
            Reply::text(body.0, body.1).header("content-type", "application/json;charset=utf-8")
        })
        .start()
        .await
        .unwrap()
}

fn connector(rm_url: &str) -> std::sync::Arc<dyn Connector> {
    let spec = format!(
        "[job]\nkind = \"spark-yarn\"\napp_resource = \"/jobs/etl.jar\"\n\
         main_class = \"com.example.Missing\"\nrm_url = \"{rm_url}\"\n\
         request_timeout = \"2s\"\n"
    );
    match Registry::builtin().build("s.toml", &spec, &BuildContext::default()) {
        Ok(b) => b.connector,
        Err(e) => panic!("{e}\n{spec}"),
    }
}

fn job(id: &str, tag: &str) -> JobRef {
    JobRef {
        external_id: ExternalId(id.into()),
        submission: Submission {
            generation: Generation(1),
            tag: Tag::from_stored(tag),
            shape: Shape::Normal,
        },
    }
}

/// The status of case `case`'s application, and find-by-tag finding it.
async fn status(case: &str) -> JobStatus {
    let server = replay(case).await;
    let c = connector(server.url());
    let (id, tag) = meta(case);
    let found = c
        .find_by_tag()
        .unwrap()
        .find_by_tag(&Tag::from_stored(&*tag))
        .await;
    assert_eq!(
        found,
        Lookup::Found {
            external_id: ExternalId(id.clone())
        },
        "{case}"
    );
    let other = c.status(&job(&id, "tether-someone-else-g1")).await;
    assert!(
        matches!(other, JobStatus::Mismatch { .. }),
        "{case}: {other:?}"
    );
    c.status(&job(&id, &tag)).await
}

#[tokio::test]
async fn accepted_is_queued_and_running_is_running() {
    let st = status("accepted").await;
    assert!(
        matches!(
            st,
            JobStatus::Active {
                state: ActiveState::Queued,
                ..
            }
        ),
        "{st:?}"
    );
    let st = status("running").await;
    assert!(
        matches!(
            st,
            JobStatus::Active {
                state: ActiveState::Running,
                ..
            }
        ),
        "{st:?}"
    );
}

#[tokio::test]
async fn finished_succeeded_is_succeeded() {
    let st = status("finished").await;
    assert!(matches!(st, JobStatus::Succeeded { .. }), "{st:?}");
}

#[tokio::test]
async fn killed_is_killed() {
    let st = status("killed").await;
    assert!(
        matches!(
            st,
            JobStatus::Failed {
                class: FailureClass::Killed,
                ..
            }
        ),
        "{st:?}"
    );
}

#[tokio::test]
async fn failed_cases_are_classified() {
    for (case, want) in [
        ("failed", FailureClass::Other),
        ("no_class", FailureClass::Rejected),
        ("oom", FailureClass::Oom),
    ] {
        if !dir().join(case).exists() {
            panic!("fixture {case} missing: run scripts/record-yarn-fixtures");
        }
        match status(case).await {
            JobStatus::Failed { class, message } => {
                assert_eq!(class, want, "{case}: {message}");
                assert!(!message.contains('\n'), "one line: {message}");
                if case == "failed" {
                    assert!(message.contains("failing on purpose"), "{message}");
                }
                if want == FailureClass::Oom {
                    assert!(
                        message.contains("-104") && message.contains("driver"),
                        "{message}"
                    );
                }
            }
            other => panic!("{case}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn unknown_app_is_not_found_and_its_tag_absent() {
    let server = replay("not_found").await;
    let c = connector(server.url());
    let (id, tag) = meta("not_found");
    let st = c.status(&job(&id, &tag)).await;
    assert!(matches!(st, JobStatus::NotFound { .. }), "{st:?}");
    let found = c
        .find_by_tag()
        .unwrap()
        .find_by_tag(&Tag::from_stored(&*tag))
        .await;
    assert_eq!(found, Lookup::Absent);
}

#[tokio::test]
async fn rm_unreachable_or_failing_is_unknown() {
    // A port nothing listens on: bound, then closed.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let c = connector(&format!("http://{addr}"));
    let st = c.status(&job("application_1_0001", "t")).await;
    assert!(matches!(st, JobStatus::Unknown { .. }), "{st:?}");
    let found = c
        .find_by_tag()
        .unwrap()
        .find_by_tag(&Tag::from_stored("t"))
        .await;
    assert!(matches!(found, Lookup::Unknown { .. }), "{found:?}");
    let server = FakeServer::builder()
        .fallback(|_: &Request| Reply::text(500, "boom"))
        .start()
        .await
        .unwrap();
    let c = connector(server.url());
    let st = c.status(&job("application_1_0001", "t")).await;
    assert!(matches!(st, JobStatus::Unknown { .. }), "{st:?}");
}
