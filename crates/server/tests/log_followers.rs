//! Log followers of an in-process `tether serve` on a small runtime (2 workers, 4 blocking
//! threads), over a real SQLite file, with the library's worker running a real local job:
//! many followers at once each get lines while the job runs (none holds a thread), and reads
//! resumed from an event id (`Last-Event-ID`) or a page's cursor lose and repeat nothing.
use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use tether_core::{
    engine::{LeaseSettings, Quiet},
    ids::RunKey,
    journal::Phase,
    spec::spec_hash,
    store::NewRun,
};
use tether_fleet::{
    worker::{WorkerHooks, WorkerOptions},
    Config, Ctx,
};

const FOLLOWERS: usize = 64;
const LINES: usize = 30;

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("__supervise") {
        let code = tether_connectors::local::supervisor::supervise_main(&argv[2..]);
        std::process::exit(code);
    }
    // Small on purpose: a follower that held a blocking thread would starve the others.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .unwrap();
    // Followers that each held a blocking thread starved the store's calls: the test hung.
    rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(180),
            many_followers_get_lines_while_the_job_runs_and_resume_exactly(),
        )
        .await
        .expect("followers did not all finish within 180 s: do they wait for threads?")
    });
    println!("test many_followers_get_lines_while_the_job_runs_and_resume_exactly ... ok");
}

fn context(dir: &std::path::Path) -> Ctx {
    let leases = LeaseSettings {
        ttl: Duration::from_secs(3),
        ..Default::default()
    };
    let config = Config {
        state: dir.join("state.db").display().to_string(),
        jobs_dir: dir.join("jobs"),
        leases,
        token_env_allow: vec![],
        liveness: true,
        serve: Default::default(),
    };
    let exe = std::env::current_exe().unwrap().display().to_string();
    Ctx::new(config, vec![exe, "__supervise".into()])
}

/// The `lineN` words of `text`, in order.
fn lines_in(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|w| w.starts_with("line"))
        .map(str::to_string)
        .collect()
}

fn expected() -> Vec<String> {
    (1..=LINES).map(|i| format!("line{i}")).collect()
}

/// One SSE event: its name, id and data.
#[derive(Debug, Default, Clone)]
struct Sse {
    event: String,
    id: Option<String>,
    data: String,
}

/// Reads events from `resp` until `stop` says so or the stream ends; calls `seen` per event.
async fn events(mut resp: reqwest::Response, mut seen: impl FnMut(&Sse) -> bool) {
    let mut buf = String::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut ev = Sse::default();
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    ev.event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("id:") {
                    ev.id = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                }
            }
            ev.data = data.join("\n");
            if ev.event.is_empty() {
                continue; // a keep-alive comment
            }
            if !seen(&ev) {
                return;
            }
        }
    }
}

