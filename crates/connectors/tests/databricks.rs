//! The databricks connector against the fake Databricks workspace of the test kit
//! (`tether_testkit::fakes::databricks`: Jobs API 2.2 semantics, HTTPS with a CA made here).
//! There is no local Databricks emulator; the fake is documented as one.
mod databricks_support;

use std::{sync::Arc, time::Duration};

use databricks_support::*;
use tether_connectors::{
    conformance::{self, Fixture},
    registry::{BuildContext, Built, Registry},
};
use tether_core::{
    connector::{FenceHandle, JobRef, LogCursor, LogStream, NoFence, SubmitError, SubmitRequest},
    ids::{ExternalId, Generation, RunKey, StoreId, Tag},
    journal::{Shape, Submission},
    observe::{FailureClass, JobStatus},
    Connector,
};
use tether_testkit::fakes::databricks::{FakeDatabricks, Fault, Life, Route};

fn build(text: &str) -> Built {
    set_credentials();
    Registry::builtin()
        .build("dbx.toml", text, &BuildContext::default())
        .unwrap_or_else(|e| panic!("spec rejected: {e}\n{text}"))
}

struct Ws {
    fake: FakeDatabricks,
    _dir: tempfile::TempDir,
    ca: String,
}

async fn ws() -> Ws {
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_file(&fake, dir.path());
    Ws {
        fake,
        _dir: dir,
        ca,
    }
}

impl Ws {
    fn connector(&self, cred: Cred, file: &str) -> Arc<dyn Connector> {
        build(&spec(self.fake.url(), &self.ca, cred, file, "")).connector
    }
}

fn request(name: &str, generation: u32, shape: Shape) -> SubmitRequest {
    let key = RunKey::new(name).unwrap();
    let generation = Generation(generation);
    let tag = Tag::derive(&StoreId::new("dbxtest0").unwrap(), &key, generation);
    let submission = Submission {
        generation,
        tag,
        shape,
    };
    SubmitRequest {
        key,
        submission,
        fence: FenceHandle(Arc::new(NoFence)),
    }
}

fn job(req: &SubmitRequest, id: &ExternalId) -> JobRef {
    JobRef {
        external_id: id.clone(),
        submission: req.submission.clone(),
    }
}

