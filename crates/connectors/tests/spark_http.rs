//! The spark-standalone connector's HTTP rules (issue 7, items 2, 12, 14, 15), against test
//! servers on loopback ports (see `spark_http_support`): HTTPS with a CA made in the test, no
//! redirects, capped bodies, encoded ids, checked worker addresses, token rules, scrubbed and
//! escaped backend text, and adoption by tag checking main class and arguments.
mod spark_http_support;

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use serde_json::json;
use spark_http_support::*;
use tether_connectors::registry::{BuildContext, Built, Registry};
use tether_core::{
    connector::{
        CancelError, FenceHandle, JobRef, LogCursor, LogError, LogStream, NoFence, SubmitError,
        SubmitRequest,
    },
    ids::{ExternalId, Generation, RunKey, Tag},
    journal::{Shape, Submission},
    observe::{ActiveState, JobStatus, Lookup},
    Connector,
};

fn spec(rest: &str, extra: &str) -> String {
    format!(
        "[job]\nkind = \"spark-standalone\"\nmaster_rest = \"{rest}\"\nmaster_ui = \"{rest}\"\n\
         app_resource = \"file:/jobs/etl.jar\"\nmain_class = \"com.example.Etl\"\n\
         args = [\"--date\", \"2026-11-22\"]\nrequest_timeout = \"20s\"\n{extra}"
    )
}

fn build(
    file: &str,
    text: &str,
    ctx: &BuildContext,
) -> Result<Built, tether_core::spec::SpecError> {
    Registry::builtin().build(file, text, ctx)
}

fn connector_with(text: &str, ctx: &BuildContext) -> std::sync::Arc<dyn Connector> {
    build("spark.toml", text, ctx)
        .unwrap_or_else(|e| panic!("spec rejected: {e}\n{text}"))
        .connector
}

fn connector(text: &str) -> std::sync::Arc<dyn Connector> {
    connector_with(text, &BuildContext::default())
}

fn spec_error(text: &str, ctx: &BuildContext) -> String {
    match build("spark.toml", text, ctx) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("spec accepted:\n{text}"),
    }
}

fn job(id: &str) -> JobRef {
    JobRef {
        external_id: ExternalId(id.into()),
        submission: Submission {
            generation: Generation(1),
            tag: Tag::from_stored(TAG),
            shape: Shape::Normal,
        },
    }
}

fn request() -> SubmitRequest {
    let sub = job("x").submission;
    SubmitRequest {
        key: RunKey::new("http-test".to_string()).unwrap(),
        submission: sub,
        fence: FenceHandle(std::sync::Arc::new(NoFence)),
    }
}

#[tokio::test]
async fn https_with_the_spec_ca_works_and_without_it_is_a_clear_unknown() {
    let ca = TestCa::new(false);
    let master = serve(Some(&ca), queued_master).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    std::env::set_var("TETHER_TOKEN_HTTP_TEST_TLS", "tls-token-value");
    let with_ca = spec(
        &master.url,
        &format!(
            "ca_file = {:?}\ntoken_env = \"TETHER_TOKEN_HTTP_TEST_TLS\"\n",
            ca_file
        ),
    );
    let st = connector(&with_ca).status(&job("driver-1")).await;
    assert!(matches!(st, JobStatus::Active { .. }), "{st:?}");
    // SUBMITTED: waiting for a worker, which the engine reports as queued.
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
    // The token travels over https without any opt-in.
    let heads: Vec<String> = master
        .requests()
        .iter()
        .map(|s| format!("{:?}", s.headers))
        .collect();
    assert!(
        heads.iter().any(|h| h.contains("Bearer tls-token-value")),
        "{heads:?}"
    );

    // Without the CA: the system roots do not know it; unknown with what to do, never a panic.
    let without = spec(&master.url, "");
    let c = connector(&without);
    match c.status(&job("driver-1")).await {
        JobStatus::Unknown { reason } => {
            assert!(
                reason.contains("certificate") && reason.contains("ca_file"),
                "{reason}"
            )
        }
        st => panic!("expected unknown, got {st:?}"),
    }
    match c.submit(&request()).await {
        Err(SubmitError::Unavailable { reason }) => {
            assert!(reason.contains("certificate"), "{reason}")
        }
        r => panic!("expected unavailable, got {r:?}"),
    }

    // Worker log pages over https too, trusted through the same CA.
    let worker = serve(Some(&ca), |_| {
        Reply::text("==== Bytes 0-3 of 3 of /w/driver-1/stderr ====\nhi\n")
    })
    .await;
    let master = master_with_worker_over(Some(&ca), worker.url.clone(), "").await;
    let c = connector(&spec(&master.url, &format!("ca_file = {ca_file:?}\n")));
    let chunk = c
        .logs()
        .unwrap()
        .read_logs(
            &job("driver-1"),
            LogStream::Stderr,
            &LogCursor::start(),
            100,
        )
        .await;
    assert_eq!(chunk.unwrap().data, b"hi\n".to_vec());
    assert!(worker.url.starts_with("https://") && !worker.lines().is_empty());

    // A relative ca_file is read from the submitter's directory, not the current one.
    let relative = spec(&master.url, "ca_file = \"ca.pem\"\n");
    let submitter = BuildContext {
        base_dir: Some(dir.path().to_path_buf()),
        ..BuildContext::default()
    };
    let st = connector_with(&relative, &submitter)
        .status(&job("driver-1"))
        .await;
    assert!(matches!(st, JobStatus::Active { .. }), "{st:?}");

    // A CA file that is missing or holds no certificate is a spec error naming the field.
    let ctx = BuildContext::default();
    let e = spec_error(
        &spec(&master.url, "ca_file = \"/nonexistent/ca.pem\"\n"),
        &ctx,
    );
    assert!(
        e.contains("job.ca_file") && e.contains("/nonexistent/ca.pem"),
        "{e}"
    );
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let e = spec_error(&spec(&master.url, &format!("ca_file = {junk:?}\n")), &ctx);
    assert!(e.contains("job.ca_file") && e.contains("PEM"), "{e}");
}

