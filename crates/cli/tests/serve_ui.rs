//! The web UI and `/metrics` of a real `tether serve` over a real SQLite store, with a real
//! `tether worker` running real local jobs: each page with its contract's elements, HTML
//! escaping of hostile text, and auth on pages (bearer, `?token=` setting the cookie, cookie).
mod common;

use std::{
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use common::{wait_until, Env};
use serde_json::{json, Value};

const READ: &str = "read-token-for-the-ui-test";
const WRITE: &str = "write-token-for-the-ui-test";

/// A `tether serve` process, killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(env: &Env, tokens: bool) -> Server {
    let log = env.path(&format!("serve-{tokens}.err"));
    let mut cmd = env.cmd();
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    if tokens {
        cmd.env("TETHER_SERVE_TOKEN_READ", READ)
            .env("TETHER_SERVE_TOKEN_WRITE", WRITE);
    }
    let child = cmd.spawn().expect("spawn tether serve");
    let mut base = String::new();
    let up = wait_until(Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        match text.split("serving the API on ").nth(1) {
            Some(rest) => {
                let url = rest.split_whitespace().next().unwrap_or("");
                base = url.trim_end_matches("/api/v1").to_string();
                true
            }
            None => false,
        }
    });
    assert!(up, "{}", std::fs::read_to_string(&log).unwrap_or_default());
    Server { child, base }
}

/// A client that does not follow redirects (the tests look at them).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(http: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

async fn run_json(http: &reqwest::Client, base: &str, key: &str) -> Value {
    let (_, text) = get(http, &format!("{base}/api/v1/runs/{key}"), Some(READ)).await;
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn local_spec(script: &str) -> String {
    format!("[job]\nkind = 'local'\ncommand = ['sh', '-c', '{script}']\n")
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
