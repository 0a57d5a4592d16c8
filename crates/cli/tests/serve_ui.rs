//! The web UI and `/metrics` of a real `tether serve` over a real SQLite store, with a real
//! `tether worker` running real local jobs: each page with its contract's elements, HTML
//! escaping of hostile text, and auth on pages (bearer, `?token=` setting the cookie, cookie).
mod common;
#[path = "support/serve.rs"]
mod serve;

use std::time::{Duration, Instant};

use common::Env;
use serde_json::{json, Value};
use serve::{client, get, local_spec, Server};

const READ: &str = "read-token-for-the-ui-test";
const WRITE: &str = "write-token-for-the-ui-test";

fn serve(env: &Env, tokens: bool) -> Server {
    if tokens {
        Server::with_tokens(env, READ, WRITE)
    } else {
        Server::start(env, &[], &[])
    }
}

async fn run_json(http: &reqwest::Client, base: &str, key: &str) -> Value {
    let (_, text) = get(http, &format!("{base}/api/v1/runs/{key}"), Some(READ)).await;
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Each page renders a real run with the elements the browser tests and the script use, and
/// text from users (spec names, query values) is escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_real_runs_with_their_elements_and_escape_hostile_text() {
    let env = Env::new();
    assert!(env.run(&["migrate"]).status.success());
    let server = serve(&env, true);
    let http = client();
    let base = &server.base;

    let hostile = "<script>alert(1)</script>\"'.toml";
    let body = json!({
        "spec": local_spec("for i in 1 2 3 4 5 6; do echo ui-line$i; sleep 0.5; done"),
        "spec_name": hostile,
        "key": "ui-run",
    });
    let resp = http
        .post(format!("{base}/api/v1/runs"))
        .bearer_auth(WRITE)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let mut worker = env.spawn(&["worker", "--local-slots", "2"], &[]);

    // While it runs, the fleet page shows the worker holding it, with its lease expiry.
    let deadline = Instant::now() + Duration::from_secs(30);
    let fleet = loop {
        let (s, page) = get(&http, &format!("{base}/ui/fleet"), Some(READ)).await;
        assert_eq!(s, 200, "{page}");
        if page.contains("data-key=\"ui-run\"") || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(fleet.contains("id=\"workers\""), "{fleet}");
    assert!(fleet.contains("<tr data-owner=\"worker@"), "{fleet}");
    assert!(fleet.contains("data-key=\"ui-run\""), "{fleet}");
    assert!(fleet.contains("class=\"expiry\""), "{fleet}");
    assert!(fleet.contains(" ago</td>"), "{fleet}");

    let deadline = Instant::now() + Duration::from_secs(60);
    while run_json(&http, base, "ui-run").await["state"] != "succeeded" {
        assert!(Instant::now() < deadline, "the run did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = worker.kill();
    let _ = worker.wait();

    let (s, runs) = get(&http, &format!("{base}/ui/runs"), Some(READ)).await;
    assert_eq!(s, 200);
    assert!(runs.contains("id=\"runs\""), "{runs}");
    assert!(
        runs.contains("<tr data-key=\"ui-run\" data-state=\"succeeded\">"),
        "{runs}"
    );
    for state in ["queued", "running", "succeeded", "failed", "cancelled"] {
        assert!(runs.contains(&format!("href=\"/ui/runs?state={state}\"")));
    }
    let (_, failed) = get(&http, &format!("{base}/ui/runs?state=failed"), Some(READ)).await;
    assert!(!failed.contains("data-key=\"ui-run\""), "{failed}");

    let (s, run) = get(&http, &format!("{base}/ui/runs/ui-run"), Some(READ)).await;
    assert_eq!(s, 200);
    for needle in [
        "<h1>ui-run</h1>",
        "id=\"state\" data-state=\"succeeded\">succeeded</span>",
        "<ol id=\"timeline\">",
        "<li data-kind=\"claimed\">",
        "<li data-kind=\"submit\">",
        "id=\"generations\"",
        "<tr data-generation=\"1\">",
        "<pre id=\"logs\"",
        "<button id=\"cancel\" type=\"button\" disabled>",
        "<button id=\"rerun\" type=\"button\">",
        "&lt;script&gt;alert(1)&lt;/script&gt;&quot;'.toml",
    ] {
        assert!(run.contains(needle), "{needle} missing in {run}");
    }
    assert!(!run.contains("<script>alert"), "{run}");
    // A local job has no backend page.
    assert!(!run.contains("id=\"job-link\""), "{run}");

    // Errors are pages too, their text escaped; an unknown run is a 404 page.
    let (s, page) = get(
        &http,
        &format!("{base}/ui/runs?state=%3Cimg%20src%3Dx%3E"),
        Some(READ),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        page.contains("&lt;img src=x&gt;") && !page.contains("<img"),
        "{page}"
    );
    let (s, _) = get(&http, &format!("{base}/ui/runs/nope"), Some(READ)).await;
    assert_eq!(s, 404);

    // The assets are embedded.
    let (s, js) = get(&http, &format!("{base}/ui/assets/ui.js"), None).await;
    assert!(s == 200 && js.contains("EventSource"));
    let (s, css) = get(&http, &format!("{base}/ui/assets/ui.css"), None).await;
    assert!(s == 200 && css.contains("@media"));
}

/// With tokens, pages and `/metrics` need a read token: a bearer header, or `?token=` once,
/// which sets an HttpOnly SameSite=Strict cookie the API accepts too (with its scope).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_read_token_given_as_bearer_or_once_in_the_address() {
    let env = Env::new();
    assert!(env.run(&["migrate"]).status.success());
    let server = serve(&env, true);
    let http = client();
    let base = &server.base;

    let resp = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/ui/runs");

    for page in ["/ui/runs", "/ui/runs/x", "/ui/fleet", "/metrics"] {
        let (s, _) = get(&http, &format!("{base}{page}"), None).await;
        assert_eq!(s, 401, "{page} without a token");
        let (s, _) = get(&http, &format!("{base}{page}"), Some("not-a-token-at-all")).await;
        assert_eq!(s, 401, "{page} with an unknown token");
    }
    let (s, _) = get(&http, &format!("{base}/ui/runs"), Some(READ)).await;
    assert_eq!(s, 200);
    let (s, unknown) = get(&http, &format!("{base}/ui/fleet?token=nope"), None).await;
    assert!(s == 401 && !unknown.contains("nope"), "{unknown}");

    // `?token=` once: a cookie, and the address without the token.
    let resp = http
        .get(format!("{base}/ui/runs?state=running&token={READ}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/ui/runs?state=running");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with(&format!("tether_token={READ};")),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let with_cookie = |path: &str| {
        http.get(format!("{base}{path}"))
            .header("cookie", pair.clone())
            .send()
    };
    assert_eq!(
        with_cookie("/ui/runs").await.unwrap().status().as_u16(),
        200
    );
    assert_eq!(
        with_cookie("/api/v1/runs").await.unwrap().status().as_u16(),
        200
    );
    let metrics = with_cookie("/metrics").await.unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    assert!(metrics
        .text()
        .await
        .unwrap()
        .contains("tether_takeovers_total"));
    // The cookie of a read token cannot cancel.
    let resp = http
        .post(format!("{base}/api/v1/runs/x/cancel"))
        .header("cookie", pair.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
}

/// `/metrics` of `serve` counts the store's runs by state and kind (Prometheus text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_serve_count_the_runs_of_the_store() {
    let env = Env::new();
    assert!(env.run(&["migrate"]).status.success());
    let spec = env.spec("m.toml", &local_spec("true"));
    let out = env.run(&["submit", spec.to_str().unwrap(), "--key", "m1"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let server = serve(&env, false);
    let resp = client()
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("tether_runs{state=\"queued\",kind=\"local\"} 1"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
}

/// `/api/v1/fleet` and the fleet page over a real store with real workers.
async fn fleet_json(http: &reqwest::Client, base: &str) -> Value {
    let (s, text) = get(http, &format!("{base}/api/v1/fleet"), Some(READ)).await;
    assert_eq!(s, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn by_pid(fleet: &Value, pid: u32) -> Option<Value> {
    fleet["workers"]
        .as_array()?
        .iter()
        .find(|w| w["pid"] == pid)
        .cloned()
}

/// Idle workers are listed (they hold no run), with their host, pid and heartbeat; a killed
/// one turns gone after 3 lease TTLs; a stopped one leaves; `tether prune` removes the gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_workers_are_listed_a_killed_one_turns_gone_and_is_pruned() {
    let mut env = Env::new();
    env.lease_ttl = "1s".into();
    let out = env.run(&["migrate"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let server = serve(&env, true);
    let (http, base) = (client(), server.base.clone());
    let mut kept = env.spawn(&["worker"], &[]);
    let mut killed = env.spawn(&["worker"], &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let fleet = loop {
        let f = fleet_json(&http, &base).await;
        if by_pid(&f, kept.id()).is_some() && by_pid(&f, killed.id()).is_some() {
            break f;
        }
        assert!(Instant::now() < deadline, "workers not listed: {f:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for pid in [kept.id(), killed.id()] {
        let w = by_pid(&fleet, pid).unwrap();
        assert_eq!(
            (&w["registered"], &w["alive"], &w["gone"]),
            (&json!(true), &json!(true), &json!(false)),
            "{w:#}"
        );
        assert_eq!(w["runs"], json!([]), "idle: {w:#}");
        assert!(w["heartbeat_age_ms"].as_i64().unwrap() < 3000, "{w:#}");
        assert!(!w["host"].as_str().unwrap().is_empty(), "{w:#}");
        assert!(
            w["version"].is_string() && w["started_at"].is_string(),
            "{w:#}"
        );
    }
    let (s, page) = get(&http, &format!("{base}/ui/fleet"), Some(READ)).await;
    assert_eq!(s, 200);
    for pid in [kept.id(), killed.id()] {
        assert!(page.contains(&format!(" pid {pid}")), "{page}");
    }
    assert!(page.contains("data-registered=\"true\""), "{page}");
    assert!(page.contains("class=\"muted idle\""), "{page}");

    // SIGKILL: no clean stop, its row stays and ages past 3 TTLs.
    let _ = killed.kill();
    let _ = killed.wait();
    let deadline = Instant::now() + Duration::from_secs(30);
    let gone = loop {
        let f = fleet_json(&http, &base).await;
        let w = by_pid(&f, killed.id()).expect("a killed worker stays listed");
        if w["gone"] == json!(true) {
            break f;
        }
        assert!(Instant::now() < deadline, "not gone: {w:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let w = by_pid(&gone, killed.id()).unwrap();
    assert!(w["heartbeat_age_ms"].as_i64().unwrap() > 3000, "{w:#}");
    assert_eq!(w["alive"], json!(false));
    assert_eq!(by_pid(&gone, kept.id()).unwrap()["alive"], json!(true));
    let (_, page) = get(&http, &format!("{base}/ui/fleet"), Some(READ)).await;
    assert!(page.contains("data-gone=\"true\""), "{page}");
    assert!(page.contains(">gone</span>"), "{page}");

    // A clean stop removes its own row; prune removes the gone one's.
    common::signal(kept.id(), "TERM");
    common::wait_child(&mut kept, Duration::from_secs(30));
    let f = fleet_json(&http, &base).await;
    assert!(by_pid(&f, kept.id()).is_none(), "{f:#}");
    let out = env.run(&["prune", "--older-than", "1d", "--yes"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("removed worker "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let f = fleet_json(&http, &base).await;
    assert_eq!(f["workers"], json!([]), "{f:#}");
}