#[tokio::test]
async fn token_rules_are_spec_errors_naming_the_field() {
    let ctx = BuildContext::default();
    std::env::set_var("TETHER_TOKEN_HTTP_TEST_RULES", "t");
    std::env::set_var("HTTP_TEST_DB_PASSWORD", "hunter2");
    // Plain http with a token: refused unless the spec opts in.
    let e = spec_error(
        &spec(
            "http://127.0.0.1:1",
            "token_env = \"TETHER_TOKEN_HTTP_TEST_RULES\"\n",
        ),
        &ctx,
    );
    assert!(
        e.contains("job.allow_insecure_token") && e.contains("https://"),
        "{e}"
    );
    connector(&spec(
        "http://127.0.0.1:1",
        "token_env = \"TETHER_TOKEN_HTTP_TEST_RULES\"\nallow_insecure_token = true\n",
    ));
    // Any variable outside TETHER_TOKEN_* (here: a worker's database password) is refused...
    let other = spec(
        "https://127.0.0.1:1",
        "token_env = \"HTTP_TEST_DB_PASSWORD\"\n",
    );
    let e = spec_error(&other, &ctx);
    assert!(
        e.contains("job.token_env") && e.contains("TETHER_TOKEN_"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
    // ... unless the caller's allowlist names it.
    let allow = BuildContext {
        token_env_allow: vec!["HTTP_TEST_DB_PASSWORD".into()],
        ..BuildContext::default()
    };
    connector_with(&other, &allow);
    // Userinfo in a URL is refused and not echoed.
    let e = spec_error(&spec("http://admin:hunter2@127.0.0.1:1", ""), &ctx);
    assert!(
        e.contains("job.master_rest") && !e.contains("hunter2"),
        "{e}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let elsewhere = serve(None, |_| {
        Reply::json(json!({"action": "CreateSubmissionResponse"}))
    })
    .await;
    let target = elsewhere.url.clone();
    // The master's UI answers (no drivers, so the create is tried); its REST port redirects.
    let master = serve(None, move |s| {
        if s.line().contains("/json/") {
            return Reply::json(
                json!({"url": "spark://m:7077", "status": "ALIVE", "workers": [],
                                      "activedrivers": [], "completeddrivers": []}),
            );
        }
        Reply::Full(
            "302 Found",
            vec![format!(
                "Location: {target}{}",
                s.line().split(' ').nth(1).unwrap_or("/")
            )],
            vec![],
        )
    })
    .await;
    let c = connector(&spec(&master.url, ""));
    match c.status(&job("driver-1")).await {
        JobStatus::Unknown { reason } => {
            assert!(
                reason.contains("302") && reason.contains("never follows redirects"),
                "{reason}"
            )
        }
        st => panic!("expected unknown, got {st:?}"),
    }
    match c.submit(&request()).await {
        Err(SubmitError::Rejected { message }) => {
            assert!(message.contains("redirect"), "{message}")
        }
        r => panic!("expected rejected, got {r:?}"),
    }
    assert!(!master.lines().is_empty());
    assert!(
        elsewhere.lines().is_empty(),
        "followed: {:?}",
        elsewhere.lines()
    );
}

#[tokio::test]
async fn bodies_are_capped() {
    // An endless status body: the call ends with an error long before the timeout.
    let master = serve(None, |_| Reply::Endless).await;
    let c = connector(&spec(&master.url, ""));
    let t0 = Instant::now();
    match c.status(&job("driver-1")).await {
        JobStatus::Unknown { reason } => {
            assert!(reason.contains("more than 8388608 bytes"), "{reason}")
        }
        st => panic!("expected unknown, got {st:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    // The client hung up: the server stops soon after the cap (socket buffers aside).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = master.endless_sent.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        master.endless_sent.load(Ordering::Relaxed),
        sent,
        "still reading"
    );
    assert!(sent < 64 << 20, "{sent} bytes were read");

    // An announced length over the cap is refused before reading.
    let master = serve(None, |_| Reply::Full("200 OK", vec![], vec![b' '; 9 << 20])).await;
    let st = connector(&spec(&master.url, ""))
        .status(&job("driver-1"))
        .await;
    assert!(
        matches!(&st, JobStatus::Unknown { reason } if reason.contains("more than")),
        "{st:?}"
    );
}

#[tokio::test]
async fn ids_are_encoded_into_paths() {
    let master = serve(None, queued_master).await;
    let c = connector(&spec(&master.url, ""));
    let _ = c.status(&job("a/../../json/?x=1#f")).await;
    let _ = c.cancel(&job("d/../../create")).await;
    assert_eq!(
        master.lines(),
        vec![
            "GET /v1/submissions/status/a%2F..%2F..%2Fjson%2F%3Fx%3D1%23f".to_string(),
            "POST /v1/submissions/kill/d%2F..%2F..%2Fcreate".to_string(),
        ]
    );
    // `..` alone cannot be encoded into a segment that stays one: refused, nothing sent.
    match c.status(&job("..")).await {
        JobStatus::Unknown { reason } => {
            assert!(reason.contains("not a valid driver id"), "{reason}")
        }
        st => panic!("expected unknown, got {st:?}"),
    }
    let refused = c.cancel(&job("..")).await;
    assert!(
        matches!(refused, Err(CancelError::Refused { .. })),
        "{refused:?}"
    );
    assert_eq!(master.lines().len(), 2);
}

#[tokio::test]
async fn worker_addresses_from_the_master_are_checked() {
    let worker = serve(None, |_| {
        Reply::text("==== Bytes 0-1 of 1 of /w/stderr ====\nx")
    })
    .await;
    let port = worker.url.rsplit(':').next().unwrap().to_string();
    for (bad, why) in [
        (
            format!("http://spy:pw@127.0.0.1:{port}"),
            "user name or password",
        ),
        (format!("file:///etc/passwd#{port}"), "scheme"),
        ("http://".to_string(), "URL"),
    ] {
        let master = master_with_worker(bad.clone(), "").await;
        let c = connector(&spec(&master.url, ""));
        match c
            .logs()
            .unwrap()
            .read_logs(
                &job("driver-1"),
                LogStream::Stderr,
                &LogCursor::start(),
                100,
            )
            .await
        {
            Err(LogError::Unavailable { reason }) => {
                assert!(
                    reason.contains(why) && !reason.contains("pw@"),
                    "{bad}: {reason}"
                )
            }
            r => panic!("{bad}: expected unavailable, got {r:?}"),
        }
    }
    assert!(worker.lines().is_empty(), "{:?}", worker.lines());
}

#[tokio::test]
async fn log_pages_are_asked_and_read_by_length() {
    let worker = serve(None, |_| Reply::Endless).await;
    let master = master_with_worker(worker.url.clone(), "").await;
    let c = connector(&spec(&master.url, ""));
    match c
        .logs()
        .unwrap()
        .read_logs(
            &job("driver-1"),
            LogStream::Stdout,
            &LogCursor::at_byte(5),
            1000,
        )
        .await
    {
        Err(LogError::Unavailable { reason }) => {
            assert!(reason.contains("more than 66536 bytes"), "{reason}")
        }
        r => panic!("expected unavailable, got {r:?}"),
    }
    let lines = worker.lines();
    assert!(
        lines.iter().any(|l| l.ends_with("/log/?driverId=driver-1&logType=stdout&offset=5&byteLength=1000")),
        "{lines:?}"
    );

    // A driver that prints the token: `tether logs` shows `***` instead.
    std::env::set_var("TETHER_TOKEN_HTTP_TEST_LOGS", "tok-in-the-log");
    let worker = serve(None, |_| {
        Reply::text(
            "==== Bytes 0-26 of 26 of /w/driver-1/stdout ====\nusing tok-in-the-log\x1b[0m\n",
        )
    })
    .await;
    let master = master_with_worker(worker.url.clone(), "").await;
    let text = spec(
        &master.url,
        "token_env = \"TETHER_TOKEN_HTTP_TEST_LOGS\"\nallow_insecure_token = true\n",
    );
    let chunk = connector(&text)
        .logs()
        .unwrap()
        .read_logs(
            &job("driver-1"),
            LogStream::Stdout,
            &LogCursor::start(),
            1000,
        )
        .await
        .unwrap();
    assert_eq!(chunk.data, b"using ***\x1b[0m\n".to_vec());
    assert_eq!(chunk.next, LogCursor::at_byte(26));
}

#[tokio::test]
async fn backend_text_is_escaped_and_the_token_scrubbed() {
    std::env::set_var("TETHER_TOKEN_HTTP_TEST_SCRUB", "tok-scrub-me");
    let hostile = "no driver \u{1b}[2J\u{1b}]0;owned\u{7} token tok-scrub-me\r FORGED \u{202e}txt";
    let master = master_with_worker("http://127.0.0.1:1".into(), hostile).await;
    let text = spec(
        &master.url,
        "token_env = \"TETHER_TOKEN_HTTP_TEST_SCRUB\"\nallow_insecure_token = true\n",
    );
    match connector(&text).status(&job("driver-1")).await {
        JobStatus::NotFound { detail } => {
            assert!(
                detail.contains("\\u{1b}[2J") && detail.contains("token ***"),
                "{detail}"
            );
            assert!(
                !detail.chars().any(|c| c.is_control() || c == '\u{202e}'),
                "{detail:?}"
            );
            assert!(!detail.contains("tok-scrub-me"), "{detail}");
        }
        st => panic!("expected not found, got {st:?}"),
    }
}

#[tokio::test]
async fn adoption_by_tag_checks_main_class_and_args() {
    // Same tag, same application: ours.
    let (master, _w) = cluster_with_launch("\"com.example.Etl\" \"--date\" \"2026-11-22\"").await;
    let c = connector(&spec(&master.url, ""));
    let found = lookup_our_tag(c.as_ref()).await;
    assert_eq!(
        found,
        Lookup::Found {
            external_id: ExternalId("driver-1".into())
        }
    );
    assert!(matches!(
        c.status(&job("driver-1")).await,
        JobStatus::Active { .. }
    ));

    // Same tag, other arguments (another store's run under the same key): not ours.
    let (master, _w) = cluster_with_launch("\"com.example.Etl\" \"--date\" \"2026-11-23\"").await;
    let c = connector(&spec(&master.url, ""));
    let lookup = lookup_our_tag(c.as_ref()).await;
    assert_eq!(lookup, Lookup::Absent);
    match c.status(&job("driver-1")).await {
        JobStatus::Mismatch { found } => {
            assert!(
                found.contains("another application") && found.contains("2026-11-23"),
                "{found}"
            )
        }
        st => panic!("expected mismatch, got {st:?}"),
    }
}

#[tokio::test]
async fn a_driver_killed_while_queued_does_not_block_find_by_tag() {
    // Killed before any worker took it: it has no log and never will, so it cannot show a tag.
    // It must not make every later look-up (and so every submit) answer `unknown`.
    let master = serve(None, |s| {
        if s.line().contains("/json/") {
            Reply::json(
                json!({"url": "spark://m:7077", "status": "ALIVE", "workers": [],
                "activedrivers": [],
                "completeddrivers": [{"id": "driver-0", "starttime": "1", "state": "KILLED",
                                      "worker": "None", "mainclass": "com.example.Etl"}]}),
            )
        } else {
            Reply::json(status_json("driver-0", "KILLED", None))
        }
    })
    .await;
    let c = connector(&spec(&master.url, ""));
    let lookup = lookup_our_tag(c.as_ref()).await;
    assert_eq!(lookup, Lookup::Absent);
}

/// Find-by-tag of [`TAG`] through `c`.
async fn lookup_our_tag(c: &dyn Connector) -> Lookup {
    c.find_by_tag()
        .expect("spark-standalone can find by tag")
        .find_by_tag(&Tag::from_stored(TAG))
        .await
}
