//! Crash tests of `tether run` with the spark-standalone connector on a real Spark 4.3 cluster
//! (`TETHER_SPARK_ENV`, or one started for this test binary: see `spark_support`).
//!
//! Every test counts, from outside tether, the drivers the master lists whose launch command
//! carries the run's tags: "exactly one driver" is checked against Spark itself.
mod common;
#[path = "../../connectors/tests/spark_support/mod.rs"]
mod spark_support;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use common::*;
use serde_json::Value;
use spark_support::{cluster, drivers_with_tag_prefix, spec, SKEW_ARGS, SKEW_CONF, T};

/// A run key unique to this process and test.
fn key(name: &str) -> String {
    format!("spark-{name}-{}", std::process::id())
}

fn run_json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "tether run --json printed no JSON ({e}); stderr:\n{}",
            stderr(out)
        )
    })
}

fn write_spec(env: &Env, body: &str) -> String {
    env.spec("spark.toml", body).display().to_string()
}

#[test]
fn sigkill_while_polling_then_rerun_reconnects_to_the_one_driver() {
    let env = Env::new();
    let k = key("poll");
    let s = write_spec(&env, &spec(&cluster().rest, &["sleep", "15"], "", "", ""));
    let mut first = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(
        wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")),
        "the first run never recorded the driver id"
    );
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = run_json(&out);
    assert_eq!(v["state"], "succeeded", "{v}");
    assert_eq!(v["submissions"].as_array().unwrap().len(), 1, "{v}");
    let drivers = drivers_with_tag_prefix(&tag_prefix(&env, &k));
    assert_eq!(
        drivers.len(),
        1,
        "exactly one driver was ever submitted: {drivers:?}"
    );
    assert_eq!(drivers[0].1, "FINISHED", "the driver's real final state");
    assert_eq!(v["external_id"], drivers[0].0.as_str());
    assert!(
        env.decisions(&k).contains(&"poll".to_string()),
        "{}",
        env.history_text(&k)
    );
    // `tether logs` shows the driver's stdout and stderr (from its worker).
    let out = env.run(&["logs", &k]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tether test job: mode sleep"), "{text}");
    let out = env.run(&["logs", &k, "--stderr"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("Launch Command:") && text.contains(&tag_prefix(&env, &k)),
        "{}",
        &text[..text.len().min(300)]
    );
}

#[test]
fn crash_after_the_post_before_the_id_record_adopts_the_driver_by_tag() {
    let env = Env::new();
    let k = key("adopt");
    let s = write_spec(&env, &spec(&cluster().rest, &["sleep", "5"], "", "", ""));
    let out = env
        .cmd()
        .args(["run", &s, "--key", &k])
        .env("TETHER_FAULT", "after-submit")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        None,
        "the fault hook must SIGKILL tether: {}",
        stderr(&out)
    );
    assert_eq!(
        phase(&env, &k).as_deref(),
        Some("intent"),
        "crashed before the id was recorded"
    );
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let d = env.decisions(&k);
    assert!(d.contains(&"adopt".to_string()), "{}", env.history_text(&k));
    assert!(
        !d.contains(&"resubmit-same-generation".to_string()),
        "{}",
        env.history_text(&k)
    );
    let drivers = drivers_with_tag_prefix(&tag_prefix(&env, &k));
    assert_eq!(
        drivers.len(),
        1,
        "adopted, not submitted again: {drivers:?}"
    );
    assert_eq!(run_json(&out)["external_id"], drivers[0].0.as_str());
}

#[test]
fn a_driver_that_succeeded_while_tether_was_dead_returns_at_once() {
    let env = Env::new();
    let k = key("done");
    // A long poll interval: tether sleeps while the driver ends, and is killed in that window.
    let s = write_spec(
        &env,
        &spec(
            &cluster().rest,
            &["sleep", "1"],
            "",
            "poll_interval = \"10m\"",
            "",
        ),
    );
    let mut first = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")));
    let prefix = tag_prefix(&env, &k);
    assert!(
        wait_until(T, || drivers_with_tag_prefix(&prefix)
            .iter()
            .any(|d| d.1 == "FINISHED")),
        "the driver never finished"
    );
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(run_json(&out)["state"], "succeeded");
    let d = env.decisions(&k);
    assert_eq!(
        d.iter().filter(|x| *x == "submit").count(),
        1,
        "{}",
        env.history_text(&k)
    );
    let takeover = d.iter().rposition(|x| x == "lease-acquired").unwrap();
    assert!(
        !d[takeover..].iter().any(|x| x == "poll"),
        "the rerun found the driver FINISHED and returned without polling: {}",
        env.history_text(&k)
    );
    // And once recorded, a rerun does not even ask Spark.
    let again = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(drivers_with_tag_prefix(&prefix).len(), 1);
}

#[test]
fn a_failed_driver_is_resubmitted_up_to_max_submissions() {
    let env = Env::new();
    let k = key("fail");
    let s = write_spec(
        &env,
        &spec(
            &cluster().rest,
            &["fail"],
            "",
            "max_submissions = 2\nbackoff = \"1s\"",
            "",
        ),
    );
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = run_json(&out);
    assert_eq!(v["state"], "failed", "{v}");
    assert_eq!(v["failure_class"], "other", "{v}");
    assert_eq!(v["submissions"].as_array().unwrap().len(), 2, "{v}");
    assert!(
        stderr(&out).contains("failing on purpose"),
        "{}",
        stderr(&out)
    );
    let drivers = drivers_with_tag_prefix(&tag_prefix(&env, &k));
    assert_eq!(drivers.len(), 2, "{drivers:?}");
    assert!(drivers.iter().all(|d| d.1 == "FAILED"), "{drivers:?}");
}

#[test]
fn the_skew_job_fails_oom_then_succeeds_in_the_recovery_shape() {
    let env = Env::new();
    let k = key("skew");
    let s = write_spec(
        &env,
        &spec(
            &cluster().rest,
            SKEW_ARGS,
            SKEW_CONF,
            "max_submissions = 2\nbackoff = \"1s\"",
            "",
        ),
    );
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = run_json(&out);
    let subs = v["submissions"].as_array().unwrap();
    assert_eq!(subs.len(), 2, "{v}");
    assert_eq!(subs[0]["submission"]["shape"], "normal", "{v}");
    assert_eq!(subs[1]["submission"]["shape"], "recovery", "{v}");
    let history = env.history_text(&k);
    assert!(history.contains("oom"), "{history}");
    assert!(
        history.contains(
            "spark.executor.cores 4 -> 1 (= spark.task.cpus 1), spark.executor.memory 512m kept"
        ),
        "the recovery shape is in the history: {history}"
    );
    let drivers = drivers_with_tag_prefix(&tag_prefix(&env, &k));
    let states: Vec<&str> = drivers.iter().map(|d| d.1.as_str()).collect();
    assert_eq!(drivers.len(), 2, "{drivers:?}");
    assert!(
        states.contains(&"FAILED") && states.contains(&"FINISHED"),
        "{drivers:?}"
    );
}

#[test]
fn the_skew_job_without_recovery_fails_every_time() {
    let env = Env::new();
    let k = key("skew-norec");
    let s = write_spec(
        &env,
        &spec(
            &cluster().rest,
            SKEW_ARGS,
            SKEW_CONF,
            "max_submissions = 2\nbackoff = \"1s\"",
            "[recovery]\nenabled = false\n",
        ),
    );
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = run_json(&out);
    assert_eq!(v["state"], "failed", "{v}");
    assert_eq!(v["failure_class"], "oom", "{v}");
    let subs = v["submissions"].as_array().unwrap();
    assert_eq!(subs.len(), 2, "{v}");
    assert!(
        subs.iter().all(|s| s["submission"]["shape"] == "normal"),
        "{v}"
    );
    assert_eq!(drivers_with_tag_prefix(&tag_prefix(&env, &k)).len(), 2);
}

#[test]
fn cancel_kills_the_driver() {
    let env = Env::new();
    let k = key("cancel");
    let s = write_spec(&env, &spec(&cluster().rest, &["sleep", "3600"], "", "", ""));
    let mut run = env.spawn(&["run", &s, "--key", &k], &[]);
    let prefix = tag_prefix(&env, &k);
    assert!(wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")));
    assert!(wait_until(T, || drivers_with_tag_prefix(&prefix)
        .iter()
        .any(|d| d.1 == "RUNNING")));
    let out = env.run(&["cancel", &k]);
    assert!(
        out.status.success() || out.status.code() == Some(3),
        "{}",
        stderr(&out)
    );
    let st = wait_child(&mut run, T);
    assert_eq!(st.code(), Some(3), "tether run ends cancelled");
    let drivers = drivers_with_tag_prefix(&prefix);
    assert_eq!(drivers.len(), 1, "{drivers:?}");
    assert_eq!(drivers[0].1, "KILLED", "{drivers:?}");
}

/// A TCP proxy in front of the master that can be cut (new and open connections closed).
struct Proxy {
    port: u16,
    down: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let d = down.clone();
        std::thread::spawn(move || {
            for inbound in listener.incoming().flatten() {
                if d.load(Ordering::SeqCst) {
                    continue; // dropped at once
                }
                let Ok(out) = TcpStream::connect(&upstream) else {
                    continue;
                };
                for (mut a, mut b) in [
                    (inbound.try_clone().unwrap(), out.try_clone().unwrap()),
                    (out, inbound),
                ] {
                    let d = d.clone();
                    a.set_read_timeout(Some(Duration::from_millis(200)))
                        .unwrap();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        loop {
                            if d.load(Ordering::SeqCst) {
                                break;
                            }
                            match a.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => {
                                    if b.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => break,
                            }
                        }
                        let _ = a.shutdown(std::net::Shutdown::Both);
                        let _ = b.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, down }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

#[test]
fn master_unreachable_mid_run_asks_again_then_reconnects_without_resubmitting() {
    let env = Env::new();
    let k = key("outage");
    let c = cluster();
    let rest = Proxy::start(&c.rest);
    let ui = Proxy::start(&c.ui);
    let text = spec(
        &rest.url(),
        &["sleep", "25"],
        "",
        "poll_interval = \"1s\"\nbackoff = \"1s\"\nbackoff_max = \"2s\"",
        "",
    )
    .replace(&c.ui, &ui.url());
    let s = write_spec(&env, &text);
    let mut run = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")));
    rest.down.store(true, Ordering::SeqCst);
    ui.down.store(true, Ordering::SeqCst);
    assert!(
        wait_until(T, || env.decisions(&k).iter().any(|d| d == "ask-again")),
        "an unreachable master gives unknown, asked again: {}",
        env.history_text(&k)
    );
    std::thread::sleep(Duration::from_secs(5));
    rest.down.store(false, Ordering::SeqCst);
    ui.down.store(false, Ordering::SeqCst);
    let st = wait_child(&mut run, T);
    assert_eq!(st.code(), Some(0), "{}", env.history_text(&k));
    let d = env.decisions(&k);
    assert_eq!(
        d.iter()
            .filter(|x| *x == "submit" || x.starts_with("resubmit"))
            .count(),
        1,
        "never resubmitted on unknown: {}",
        env.history_text(&k)
    );
    let drivers = drivers_with_tag_prefix(&tag_prefix(&env, &k));
    assert_eq!(drivers.len(), 1, "{drivers:?}");
    assert_eq!(drivers[0].1, "FINISHED");
}

#[test]
fn an_unreachable_master_at_submit_says_so() {
    let env = Env::new();
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Nothing was sent, but the master may come back: tether asks again until status_timeout.
    let s = write_spec(
        &env,
        &spec(
            &format!("http://127.0.0.1:{closed}"),
            &["pi"],
            "",
            "status_timeout = \"5s\"\nbackoff = \"1s\"",
            "",
        ),
    );
    // Both the REST server and the web UI are down (were only the REST port wrong, the tag
    // lookups would answer and the engine would keep retrying the submit).
    let text = std::fs::read_to_string(&s)
        .unwrap()
        .replace(&cluster().ui, &format!("http://127.0.0.1:{closed}"));
    std::fs::write(&s, text).unwrap();
    let out = env.run(&["run", &s, "--key", &key("unreachable")]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("127.0.0.1:{closed}")) && err.contains("cannot connect"),
        "{err}"
    );
}

#[test]
fn two_stores_with_the_same_key_each_run_their_own_driver() {
    // Staging and prod: two state stores, one Spark cluster, the same key and spec.
    let staging = Env::new();
    let prod = Env::new();
    let k = key("two-stores");
    let body = spec(&cluster().rest, &["sleep", "2"], "", "", "");
    let mut ids = Vec::new();
    for env in [&staging, &prod] {
        let s = write_spec(env, &body);
        let out = env.run(&["run", &s, "--key", &k, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v = run_json(&out);
        assert_eq!(v["state"], "succeeded", "{v}");
        ids.push(v["external_id"].as_str().unwrap().to_string());
        let drivers = drivers_with_tag_prefix(&tag_prefix(env, &k));
        assert_eq!(drivers.len(), 1, "one driver per store: {drivers:?}");
    }
    assert_ne!(
        ids[0], ids[1],
        "prod adopted staging's driver instead of running its own"
    );
}
