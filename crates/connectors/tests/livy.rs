//! The Livy connector offline: answers recorded from the real Livy 0.7.1 on the test YARN
//! (`fixtures/livy/`, see its README) replayed by the test kit's fake HTTP server, plus the
//! faults a real server will not produce on demand (429, 5xx, a lost answer, a refused
//! connection, an id reused by another batch).
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tether_connectors::registry::{BuildContext, Registry};
use tether_core::{
    connector::{CancelError, JobRef, LogCursor, LogStream, NoFence, SubmitError, SubmitRequest},
    ids::{ExternalId, Generation, RunKey, Tag},
    journal::{Shape, Submission},
    observe::{ActiveState, FailureClass, JobStatus, Lookup},
    Connector,
};
use tether_testkit::http::{FakeServer, Reply, Request};

const TAG: &str = "tether-k-0123456789abcdef-g1";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/livy/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A recorded batch view, renamed to our tag and renumbered.
fn batch(name: &str, id: u64, tag: &str) -> Value {
    let mut b = fixture(name);
    b["id"] = json!(id);
    b["name"] = json!(tag);
    b
}

fn connector(url: &str, extra: &str) -> Arc<dyn Connector> {
    let text = format!(
        "[job]\nkind = \"livy\"\nurl = \"{url}\"\nfile = \"local:/jobs/alloc.py\"\nrequest_timeout = \"2s\"\n{extra}"
    );
    match Registry::builtin().build("livy.toml", &text, &BuildContext::default()) {
        Ok(b) => b.connector,
        Err(e) => panic!("{e}\n{text}"),
    }
}

fn job(id: &str) -> JobRef {
    let tag = Tag::from_stored(TAG);
    let submission = Submission {
        tag,
        generation: Generation(1),
        shape: Shape::Normal,
    };
    JobRef {
        submission,
        external_id: ExternalId(id.into()),
    }
}

fn request() -> SubmitRequest {
    let key = RunKey::new("livy-test".to_string()).unwrap();
    SubmitRequest::new(key, job("x").submission, Arc::new(NoFence))
}

