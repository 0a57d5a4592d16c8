//! The spark-standalone connector against a real Spark 4.3 standalone cluster (see
//! `spark_support`: `TETHER_SPARK_ENV`, or a cluster started by the test itself). No fakes of
//! Spark: the only stand-ins are a TCP proxy (to make the master unreachable for one connector
//! without disturbing the other tests) and a non-Spark HTTP server (bad input).
mod spark_support;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use spark_support::*;
use tether_connectors::{
    conformance::{self, Fixture},
    registry::{BuildContext, Built, Registry},
    spark_standalone::{rest::Secret, Classification, SparkStandalone},
};
use tether_core::{
    connector::{JobRef, LogCursor, LogStream, SubmitError, SubmitRequest},
    ids::{ExternalId, Generation, RunKey, Tag},
    journal::{Shape, Submission},
    observe::{FailureClass, JobStatus, Lookup},
    Connector,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

fn ctx() -> BuildContext {
    BuildContext {
        token_env_allow: Vec::new(),
        base_dir: None,
    }
}

fn build(
    file: &str,
    text: &str,
    ctx: &BuildContext,
) -> Result<Built, tether_core::spec::SpecError> {
    Registry::builtin().build(file, text, ctx)
}

fn built(text: &str) -> Built {
    build("spark.toml", text, &ctx()).unwrap_or_else(|e| panic!("spec rejected: {e}\n{text}"))
}

fn connector(args: &[&str], conf: &str, tail: &str) -> Arc<dyn Connector> {
    built(&spec(&cluster().rest, args, conf, "", tail)).connector
}

/// A fresh run key per test and process (the cluster may be shared and long-lived).
fn key(name: &str) -> RunKey {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    RunKey::new(format!("spark-{name}-{}-{nanos}", std::process::id())).unwrap()
}

fn request(key: &RunKey, generation: u32, shape: Shape) -> SubmitRequest {
    let generation = Generation(generation);
    SubmitRequest {
        key: key.clone(),
        submission: Submission {
            generation,
            tag: Tag::derive(
                &tether_core::ids::StoreId::new("testst0r").unwrap(),
                key,
                generation,
            ),
            shape,
        },
        fence: tether_core::connector::FenceHandle(std::sync::Arc::new(
            tether_core::connector::NoFence,
        )),
    }
}

async fn submit(c: &dyn Connector, req: &SubmitRequest) -> JobRef {
    let id = c
        .submit(req)
        .await
        .unwrap_or_else(|e| panic!("submit {} failed: {e}", req.submission.tag));
    JobRef {
        external_id: id,
        submission: req.submission.clone(),
    }
}

/// Polls until `done`, tolerating `Active`/`Unknown` meanwhile, within [`T`].
async fn wait_for(c: &dyn Connector, job: &JobRef, done: impl Fn(&JobStatus) -> bool) -> JobStatus {
    let deadline = Instant::now() + T;
    loop {
        let st = c.status(job).await;
        if done(&st) {
            return st;
        }
        assert!(
            matches!(st, JobStatus::Active { .. } | JobStatus::Unknown { .. }),
            "{}: unexpected {st:?}",
            job.external_id
        );
        assert!(
            Instant::now() < deadline,
            "{}: still {st:?} after {T:?}",
            job.external_id
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn wait_terminal(c: &dyn Connector, job: &JobRef) -> JobStatus {
    wait_for(c, job, JobStatus::is_terminal).await
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_suite() {
    let c = cluster();
    let fixture = Fixture {
        name: "spark".into(),
        // The sleep mode starts no SparkContext: quick, and cheap on a 2-core machine.
        succeeds: connector(&["sleep", "1"], "", ""),
        fails: connector(&["fail"], "", ""),
        runs_long: connector(&["sleep", "3600"], "", ""),
        unknown_id: ExternalId("driver-19700101000000-9999".into()),
        timeout: T,
        poll: Duration::from_secs(1),
    };
    let verdicts = conformance::run_all(&fixture)
        .await
        .unwrap_or_else(|f| panic!("{f} (cluster {})", c.rest));
    for (check, v) in &verdicts {
        assert_eq!(*v, conformance::Verdict::Passed, "{check} was not run");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pi_job_succeeds_shows_its_logs_and_is_adopted_by_a_fresh_connector() {
    let c = connector(&["pi", "2"], "", "");
    let k = key("pi");
    let req = request(&k, 1, Shape::Normal);
    let job = submit(&*c, &req).await;
    assert!(
        job.external_id.0.starts_with("driver-"),
        "{}",
        job.external_id
    );
    let st = wait_terminal(&*c, &job).await;
    let JobStatus::Succeeded { result } = st else {
        panic!("expected success, got {st:?}")
    };
    assert_eq!(result["driver_id"], job.external_id.0.as_str());
    // The tag went where tether reads it back from.
    let launch = launch_command(&job.external_id.0);
    assert!(
        launch.contains(&format!("\"-Dspark.tether.tag={}\"", req.submission.tag)),
        "{launch}"
    );
    assert!(
        launch.contains(&format!("\"-Dspark.app.name={}\"", req.submission.tag)),
        "{launch}"
    );
    // Logs through the worker's web UI, from an offset.
    let logs = c.logs().expect("spark offers logs");
    let out = logs
        .read_logs(&job, LogStream::Stdout, &LogCursor::start(), 1 << 20)
        .await
        .expect("stdout");
    let text = String::from_utf8_lossy(&out.data);
    assert!(text.contains("Pi is roughly"), "{text}");
    let rest = logs
        .read_logs(&job, LogStream::Stdout, &out.next, 1 << 20)
        .await
        .expect("stdout tail");
    assert!(rest.data.is_empty() && rest.next == out.next);
    let err = logs
        .read_logs(&job, LogStream::Stderr, &LogCursor::start(), 64)
        .await
        .expect("stderr");
    assert!(String::from_utf8_lossy(&err.data).starts_with("Launch Command:"));
    // A new process knows nothing: it finds the driver by tag, and status checks the identity
    // by reading the launch command.
    let fresh = connector(&["pi", "2"], "", "");
    let finder = fresh.find_by_tag().expect("spark can search by tag");
    assert_eq!(
        finder.find_by_tag(&req.submission.tag).await,
        Lookup::Found {
            external_id: job.external_id.clone()
        }
    );
    assert!(matches!(
        fresh.status(&job).await,
        JobStatus::Succeeded { .. }
    ));
    let other = request(&k, 2, Shape::Normal);
    assert_eq!(
        finder.find_by_tag(&other.submission.tag).await,
        Lookup::Absent
    );
    let crossed = JobRef {
        external_id: job.external_id.clone(),
        submission: other.submission.clone(),
    };
    let fresh2 = connector(&["pi", "2"], "", "");
    match fresh2.status(&crossed).await {
        JobStatus::Mismatch { found } => {
            assert!(found.contains(req.submission.tag.as_str()), "{found}")
        }
        st => panic!("expected a mismatch, got {st:?}"),
    }
    assert_eq!(
        drivers_with_tag_prefix(req.submission.tag.as_str()).len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_classified_other_with_the_telling_line() {
    let k = key("fail");
    let cases: [(&[&str], &str, &str); 2] = [
        (
            &["fail"],
            "dev.tether.testjob.TestJob",
            "failing on purpose",
        ),
        (
            &["pi"],
            "dev.tether.testjob.NoSuchClass",
            "ClassNotFoundException",
        ),
    ];
    let mut jobs = Vec::new();
    for (i, (args, main, _)) in cases.iter().enumerate() {
        let text =
            spec(&cluster().rest, args, "", "", "").replace("dev.tether.testjob.TestJob", main);
        let c = built(&text).connector;
        let job = submit(&*c, &request(&k, i as u32 + 1, Shape::Normal)).await;
        jobs.push((c, job));
    }
    let exit = connector(&["exit", "3"], "", "");
    let exit_job = submit(&*exit, &request(&k, 3, Shape::Normal)).await;
    for ((c, job), (_, _, needle)) in jobs.iter().zip(cases.iter()) {
        match wait_terminal(&**c, job).await {
            JobStatus::Failed {
                class: FailureClass::Other,
                message,
            } => {
                assert!(message.contains(needle), "{message}")
            }
            st => panic!("expected failed: other, got {st:?}"),
        }
    }
    // exit 3 without any OutOfMemoryError is not an OOM.
    assert!(matches!(
        wait_terminal(&*exit, &exit_job).await,
        JobStatus::Failed {
            class: FailureClass::Other,
            ..
        }
    ));
}

/// The skew job through two generations, the way the engine drives it.
#[tokio::test(flavor = "multi_thread")]
async fn skew_job_fails_oom_then_succeeds_in_the_recovery_shape() {
    let b = built(&spec(&cluster().rest, SKEW_ARGS, SKEW_CONF, "", ""));
    assert!(b.policy.recovery, "recovery is on by default");
    let c = b.connector;
    let shape = c
        .recovery()
        .expect("spark offers a recovery shape")
        .describe();
    assert_eq!(
        shape,
        "spark.executor.cores 4 -> 1 (= spark.task.cpus 1), spark.executor.memory 512m kept"
    );
    let k = key("skew");
    let g1 = submit(&*c, &request(&k, 1, Shape::Normal)).await;
    match wait_terminal(&*c, &g1).await {
        JobStatus::Failed {
            class: FailureClass::Oom,
            message,
        } => assert!(
            message.contains("code 52") || message.contains("OutOfMemoryError"),
            "the evidence is quoted: {message}"
        ),
        st => panic!("generation 1 should fail with oom, got {st:?}"),
    }
    // The classifier on its own, from a connector that never saw this driver.
    let spark = SparkStandalone::new(skew_job(), &Default::default(), None).unwrap();
    assert!(matches!(
        spark.classify(&g1.external_id.0).await,
        Classification::Oom { .. }
    ));
    let g2 = submit(&*c, &request(&k, 2, Shape::Recovery)).await;
    let launch = launch_command(&g2.external_id.0);
    assert!(launch.contains("\"-Dspark.executor.cores=1\""), "{launch}");
    assert!(
        launch.contains("\"-Dspark.executor.memory=512m\""),
        "{launch}"
    );
    assert!(
        launch.contains("\"-Dspark.tether.shape=recovery\""),
        "{launch}"
    );
    let st = wait_terminal(&*c, &g2).await;
    assert!(
        matches!(st, JobStatus::Succeeded { .. }),
        "the recovery shape must succeed: {st:?}"
    );
}

fn skew_job() -> tether_connectors::spark_standalone::spec::SparkJob {
    let text = spec(&cluster().rest, SKEW_ARGS, SKEW_CONF, "", "");
    tether_core::spec::parse_spec::<_, tether_connectors::spark_standalone::spec::SparkRecovery>(
        "s.toml", &text,
    )
    .unwrap()
    .job
}

#[tokio::test(flavor = "multi_thread")]
async fn skew_job_without_recovery_fails_every_time() {
    let b = built(&spec(
        &cluster().rest,
        SKEW_ARGS,
        SKEW_CONF,
        "max_submissions = 2",
        "[recovery]\nenabled = false\n",
    ));
    assert!(!b.policy.recovery);
    assert!(b.connector.recovery().is_none());
    let k = key("skew-norec");
    for generation in 1..=b.policy.max_submissions {
        // With recovery off the engine keeps the normal shape for every generation.
        let job = submit(&*b.connector, &request(&k, generation, Shape::Normal)).await;
        let st = wait_terminal(&*b.connector, &job).await;
        assert!(
            matches!(
                st,
                JobStatus::Failed {
                    class: FailureClass::Oom,
                    ..
                }
            ),
            "generation {generation}: {st:?}"
        );
        assert!(launch_command(&job.external_id.0).contains("\"-Dspark.executor.cores=4\""));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_kills_the_driver() {
    let c = connector(&["sleep", "3600"], "", "");
    let job = submit(&*c, &request(&key("cancel"), 1, Shape::Normal)).await;
    wait_for(
        &*c,
        &job,
        |s| matches!(s, JobStatus::Active { detail, .. } if detail == "RUNNING"),
    )
    .await;
    c.cancel(&job).await.expect("cancel");
    match wait_terminal(&*c, &job).await {
        JobStatus::Failed {
            class: FailureClass::Killed,
            ..
        } => {}
        st => panic!("expected killed, got {st:?}"),
    }
    let state = drivers()
        .into_iter()
        .find(|(id, _)| *id == job.external_id.0)
        .map(|(_, s)| s);
    assert_eq!(state.as_deref(), Some("KILLED"));
    assert!(
        c.cancel(&job).await.is_err(),
        "a second kill is refused (already finished)"
    );
}

/// A TCP proxy that can be cut (open connections dropped, new ones closed at once) and restored.
struct Proxy {
    port: u16,
    down: watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (down, rx) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut rx = rx.clone();
                if *rx.borrow() {
                    continue; // dropped: the client sees the connection closed
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut out) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                        _ = rx.wait_for(|d| *d) => {}
                    }
                });
            }
        });
        Proxy { port, down }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn master_unreachable_mid_run_is_unknown_then_reconnects() {
    let cl = cluster();
    let rest = Proxy::start(&cl.rest).await;
    let ui = Proxy::start(&cl.ui).await;
    let text = spec(&rest.url(), &["sleep", "20"], "", "", "").replace(&cl.ui, &ui.url());
    let c = built(&text).connector;
    let req = request(&key("outage"), 1, Shape::Normal);
    let job = submit(&*c, &req).await;
    wait_for(&*c, &job, |s| matches!(s, JobStatus::Active { .. })).await;
    rest.set_down(true);
    ui.set_down(true);
    // The classifier cannot read anything either: it says unknown, not "other".
    let job_spec = tether_core::spec::parse_spec::<
        _,
        tether_connectors::spark_standalone::spec::SparkRecovery,
    >("s.toml", &text)
    .unwrap()
    .job;
    let direct = SparkStandalone::new(job_spec, &Default::default(), None).unwrap();
    assert!(matches!(
        direct.classify(&job.external_id.0).await,
        Classification::Unknown { .. }
    ));
    for _ in 0..3 {
        match c.status(&job).await {
            JobStatus::Unknown { reason } => assert!(reason.contains(&rest.url()), "{reason}"),
            st => panic!("an unreachable master must give unknown, got {st:?}"),
        }
    }
    assert!(matches!(
        c.find_by_tag()
            .unwrap()
            .find_by_tag(&req.submission.tag)
            .await,
        Lookup::Unknown { .. }
    ));
    rest.set_down(false);
    ui.set_down(false);
    let st = wait_terminal(&*c, &job).await;
    assert!(matches!(st, JobStatus::Succeeded { .. }), "{st:?}");
    assert_eq!(
        drivers_with_tag_prefix(req.submission.tag.as_str()).len(),
        1,
        "no second driver"
    );
}

/// An HTTP server that is not Spark: answers every request with a small HTML page and keeps
/// the request heads it saw.
async fn not_spark_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let seen = seen2.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head and the body (Content-Length) so the client is not reset.
                loop {
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            seen.lock().unwrap().push(text[..end].to_string());
                            break;
                        }
                    }
                }
                let body = "<html><body>hello from nginx</body></html>";
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gives_clear_messages() {
    // Unreachable master at submit: nothing was sent.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = built(&spec(
        &format!("http://127.0.0.1:{closed}"),
        &["pi"],
        "",
        "",
        "",
    ))
    .connector;
    match c.submit(&request(&key("down"), 1, Shape::Normal)).await {
        Err(SubmitError::Unavailable { reason }) => {
            assert!(
                reason.contains("cannot connect") && reason.contains("REST port"),
                "{reason}"
            )
        }
        r => panic!("expected Unavailable, got {r:?}"),
    }

    // A non-Spark HTTP server on the REST port; the bearer token is sent but never shown.
    let (url, seen) = not_spark_server().await;
    std::env::set_var("TETHER_TOKEN_TEST_SPARK", "tok-very-secret");
    let text = spec(&url, &["pi"], "", "", "").replace(
        "[job.conf]",
        "token_env = \"TETHER_TOKEN_TEST_SPARK\"\nallow_insecure_token = true\n[job.conf]",
    );
    let c = built(&text).connector;
    let direct = SparkStandalone::new(
        skew_job(),
        &Default::default(),
        Some(Secret::new("tok-very-secret".into())),
    );
    assert!(!format!("{:?}", direct.unwrap()).contains("tok-very-secret"));
    match c.submit(&request(&key("nginx"), 1, Shape::Normal)).await {
        Err(SubmitError::Rejected { message }) => {
            assert!(
                message.contains(&format!(
                    "{url} answered but is not a Spark REST submission server"
                )),
                "{message}"
            );
            assert!(!message.contains("tok-very-secret"));
        }
        r => panic!("expected Rejected, got {r:?}"),
    }
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|h| h.contains("Bearer tok-very-secret")),
        "the token was sent"
    );
    let job = JobRef {
        external_id: ExternalId("driver-x".into()),
        submission: request(&key("n"), 1, Shape::Normal).submission,
    };
    assert!(matches!(c.status(&job).await, JobStatus::Unknown { .. }));
    let text = text.replace("TETHER_TOKEN_TEST_SPARK", "TETHER_TOKEN_TEST_SPARK_UNSET");
    let err = build("spark.toml", &text, &ctx())
        .err()
        .expect("a missing token variable is an error")
        .to_string();
    assert!(
        err.contains("TETHER_TOKEN_TEST_SPARK_UNSET") && err.contains("not set"),
        "{err}"
    );

    // Wrong jar path: the driver cannot launch (ERROR), which retrying cannot fix.
    let text =
        spec(&cluster().rest, &["pi"], "", "", "").replace(&cluster().jar, "/nonexistent/etl.jar");
    let c = built(&text).connector;
    let job = submit(&*c, &request(&key("nojar"), 1, Shape::Normal)).await;
    match wait_terminal(&*c, &job).await {
        JobStatus::Failed {
            class: FailureClass::Rejected,
            message,
        } => {
            assert!(
                message.contains("/nonexistent/etl.jar") && message.contains("app_resource"),
                "{message}"
            )
        }
        st => panic!("expected failed: rejected, got {st:?}"),
    }

    // Spec mistakes are caught before anything is sent.
    let text = spec("spark://127.0.0.1:7077", &["pi"], "", "", "");
    let err = build("spark.toml", &text, &ctx())
        .err()
        .expect("spark:// is not a REST URL")
        .to_string();
    assert!(
        err.contains("job.master_rest") && err.contains("REST submission server"),
        "{err}"
    );
}