async fn many_followers_get_lines_while_the_job_runs_and_resume_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context(tmp.path());
    let script = format!("for i in $(seq 1 {LINES}); do echo line$i; sleep 0.25; done");
    let spec = format!("[job]\nkind = \"local\"\ncommand = [\"sh\", \"-c\", \"{script}\"]\n");
    let key = RunKey::new("followed").unwrap();
    let store = ctx.store().await.unwrap();
    store
        .create_run(&NewRun {
            key: key.clone(),
            kind: "local".into(),
            spec_hash: spec_hash(&spec),
            spec: spec.clone(),
            spec_name: "lines.toml".into(),
            queued: true,
            base_dir: Some(tmp.path().display().to_string()),
        })
        .await
        .unwrap();

    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel::<SocketAddr>();
    let server_ctx = context(tmp.path());
    let server = tokio::spawn(tether_server::serve(
        server_ctx,
        tether_server::ServeOptions::new("127.0.0.1:0".parse().unwrap()),
        std::future::pending(),
        move |a| {
            let _ = addr_tx.send(a);
        },
    ));
    let base = format!("http://{}", addr_rx.await.unwrap());
    let url = format!("{base}/api/v1/runs/followed/logs");
    let http = reqwest::Client::new();

    let worker_ctx = context(tmp.path());
    let worker = tokio::spawn(async move {
        let hooks = WorkerHooks {
            observer: Arc::new(Quiet),
            notices: Arc::new(|_| {}),
        };
        tether_fleet::worker::worker(
            &worker_ctx,
            WorkerOptions::new(4, 2),
            hooks,
            std::future::pending(),
        )
        .await
    });
    // Wait for the job's first output (the logs need a submitted job).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = http.get(&url).send().await.unwrap();
        if r.status() == 200 && r.text().await.unwrap().contains("line1") {
            break;
        }
        assert!(Instant::now() < deadline, "the job never wrote");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // FOLLOWERS at once: each notes when its first line came, then reads to the end.
    let started = Instant::now();
    let mut followers = tokio::task::JoinSet::new();
    for _ in 0..FOLLOWERS {
        let (http, url) = (http.clone(), url.clone());
        followers.spawn(async move {
            let resp = http.get(format!("{url}?follow=true")).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let (mut first, mut text, mut ended) = (None, String::new(), false);
            events(resp, |ev| {
                if ev.event == "log" {
                    first.get_or_insert_with(Instant::now);
                    text.push_str(&ev.data);
                    text.push('\n');
                }
                ended = ev.event == "end";
                !ended
            })
            .await;
            (first, text, ended)
        });
    }

    // Meanwhile: a follower that drops its connection and comes back with Last-Event-ID, and
    // a reader that pages with `cursor`.
    let resume = {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move {
            let mut text = String::new();
            let mut last: Option<String> = None;
            let mut connections = 0;
            loop {
                connections += 1;
                let mut req = http.get(format!("{url}?follow=true"));
                if let Some(id) = &last {
                    req = req.header("Last-Event-ID", id);
                }
                let resp = req.send().await.unwrap();
                assert_eq!(resp.status(), 200);
                let mut got = 0;
                let mut ended = false;
                events(resp, |ev| {
                    if ev.event == "log" {
                        text.push_str(&ev.data);
                        text.push('\n');
                        last = Some(ev.id.clone().expect("every log event has an id"));
                        got += 1;
                    }
                    ended = ev.event == "end";
                    // Hang up after two events (the reconnect then resumes).
                    !ended && got < 2
                })
                .await;
                if ended {
                    return (text, connections);
                }
            }
        })
    };
    let paged = {
        let (http, url) = (http.clone(), url.clone());
        let store = store.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let mut text = String::new();
            let mut cursor = String::new();
            let mut pages = 0;
            loop {
                let finished = matches!(
                    store.get_run(&key).await.unwrap().unwrap().journal.phase,
                    Phase::Finished { .. }
                );
                let resp = http
                    .get(&url)
                    .query(&[("cursor", cursor.as_str())])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                cursor = resp.headers()["tether-log-cursor"]
                    .to_str()
                    .unwrap()
                    .to_string();
                let page = resp.text().await.unwrap();
                pages += 1;
                // Finished before this read and nothing new: the log is complete.
                if page.is_empty() && finished {
                    return (text, pages);
                }
                text.push_str(&page);
                if page.is_empty() {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
            }
        })
    };

    let finished_at = loop {
        let run = store.get_run(&key).await.unwrap().unwrap();
        if matches!(run.journal.phase, Phase::Finished { .. }) {
            break Instant::now();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never finished"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut n = 0;
    while let Some(done) = followers.join_next().await {
        let (first, text, ended) = done.unwrap();
        n += 1;
        let first = first.expect("a follower got no line");
        assert!(
            first < finished_at,
            "a follower got its first line only after the job ended ({:?} after the start, the \
             run ended {:?} after it): followers wait for threads",
            first - started,
            finished_at - started
        );
        assert!(ended, "the stream ends with `end`");
        assert_eq!(lines_in(&text), expected(), "every line once, in order");
    }
    assert_eq!(n, FOLLOWERS);
    let (text, connections) = resume.await.unwrap();
    assert!(connections > 3, "it did reconnect: {connections}");
    assert_eq!(
        lines_in(&text),
        expected(),
        "across {connections} connections"
    );
    let (text, pages) = paged.await.unwrap();
    assert!(pages > 2, "{pages} pages");
    assert_eq!(lines_in(&text), expected(), "across {pages} pages");
    let (s, v) = {
        let r = http
            .get(&url)
            .query(&[("cursor", "nope")])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(s, 400, "{v}");
    assert!(v.contains("not one tether gave"), "{v}");
    worker.abort();
    server.abort();
}