async fn until_terminal(c: &dyn Connector, j: &JobRef) -> JobStatus {
    for _ in 0..50 {
        let st = c.status(j).await;
        if st.is_terminal() {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} never ended", j.external_id)
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_against_the_fake_workspace() {
    let w = ws().await;
    let fixture = Fixture {
        name: "databricks".into(),
        succeeds: w.connector(Cred::Pat, "succeeds.py"),
        fails: w.connector(Cred::Pat, "fails.py"),
        runs_long: w.connector(Cred::OAuth, "long.py"),
        unknown_id: ExternalId("999999999".into()),
        timeout: Duration::from_secs(20),
        poll: Duration::from_millis(20),
    };
    let verdicts = conformance::run_all(&fixture)
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    for (check, v) in verdicts {
        let skipped_ok = check == "find_by_tag_finds_the_job";
        assert!(
            v == conformance::Verdict::Passed || skipped_ok,
            "{check}: {v:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_submit_answer_is_healed_by_the_same_token_into_one_run() {
    let w = ws().await;
    let c = w.connector(Cred::Pat, "driven.py");
    let req = request("lost-answer", 1, Shape::Normal);
    w.fake.inject(Route::Submit, Fault::DropAfter);
    let first = c.submit(&req).await.unwrap_err();
    assert!(matches!(first, SubmitError::Ambiguous { .. }), "{first:?}");
    assert_eq!(
        w.fake.runs_created(),
        1,
        "the dropped submit was carried out"
    );
    assert!(c.idempotent_submit() && c.find_by_tag().is_none());
    let id = c.submit(&req).await.unwrap();
    assert_eq!(
        w.fake.runs_created(),
        1,
        "same token: the same run, not a second one"
    );
    let run = w.fake.run(id.0.parse().unwrap()).unwrap();
    assert_eq!(run.token.as_deref(), Some(req.submission.tag.as_str()));
    assert!(
        run.run_name
            .ends_with(&format!(" [{}]", req.submission.tag)),
        "{}",
        run.run_name
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_waited_out_with_the_same_token_and_never_make_a_second_run() {
    let w = ws().await;
    let c = w.connector(Cred::Pat, "driven.py");
    let req = request("rate-limited", 1, Shape::Normal);
    w.fake.inject(Route::Submit, Fault::TooMany(1));
    w.fake.inject(Route::Submit, Fault::Status(503));
    let started = std::time::Instant::now();
    let id = c.submit(&req).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_eq!((w.fake.count(Route::Submit), w.fake.runs_created()), (3, 1));
    let tokens: Vec<_> = w
        .fake
        .server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("runs/submit"))
        .map(|r| r.json().unwrap()["idempotency_token"].clone())
        .collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    // A 429 on a status call longer than the retry budget is unknown, quoting the wait.
    w.fake.inject(Route::Get, Fault::TooMany(60));
    let st = c.status(&job(&req, &id)).await;
    assert!(
        matches!(&st, JobStatus::Unknown { reason } if reason.contains("429") && reason.contains("60s")),
        "{st:?}"
    );
    assert_eq!(w.fake.runs_created(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_generation_after_a_failed_run_is_a_new_run_not_the_failed_one() {
    let w = ws().await;
    let c = w.connector(Cred::Pat, "driven.py");
    let g1 = request("airflow-trap", 1, Shape::Normal);
    let id1 = c.submit(&g1).await.unwrap();
    w.fake
        .finish(id1.0.parse().unwrap(), "FAILED", "Task main failed", "");
    let st = c.status(&job(&g1, &id1)).await;
    assert!(
        matches!(&st, JobStatus::Failed { class: FailureClass::Other, message } if message.contains("Task main failed")),
        "{st:?}"
    );
    let g2 = request("airflow-trap", 2, Shape::Normal);
    let id2 = c.submit(&g2).await.unwrap();
    assert_ne!(id1, id2, "generation 2 has its own token, so its own run");
    assert_eq!(w.fake.runs_created(), 2);
    let st = c.status(&job(&g2, &id2)).await;
    assert!(matches!(st, JobStatus::Active { .. }), "{st:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_maps_queued_running_success_with_output_and_logs() {
    let w = ws().await;
    let c = w.connector(Cred::Pat, "driven.py");
    let req = request("life", 1, Shape::Normal);
    let id = c.submit(&req).await.unwrap();
    let j = job(&req, &id);
    let n: u64 = id.0.parse().unwrap();
    for (life, want) in [
        (Life::Queued, "queued"),
        (Life::Blocked, "queued"),
        (Life::Running, "running"),
    ] {
        w.fake.set_state(n, life);
        let label = c.status(&j).await.label();
        assert!(
            label.starts_with(want) && label.contains("#job/runs/"),
            "{life:?}: {label}"
        );
    }
    w.fake.finish(n, "SUCCESS", "", "line 1\nresult 42");
    let JobStatus::Succeeded { result } = c.status(&j).await else {
        panic!("not succeeded")
    };
    assert_eq!(
        result["tasks"][0]["notebook_output"]["result"], "result 42",
        "{result}"
    );
    let logs = c
        .logs()
        .unwrap()
        .read_logs(&j, LogStream::Stdout, &LogCursor::start(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(logs.data).unwrap();
    assert!(text.contains("line 1\nresult 42"), "{text}");
    let again = c
        .logs()
        .unwrap()
        .read_logs(&j, LogStream::Stdout, &logs.next, 1 << 20)
        .await
        .unwrap();
    assert!(again.data.is_empty() && again.next == logs.next);
    let other = request("someone-else", 1, Shape::Normal);
    assert!(matches!(
        c.status(&job(&other, &id)).await,
        JobStatus::Mismatch { .. }
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_run_is_not_found_and_its_token_is_lost_saying_so() {
    let w = ws().await;
    let c = w.connector(Cred::Pat, "driven.py");
    let req = request("deleted", 1, Shape::Normal);
    let id = c.submit(&req).await.unwrap();
    w.fake.delete(id.0.parse().unwrap());
    assert!(matches!(
        c.status(&job(&req, &id)).await,
        JobStatus::NotFound { .. }
    ));
    let e = c.submit(&req).await.unwrap_err();
    assert!(
        matches!(&e, SubmitError::Lost { message } if message.contains("deleted") && message.contains(req.submission.tag.as_str())),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn driver_oom_is_classified_and_the_recovery_shape_reshapes_the_new_cluster() {
    let w = ws().await;
    let c = w.connector(Cred::Pat, "oom.py");
    let req = request("oom", 1, Shape::Normal);
    let id = c.submit(&req).await.unwrap();
    let st = until_terminal(&*c, &job(&req, &id)).await;
    assert!(
        matches!(
            &st,
            JobStatus::Failed {
                class: FailureClass::Oom,
                ..
            }
        ),
        "{st:?}"
    );
    assert!(c
        .recovery()
        .unwrap()
        .describe()
        .contains("spark.task.cpus = 4"));
    let rec = request("oom", 2, Shape::Recovery);
    let id2 = c.submit(&rec).await.unwrap();
    let body = w.fake.run(id2.0.parse().unwrap()).unwrap().request;
    let cluster = &body["tasks"][0]["new_cluster"];
    assert_eq!(
        (
            cluster["spark_conf"]["spark.task.cpus"].as_str(),
            cluster["node_type_id"].as_str()
        ),
        (Some("4"), Some("i3.2xlarge")),
        "{body}"
    );
    let normal = w.fake.run(id.0.parse().unwrap()).unwrap().request;
    assert_eq!(
        normal["tasks"][0]["new_cluster"]["node_type_id"], "i3.xlarge",
        "normal shape untouched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_tokens_are_refreshed_during_a_long_run() {
    let w = ws().await;
    w.fake.set_token_lifetime(Duration::from_secs(1));
    let c = w.connector(Cred::OAuth, "long.py");
    let req = request("oauth-long", 1, Shape::Normal);
    let id = c.submit(&req).await.unwrap();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let st = c.status(&job(&req, &id)).await;
        assert!(matches!(st, JobStatus::Active { .. }), "{st:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        w.fake.tokens_issued() >= 3,
        "refreshed before expiry: {}",
        w.fake.tokens_issued()
    );
    c.cancel(&job(&req, &id)).await.unwrap();
    let st = until_terminal(&*c, &job(&req, &id)).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn specs_need_https_and_allowed_credential_variables() {
    set_credentials();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, tether_testkit::http::TestCa::new(false).ca_pem).unwrap();
    let ca = ca.display().to_string();
    let try_build = |t: String| {
        Registry::builtin()
            .build("dbx.toml", &t, &BuildContext::default())
            .err()
            .map(|e| e.to_string())
    };
    let plain = try_build(spec("http://127.0.0.1:1", &ca, Cred::Pat, "a.py", "")).unwrap();
    assert!(plain.contains("https"), "{plain}");
    let other =
        spec("https://127.0.0.1:1", &ca, Cred::Pat, "a.py", "").replace(PAT_ENV, "PGPASSWORD");
    let e = try_build(other).unwrap();
    assert!(
        e.contains("may not be read") && e.contains("TETHER_TOKEN_"),
        "{e}"
    );
    let both = spec("https://127.0.0.1:1", &ca, Cred::Pat, "a.py", "")
        .replace("[[job.tasks]]", "job_id = 5\n[[job.tasks]]");
    assert!(try_build(both).unwrap().contains("not both"));
    assert!(try_build(spec("https://127.0.0.1:1", &ca, Cred::Pat, "a.py", "")).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_never_appears_in_errors_or_statuses_even_when_the_server_echoes_it() {
    use tether_testkit::http::{Expect, FakeServer, Reply, TestCa};
    set_credentials();
    let ca = TestCa::new(false);
    let server = FakeServer::builder().tls(&ca).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &ca.ca_pem).unwrap();
    let c = build(&spec(
        server.url(),
        &ca_path.display().to_string(),
        Cred::Pat,
        "a.py",
        "",
    ))
    .connector;
    let echo = format!(
        "{{\"error_code\":\"INVALID_PARAMETER_VALUE\",\"message\":\"bad header Bearer {PAT}\"}}"
    );
    server.expect(Expect::new(
        "POST",
        "/api/2.2/jobs/runs/submit",
        Reply::text(400, echo.clone()),
    ));
    server.expect(Expect::new(
        "GET",
        "/api/2.2/jobs/runs/get",
        Reply::text(500, echo.clone()),
    ));
    server.expect(Expect::new(
        "GET",
        "/api/2.2/jobs/runs/get",
        Reply::text(500, echo.clone()),
    ));
    server.expect(Expect::new(
        "GET",
        "/api/2.2/jobs/runs/get",
        Reply::text(500, echo.clone()),
    ));
    server.expect(Expect::new(
        "GET",
        "/api/2.2/jobs/runs/get",
        Reply::text(500, echo),
    ));
    let req = request("secret", 1, Shape::Normal);
    let e = c.submit(&req).await.unwrap_err().to_string();
    let st = format!("{:?}", c.status(&job(&req, &ExternalId("5".into()))).await);
    for text in [&e, &st] {
        assert!(!text.contains(PAT), "token leaked: {text}");
    }
    assert!(e.contains("***") && st.contains("***"), "{e}\n{st}");
    assert!(server
        .requests()
        .iter()
        .all(|r| r.header("authorization") == Some(format!("Bearer {PAT}"))));
}

#[test]
fn the_readme_example_spec_builds() {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("#### Databricks")
        .nth(1)
        .expect("README has a Databricks section");
    let example = section
        .split("```toml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .unwrap();
    std::env::set_var("TETHER_TOKEN_DATABRICKS", "dapi-readme-example");
    let built = Registry::builtin()
        .build("readme.toml", example, &BuildContext::default())
        .unwrap_or_else(|e| panic!("{e}\n{example}"));
    assert_eq!(built.connector.kind(), "databricks");
    assert!(built.policy.recovery && built.connector.idempotent_submit());
    assert_eq!(built.policy.poll_interval, Duration::from_secs(15));
}