async fn serve(f: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> FakeServer {
    FakeServer::builder().fallback(f).start().await.unwrap()
}

fn posts(s: &FakeServer) -> usize {
    s.requests().iter().filter(|r| r.method == "POST").count()
}

#[tokio::test]
async fn states_map_to_queued_running_and_succeeded() {
    let state = Arc::new(Mutex::new("batch-starting.json"));
    let st = state.clone();
    let server = serve(move |r| match r.path.as_str() {
        "/batches/3" => Reply::json(&batch(&st.lock().unwrap(), 3, TAG)),
        _ => Reply::status(404),
    })
    .await;
    let c = connector(server.url(), "");
    let s = c.status(&job("3")).await;
    assert!(
        matches!(
            s,
            JobStatus::Active {
                state: ActiveState::Queued,
                ..
            }
        ),
        "{s:?}"
    );
    *state.lock().unwrap() = "batch-running.json";
    let s = c.status(&job("3")).await;
    assert!(
        matches!(
            s,
            JobStatus::Active {
                state: ActiveState::Running,
                ..
            }
        ),
        "{s:?}"
    );
    *state.lock().unwrap() = "batch-success.json";
    match c.status(&job("3")).await {
        JobStatus::Succeeded { result } => assert_eq!(result["batch_id"], "3", "{result}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn batch_id_zero_is_an_id() {
    let server = serve(|r| match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/batches") => {
            let mut b = batch("create.json", 0, TAG);
            b["name"] = r.json().unwrap()["name"].clone();
            Reply::json(&b)
        }
        ("GET", "/batches/0") => Reply::json(&batch("batch-running.json", 0, TAG)),
        _ => Reply::status(404),
    })
    .await;
    let c = connector(server.url(), "");
    let id = c.submit(&request()).await.unwrap();
    assert_eq!(id, ExternalId("0".into()));
    let s = c.status(&job(&id.0)).await;
    assert!(matches!(s, JobStatus::Active { .. }), "{s:?}");
    let body = server.requests()[0].json().unwrap();
    assert_eq!(body["name"], TAG);
    assert_eq!(body["conf"]["spark.tether.tag"], TAG);
    assert_eq!(body["conf"]["spark.yarn.tags"], TAG);
}

#[tokio::test]
async fn an_id_reused_by_another_batch_is_a_mismatch_and_is_never_deleted() {
    // Livy restarted without recovery: batch 0 is someone else's now.
    let server = serve(|r| match r.path.as_str() {
        "/batches/0" => Reply::json(&batch("batch-running.json", 0, "someone-elses-batch")),
        _ => Reply::status(404),
    })
    .await;
    let c = connector(server.url(), "");
    let s = c.status(&job("0")).await;
    assert!(
        matches!(&s, JobStatus::Mismatch { found } if found.contains("someone-elses-batch")),
        "{s:?}"
    );
    let e = c.cancel(&job("0")).await.unwrap_err();
    assert!(matches!(e, CancelError::Refused { .. }), "{e:?}");
    assert!(server.requests().iter().all(|r| r.method != "DELETE"));
}

#[tokio::test]
async fn missing_batch_is_not_found_and_transient_answers_are_unknown() {
    let missing = fixture("missing.json");
    let server = serve(move |r| match r.path.as_str() {
        "/batches/7" => Reply::text(404, missing.to_string()),
        "/batches/8" => Reply::too_many_requests(0),
        "/batches/9" => Reply::server_error(503),
        "/batches/10" => Reply::server_error(500),
        // Not Livy's 404 (a proxy, a wrong path): says nothing about the batch.
        "/batches/11" => Reply::text(404, "<html>Not Found</html>"),
        _ => Reply::status(404),
    })
    .await;
    let c = connector(server.url(), "");
    let s = c.status(&job("7")).await;
    assert!(matches!(s, JobStatus::NotFound { .. }), "{s:?}");
    for id in ["8", "9", "10", "11"] {
        let s = c.status(&job(id)).await;
        assert!(matches!(s, JobStatus::Unknown { .. }), "{id}: {s:?}");
    }
}

#[tokio::test]
async fn duplicate_name_at_submit_adopts_the_existing_batch() {
    let dup = fixture("duplicate.json");
    let server = serve(move |r| match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/batches") => Reply::text(400, dup.to_string()),
        ("GET", "/batches") => {
            let from: u64 = r.query_param("from").unwrap().parse().unwrap();
            // 250 batches; ours is number 230.
            let sessions: Vec<Value> = (from..(from + 100).min(250))
                .map(|i| {
                    let name = if i == 230 {
                        TAG.to_string()
                    } else {
                        format!("other-{i}")
                    };
                    batch("batch-running.json", i, &name)
                })
                .collect();
            Reply::json(&json!({ "from": from, "total": 250, "sessions": sessions }))
        }
        _ => Reply::status(404),
    })
    .await;
    let c = connector(server.url(), "");
    assert_eq!(
        c.submit(&request()).await.unwrap(),
        ExternalId("230".into())
    );
    assert_eq!(posts(&server), 1);
    let absent = c
        .find_by_tag()
        .unwrap()
        .find_by_tag(&Tag::from_stored("nobody"))
        .await;
    assert_eq!(absent, Lookup::Absent);
}

#[tokio::test]
async fn refused_at_submit_is_unavailable_and_a_lost_answer_is_ambiguous() {
    let mut server = serve(|_| Reply::Hang).await;
    let c = connector(server.url(), "");
    let e = c.submit(&request()).await.unwrap_err();
    assert!(matches!(e, SubmitError::Ambiguous { .. }), "{e:?}");
    assert_eq!(posts(&server), 1, "a create is sent once");
    let url = server.url().to_string();
    server.stop().await;
    let e = connector(&url, "").submit(&request()).await.unwrap_err();
    assert!(matches!(e, SubmitError::Unavailable { .. }), "{e:?}");
    let bad =
        serve(|_| Reply::text(400, r#"{"msg":"requirement failed: File is required."}"#)).await;
    let e = connector(bad.url(), "")
        .submit(&request())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SubmitError::Rejected { message } if message.contains("File is required")),
        "{e:?}"
    );
    let busy = serve(|_| {
        Reply::text(
            400,
            r#"{"msg":"Rejected, too many sessions are being created!"}"#,
        )
    })
    .await;
    let e = connector(busy.url(), "")
        .submit(&request())
        .await
        .unwrap_err();
    assert!(matches!(e, SubmitError::Unavailable { .. }), "{e:?}");
}

