//! `tether run` with the spark-k8s connector, end to end: the real pyspark `spark-submit`
//! (SPARK_HOME of `TETHER_SPARK_ENV`) against the test kit's fake Kubernetes API server, whose
//! auto-kubelet moves each driver pod by a fate read from the application's last argument
//! (`succeed`, `forever`). Crash tests SIGKILL tether at the four points of a submission and
//! check, against the fake's own count of creates, that exactly one driver pod was ever made.
mod common;
#[path = "support/k8s.rs"]
mod k8s;
#[path = "../../connectors/tests/spark_support/mod.rs"]
mod spark_support;

use std::time::Duration;

use common::*;
use k8s::{last_arg, tag, K8s, NS};
use serde_json::Value;
use spark_support::T;
use tether_connectors::spark::tag::driver_pod_name;
use tether_testkit::fakes::kubernetes::{Fate, Outage};

const TOKEN: &str = "fake-token-cli-k8s";

fn start() -> K8s {
    K8s::start(TOKEN, |pod: &Value| match last_arg(pod) {
        Some("succeed") => Fate::Succeed("Pi is roughly 3.14\n".into()),
        Some("forever") => Fate::RunForever,
        _ => Fate::Driven,
    })
}

impl K8s {
    fn spec(&self, arg: &str, top: &str) -> String {
        self.spec_with(arg, top, "")
    }
}

fn key(name: &str) -> String {
    format!("k8s-{name}-{}", std::process::id())
}

/// The driver pod name of generation `g` of run `key`.
fn pod_name(env: &Env, key: &str, g: u32) -> String {
    driver_pod_name(&tag(env, key, g))
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}); stderr:\n{}", stderr(out)))
}

