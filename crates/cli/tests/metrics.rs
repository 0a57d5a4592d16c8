//! `tether worker --metrics-listen`: real workers scraped over HTTP. A chaos run (a worker
//! SIGKILLed while its jobs run, another taking them over) moves the takeover and submission
//! counters by exactly the number of runs, on SQLite and PostgreSQL.
mod common;

use std::{
    io::{Read, Write},
    process::Child,
    time::Duration,
};

use common::*;

fn job_spec(env: &Env, key: &str, sleep_s: u32) -> std::path::PathBuf {
    let body = format!(
        "backoff = \"200ms\"\npoll_interval = \"200ms\"\n[job]\nkind = 'local'\ncommand = ['sh', '-c', 'echo {key} >> {}; sleep {sleep_s}']\n",
        env.path("counter").display(),
    );
    env.spec(&format!("{key}.toml"), &body)
}

fn submit(env: &Env, keys: &[String], sleep_s: u32) {
    for key in keys {
        let spec = job_spec(env, key, sleep_s);
        let out = env.run(&["submit", spec.to_str().unwrap(), "--key", key]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
}

/// A port free now (the OS picked it); the worker binds it right after.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_worker(env: &Env, port: u16) -> Child {
    env.spawn(
        &[
            "worker",
            "--concurrency",
            "8",
            "--local-slots",
            "8",
            "--metrics-listen",
            &format!("127.0.0.1:{port}"),
        ],
        &[],
    )
}

/// `GET /metrics` over a plain socket: the body, or None while nothing listens.
fn scrape(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    Some(body.to_string())
}

/// The value of the series `name` (with its labels as written, e.g. `x{a="b"}`), 0 if absent.
fn value(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

fn finished(env: &Env, keys: &[String]) -> bool {
    keys.iter()
        .all(|k| env.status(k).is_some_and(|s| s["state"] == "succeeded"))
}

#[test]
fn a_worker_serves_its_metrics_over_http() {
    let env = Env::new();
    let keys: Vec<String> = (0..3).map(|i| format!("m-{i}")).collect();
    submit(&env, &keys, 0);
    let port = free_port();
    let mut w = start_worker(&env, port);
    assert!(wait_until(Duration::from_secs(60), || finished(
        &env, &keys
    )));
    let body = scrape(port).expect("the worker serves /metrics");
    assert_eq!(
        value(
            &body,
            r#"tether_submissions_total{reason="fresh",kind="local"}"#
        ),
        3.0,
        "{body}"
    );
    assert_eq!(
        value(&body, r#"tether_runs{state="succeeded",kind="local"}"#),
        3.0,
        "{body}"
    );
    assert_eq!(
        value(&body, r#"tether_decisions_total{decision="submit"}"#),
        3.0,
        "{body}"
    );
    assert_eq!(
        value(&body, r#"tether_decisions_total{decision="finish"}"#),
        3.0,
        "{body}"
    );
    assert_eq!(
        value(
            &body,
            r#"tether_backend_request_seconds_count{kind="local",operation="submit",outcome="ok"}"#
        ),
        3.0,
        "{body}"
    );
    assert!(
        value(
            &body,
            r#"tether_backend_request_seconds_count{kind="local",operation="status",outcome="succeeded"}"#
        ) >= 3.0,
        "{body}"
    );
    assert_eq!(value(&body, "tether_takeovers_total"), 0.0, "{body}");
    assert_eq!(value(&body, "tether_local_slots_in_use"), 0.0, "{body}");
    assert!(
        body.contains("# TYPE tether_lease_renewal_seconds histogram"),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    signal(w.id(), "TERM");
    wait_child(&mut w, Duration::from_secs(30));
}

#[test]
fn a_taken_port_is_an_error_at_start() {
    let env = Env::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = env.run(&[
        "worker",
        "--exit-when-idle",
        "--metrics-listen",
        &format!("127.0.0.1:{port}"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--metrics-listen"),
        "{}",
        stderr(&out)
    );
}

fn chaos_moves_the_counters(mut env: Env) {
    // Far longer than the test: the takeover comes from the dead owner's liveness signal.
    env.lease_ttl = "60s".into();
    let keys: Vec<String> = (0..4).map(|i| format!("chaos-{i}")).collect();
    submit(&env, &keys, 4);
    let (pa, pb) = (free_port(), free_port());
    let mut a = start_worker(&env, pa);
    assert!(wait_until(Duration::from_secs(60), || keys
        .iter()
        .all(|k| phase(&env, k).as_deref() == Some("submitted"))));
    let seen = scrape(pa).expect("worker A serves /metrics");
    assert_eq!(
        value(
            &seen,
            r#"tether_submissions_total{reason="fresh",kind="local"}"#
        ),
        4.0,
        "{seen}"
    );
    assert_eq!(value(&seen, "tether_local_slots_in_use"), 4.0, "{seen}");
    signal(a.id(), "KILL");
    let _ = a.wait();
    let mut b = start_worker(&env, pb);
    assert!(wait_until(Duration::from_secs(60), || finished(
        &env, &keys
    )));
    let body = scrape(pb).expect("worker B serves /metrics");
    assert_eq!(value(&body, "tether_takeovers_total"), 4.0, "{body}");
    // B reconnected to the running jobs: nothing was submitted again.
    for reason in ["fresh", "after_failure", "after_lost", "after_intent"] {
        let series = format!("tether_submissions_total{{reason=\"{reason}\",kind=\"local\"}}");
        assert_eq!(value(&body, &series), 0.0, "{body}");
    }
    assert_eq!(
        value(&body, r#"tether_decisions_total{decision="finish"}"#),
        4.0,
        "{body}"
    );
    let counted = std::fs::read_to_string(env.path("counter")).unwrap_or_default();
    assert_eq!(counted.lines().count(), 4, "each job ran once: {counted}");
    signal(b.id(), "TERM");
    wait_child(&mut b, Duration::from_secs(30));
}

#[test]
fn a_chaos_run_moves_takeovers_and_submissions_on_sqlite() {
    chaos_moves_the_counters(Env::new());
}

#[test]
fn a_chaos_run_moves_takeovers_and_submissions_on_postgres() {
    let db = PgScratch::create();
    chaos_moves_the_counters(Env::with_state(&db.url));
}