#[tokio::test]
async fn a_cancel_whose_answer_is_lost_then_a_404_reads_as_killed() {
    // Livy answers DELETE only once the YARN app is killed; here the answer is lost.
    let gone = Arc::new(Mutex::new(false));
    let g = gone.clone();
    let missing = fixture("missing.json");
    let server = serve(move |r| match (r.method.as_str(), r.path.as_str()) {
        ("DELETE", "/batches/6") => {
            *g.lock().unwrap() = true;
            Reply::Drop
        }
        ("GET", "/batches/6") if *g.lock().unwrap() => Reply::text(404, missing.to_string()),
        ("GET", "/batches/6") => Reply::json(&batch("batch-running.json", 6, TAG)),
        _ => Reply::status(404),
    })
    .await;
    let c = connector(server.url(), "");
    let e = c.cancel(&job("6")).await.unwrap_err();
    assert!(matches!(e, CancelError::Unavailable { .. }), "{e:?}");
    let s = c.status(&job("6")).await;
    assert!(
        matches!(
            s,
            JobStatus::Failed {
                class: FailureClass::Killed,
                ..
            }
        ),
        "{s:?}"
    );
    // Another process (no cancel of its own) sees the batch gone, not killed.
    let s = connector(server.url(), "").status(&job("6")).await;
    assert!(matches!(s, JobStatus::NotFound { .. }), "{s:?}");
}

#[tokio::test]
async fn dead_batch_with_yarn_memory_diagnostics_is_oom() {
    let server = serve(|r| match r.path.as_str() {
        "/batches/4" => {
            let mut b = batch("batch-running.json", 4, TAG);
            b["state"] = json!("dead");
            Reply::json(&b)
        }
        "/batches/4/log" => Reply::json(&json!({"id": 4, "from": 0, "total": 4, "log": [
            "stdout: ", "\nstderr: ", "\nYARN Diagnostics: ",
            "Container [pid=1,containerID=c_1] is running 10MB beyond the 'PHYSICAL' memory limit."
        ]})),
        _ => Reply::status(404),
    })
    .await;
    let s = connector(server.url(), "").status(&job("4")).await;
    assert!(
        matches!(
            s,
            JobStatus::Failed {
                class: FailureClass::Oom,
                ..
            }
        ),
        "{s:?}"
    );
}

#[tokio::test]
async fn logs_page_by_line_and_hold_the_moving_trailer_while_running() {
    let state = Arc::new(Mutex::new("running"));
    let st = state.clone();
    let lines = [
        "stdout: ",
        "a",
        "b",
        "\nstderr: ",
        "\nYARN Diagnostics: ",
        "diag",
    ];
    let server = serve(move |r| {
        if r.path == "/batches/5/state" {
            return Reply::json(&json!({"id": 5, "state": *st.lock().unwrap()}));
        }
        let from: usize = r.query_param("from").unwrap().parse().unwrap();
        let log: Vec<&str> = lines.iter().skip(from).copied().collect();
        Reply::json(&json!({"id": 5, "from": from, "total": lines.len(), "log": log}))
    })
    .await;
    let c = connector(server.url(), "");
    let logs = c.logs().unwrap();
    let chunk = logs
        .read_logs(&job("5"), LogStream::Stdout, &LogCursor::start(), 4096)
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&chunk.data), "a\nb\n");
    let again = logs
        .read_logs(&job("5"), LogStream::Stdout, &chunk.next, 4096)
        .await
        .unwrap();
    assert!(
        again.data.is_empty() && again.next == chunk.next,
        "{again:?}"
    );
    *state.lock().unwrap() = "success";
    let rest = logs
        .read_logs(&job("5"), LogStream::Stdout, &chunk.next, 4096)
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&rest.data),
        "stderr: \nYARN Diagnostics: \ndiag\n"
    );
}

#[test]
fn credentials_need_an_allowed_variable() {
    let text = "[job]\nkind = \"livy\"\nurl = \"https://livy:8998\"\nfile = \"local:/j.py\"\n\
                user = \"etl\"\npassword_env = \"PGPASSWORD\"\n";
    let e = Registry::builtin()
        .build("livy.toml", text, &BuildContext::default())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("password_env") && e.contains("TETHER_TOKEN_"),
        "{e}"
    );
}

#[tokio::test]
async fn basic_auth_password_is_sent_and_never_echoed() {
    std::env::set_var("TETHER_TOKEN_LIVY_TEST_PW", "pw-s3cr3t");
    let server = serve(|r| {
        let auth = r.header("authorization").unwrap_or_default();
        Reply::text(503, format!("echo pw-s3cr3t {auth}"))
    })
    .await;
    let c = connector(
        server.url(),
        "user = \"etl\"\npassword_env = \"TETHER_TOKEN_LIVY_TEST_PW\"\nallow_insecure_credentials = true\n",
    );
    let s = c.status(&job("1")).await;
    let text = format!("{s:?}");
    assert!(
        matches!(s, JobStatus::Unknown { .. }) && !text.contains("pw-s3cr3t"),
        "{text}"
    );
    assert!(server.requests()[0]
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));
}