fn spark_submit_running(pod: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", &format!("spark.kubernetes.driver.pod.name={pod}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `tether run` to the end: succeeded, with the one driver pod of generation 1.
fn rerun_succeeds_with_one_pod(k8s: &K8s, env: &Env, s: &str, k: &str) -> Value {
    let out = env.run(&["run", s, "--key", k, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stderr(&out),
        env.history_text(k)
    );
    let v = json(&out);
    assert_eq!(v["state"], "succeeded", "{v}");
    assert_eq!(v["external_id"], pod_name(env, k, 1), "{v}");
    assert_eq!(k8s.fake.pods_created(), 1, "exactly one driver pod");
    assert!(
        k8s.fake.unknown_requests().is_empty(),
        "{:?}",
        k8s.fake.unknown_requests()
    );
    v
}

#[test]
fn run_spec_succeeds_end_to_end_with_the_real_spark_submit() {
    let (k8s, env) = (start(), Env::new());
    let k = key("e2e");
    let s = env
        .spec("k.toml", &k8s.spec("succeed", ""))
        .display()
        .to_string();
    let v = rerun_succeeds_with_one_pod(&k8s, &env, &s, &k);
    assert_eq!(v["submissions"].as_array().unwrap().len(), 1, "{v}");
    let logs = env.run(&["logs", &k]);
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("Pi is roughly"),
        "{}",
        stderr(&logs)
    );
}

#[test]
fn sigkill_before_the_pod_exists_then_rerun_makes_one_pod() {
    let (k8s, env) = (start(), Env::new());
    let k = key("intent");
    let s = env
        .spec("k.toml", &k8s.spec("succeed", ""))
        .display()
        .to_string();
    run_killed_at(&env, "after-intent", &["run", &s, "--key", &k]);
    assert_eq!(k8s.fake.pods_created(), 0);
    rerun_succeeds_with_one_pod(&k8s, &env, &s, &k);
}

#[test]
fn sigkill_while_spark_submit_runs_then_rerun_makes_one_pod() {
    let (k8s, env) = (start(), Env::new());
    let k = key("submit");
    let s = env
        .spec("k.toml", &k8s.spec("succeed", ""))
        .display()
        .to_string();
    let mut first = env.spawn(&["run", &s, "--key", &k], &[]);
    let pod = pod_name(&env, &k, 1);
    assert!(
        wait_until(T, || spark_submit_running(&pod)),
        "spark-submit never started"
    );
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    assert!(
        wait_until(Duration::from_secs(20), || !spark_submit_running(&pod)),
        "spark-submit outlived tether"
    );
    rerun_succeeds_with_one_pod(&k8s, &env, &s, &k);
}

#[test]
fn sigkill_right_after_spark_submit_adopts_the_pod() {
    let (k8s, env) = (start(), Env::new());
    let k = key("adopt");
    let s = env
        .spec("k.toml", &k8s.spec("succeed", ""))
        .display()
        .to_string();
    run_killed_at(&env, "after-submit", &["run", &s, "--key", &k]);
    assert_eq!(phase(&env, &k).as_deref(), Some("intent"));
    assert_eq!(k8s.fake.pods_created(), 1);
    rerun_succeeds_with_one_pod(&k8s, &env, &s, &k);
    assert!(
        env.decisions(&k).iter().any(|d| d == "adopt"),
        "{}",
        env.history_text(&k)
    );
}

#[test]
fn sigkill_while_polling_then_rerun_reconnects_to_the_one_pod() {
    let (k8s, env) = (start(), Env::new());
    let k = key("poll");
    let s = env
        .spec("k.toml", &k8s.spec("succeed", ""))
        .display()
        .to_string();
    let mut first = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")));
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    let v = rerun_succeeds_with_one_pod(&k8s, &env, &s, &k);
    assert_eq!(v["submissions"].as_array().unwrap().len(), 1, "{v}");
}

#[test]
fn cancel_through_the_cli_deletes_the_driver_pod() {
    let (k8s, env) = (start(), Env::new());
    let k = key("cancel");
    let s = env
        .spec("k.toml", &k8s.spec("forever", ""))
        .display()
        .to_string();
    let mut run = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(
        wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")),
        "{}",
        env.history_text(&k)
    );
    let pod = pod_name(&env, &k, 1);
    assert!(wait_until(T, || k8s
        .fake
        .pod(NS, &pod)
        .is_some_and(|p| p["status"]["phase"] == "Running")));
    let out = env.run(&["cancel", &k]);
    assert!(
        out.status.success() || out.status.code() == Some(3),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        wait_child(&mut run, T).code(),
        Some(3),
        "tether run ends cancelled"
    );
    let p = k8s.fake.pod(NS, &pod);
    assert!(
        p.as_ref()
            .is_none_or(|p| !p["metadata"]["deletionTimestamp"].is_null()),
        "the driver pod was deleted: {p:?}"
    );
    assert_eq!(k8s.fake.pods_created(), 1);
}

#[test]
fn an_unreachable_api_server_is_unknown_and_never_resubmitted() {
    let (k8s, env) = (start(), Env::new());
    let k = key("outage");
    let s = env
        .spec("k.toml", &k8s.spec("succeed", "backoff_max = \"2s\""))
        .display()
        .to_string();
    // Unreachable from the first status call on: the pod exists, tether cannot see it.
    let mut run = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")));
    // Decisions before the outage may hold two submits of generation 1 on a loaded machine (a
    // spark-submit past its timeout, then the idempotent submit of the same tag): what this test
    // pins is that nothing is submitted once the status is unknown.
    let before = env.decisions(&k).len();
    k8s.fake.outage(Some(Outage::Unavailable));
    let unknown = wait_until(Duration::from_secs(60), || {
        env.decisions(&k).iter().any(|d| d == "ask-again")
    });
    k8s.fake.outage(None);
    assert!(unknown, "unknown, asked again: {}", env.history_text(&k));
    let st = wait_child(&mut run, T);
    let history = env.history_text(&k);
    assert_eq!(st.code(), Some(0), "{history}");
    let d = env.decisions(&k);
    assert!(
        !d[before..]
            .iter()
            .any(|x| x == "submit" || x.starts_with("resubmit")),
        "never submitted again once unknown: {history}"
    );
    assert!(!d.iter().any(|x| x.starts_with("resubmit")), "{history}");
    assert_eq!(k8s.fake.pods_created(), 1);
}
