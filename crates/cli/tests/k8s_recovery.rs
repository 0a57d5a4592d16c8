//! `tether run` with spark-k8s and Spark's recovery, end to end: the real pyspark 4.3
//! `spark-submit` against the test kit's fake Kubernetes API server. The test plays the kubelet
//! and Spark's driver (creating executor pods as its allocator does: normal ones, one
//! `OOMKilled`, then recovery-mode ones with `SPARK_EXECUTOR_CORES=1`).
//! - Level 1: `tether history` tells each executor OOM and each recovery-mode executor once,
//!   also across a SIGKILL and a second `tether run`.
//! - Level 2: a driver killed for memory → the next generation in recovery shape (Spark 4.3 from
//!   `spark-submit --version`: the native flag on); the native flag `false` → fail-fast (no
//!   recovery shape: only the spec's plain retries).
//! - A driver pod of the run's name that already exists is adopted: still one pod.
mod common;
#[path = "support/k8s.rs"]
mod k8s;
#[path = "../../connectors/tests/spark_support/mod.rs"]
mod spark_support;

use common::*;
use k8s::{last_arg, tag, K8s, NS};
use serde_json::{json, Value};
use spark_support::T;
use tether_connectors::spark::tag::{driver_pod_name, label_value};
use tether_core::ids::Tag;
use tether_testkit::fakes::kubernetes::{Fate, Kind};

const TOKEN: &str = "fake-token-cli-k8s-recovery";
const FLAG: &str = "spark.kubernetes.allocation.recoveryMode.enabled";

/// The fake; a driver pod whose last argument is `oom-first` fails `OOMKilled` in generation 1
/// and succeeds after; `succeed` succeeds; others stay as the test drives them.
fn start() -> K8s {
    K8s::start(TOKEN, |pod: &Value| {
        let first_generation = pod
            .pointer("/metadata/labels/tether-tag")
            .and_then(Value::as_str)
            .is_some_and(|t| t.ends_with("-1") || t.ends_with('1'));
        match last_arg(pod) {
            Some("oom-first") if first_generation => Fate::Fail {
                reason: "OOMKilled".into(),
                exit_code: 137,
                log: "java.lang.OutOfMemoryError: Java heap space\n".into(),
            },
            Some("oom-first" | "succeed") => Fate::Succeed("Pi is roughly 3.14\n".into()),
            _ => Fate::Driven,
        }
    })
}

impl K8s {
    /// [`K8s::spec_with`], the executors asking for 4 cores.
    fn spec(&self, arg: &str, top: &str, job: &str) -> String {
        self.spec_with(arg, top, &format!("{job}\n[job.executor]\ncores = 4"))
    }

    /// An executor pod of the run's generation `tag`, as Spark's allocator makes it.
    fn executor(&self, tag: &Tag, id: u32, cores: u32) {
        let name = K8s::exec_name(tag, id);
        let pod = json!({"metadata": {"name": name, "labels": {
            "tether-tag": label_value(tag), "spark-role": "executor", "spark-exec-id": id.to_string(),
            "spark-app-selector": "spark-app-1"}},
            "spec": {"containers": [{"name": "spark-kubernetes-executor", "image": "apache/spark:4.3.0",
                "env": [{"name": "SPARK_EXECUTOR_ID", "value": id.to_string()},
                        {"name": "SPARK_EXECUTOR_CORES", "value": cores.to_string()}]}]}});
        self.fake.create(Kind::Pod, NS, pod).unwrap();
        self.fake.set_running(NS, &name);
    }

    fn exec_name(tag: &Tag, id: u32) -> String {
        format!(
            "{}-exec-{id}",
            driver_pod_name(tag).trim_end_matches("-driver")
        )
    }

    /// The `spark.properties` of every submission, in one text.
    fn properties(&self) -> String {
        self.fake
            .list(Kind::ConfigMap, NS, "")
            .iter()
            .filter_map(|cm| cm["data"]["spark.properties"].as_str().map(str::to_string))
            .collect::<Vec<_>>()
            .join("\n---\n")
    }
}

fn key(name: &str) -> String {
    format!("k8s-rec-{name}-{}", std::process::id())
}

fn events(env: &Env, key: &str) -> Vec<String> {
    let out = env.run(&["history", key, "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["decision"] == "backend-event")
        .map(|e| e["reason"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn history_tells_each_executor_oom_and_recovery_executor_once_across_a_sigkill() {
    let (k8s, env) = (start(), Env::new());
    let k = key("events");
    let s = env
        .spec("k.toml", &k8s.spec("driven", "", ""))
        .display()
        .to_string();
    let mut first = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(
        wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")),
        "{}",
        env.history_text(&k)
    );
    let t = tag(&env, &k, 1);
    let driver = driver_pod_name(&t);
    k8s.fake.set_running(NS, &driver);
    k8s.executor(&t, 1, 4);
    k8s.executor(&t, 2, 4);
    k8s.fake.fail(NS, &K8s::exec_name(&t, 1), "OOMKilled", 137);
    k8s.executor(&t, 3, 1);
    assert!(
        wait_until(T, || events(&env, &k).len() >= 2),
        "{}",
        env.history_text(&k)
    );
    // tether dies; Spark goes on: one more recovery-mode executor meanwhile.
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    k8s.executor(&t, 4, 1);
    let mut again = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(
        wait_until(T, || events(&env, &k).len() >= 3),
        "{}",
        env.history_text(&k)
    );
    k8s.fake.succeed(NS, &driver);
    let st = wait_child(&mut again, T);
    let history = env.history_text(&k);
    assert_eq!(st.code(), Some(0), "{history}");
    let ev = events(&env, &k);
    assert_eq!(
        ev,
        vec![
            "executor 1 OOMKilled (exit 137)".to_string(),
            "executor 1 OOMKilled (exit 137) → recovery-mode executors from executor 3 on (1 core each \
             instead of 4); they stay for the rest of the application and lower its throughput"
                .to_string(),
            "recovery-mode executor 4 started (1 core)".to_string(),
        ],
        "{history}"
    );
    // The text history shows them too, each once.
    assert_eq!(history.matches("backend-event").count(), 3, "{history}");
    assert_eq!(
        k8s.fake.pods_created(),
        5,
        "one driver pod and four executors"
    );
}

#[test]
fn a_driver_killed_for_memory_comes_back_in_spark_4_3_s_native_recovery_shape() {
    let (k8s, env) = (start(), Env::new());
    let k = key("level2");
    let s = env
        .spec("k.toml", &k8s.spec("oom-first", "max_submissions = 2", ""))
        .display()
        .to_string();
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    let history = env.history_text(&k);
    assert_eq!(out.status.code(), Some(0), "{}\n{history}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["submissions"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(k8s.fake.pods_created(), 2, "{history}");
    let props = k8s.properties();
    let recovery: Vec<&str> = props
        .split("\n---\n")
        .filter(|p| p.contains("spark.tether.shape=recovery"))
        .collect();
    assert_eq!(recovery.len(), 1, "{props}");
    assert!(
        recovery[0].contains(&format!("{FLAG}=true")),
        "{}",
        recovery[0]
    );
    assert!(
        recovery[0].contains("spark.executor.cores=4"),
        "{}",
        recovery[0]
    );
    let normal: Vec<&str> = props
        .split("\n---\n")
        .filter(|p| p.contains("spark.tether.shape=normal"))
        .collect();
    assert!(
        !normal[0].contains(FLAG),
        "the user's setting (unset) stays: {}",
        normal[0]
    );
    assert!(history.contains("recovery mode"), "{history}");
}

#[test]
fn the_native_flag_false_is_fail_fast() {
    let (k8s, env) = (start(), Env::new());
    let k = key("failfast");
    let s = env
        .spec(
            "k.toml",
            &k8s.spec(
                "oom-first",
                "max_submissions = 2",
                &format!("[job.conf]\n\"{FLAG}\" = false\n"),
            ),
        )
        .display()
        .to_string();
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    let history = env.history_text(&k);
    assert_eq!(out.status.code(), Some(0), "{}\n{history}", stderr(&out));
    // No recovery shape: generation 2 is a plain retry (max_submissions), Spark's flag stays
    // off in both, and the history says nothing of a recovery mode.
    assert_eq!(k8s.fake.pods_created(), 2, "{history}");
    let props = k8s.properties();
    assert!(!props.contains("spark.tether.shape=recovery"), "{props}");
    assert_eq!(
        props.matches(&format!("{FLAG}=false")).count(),
        2,
        "{props}"
    );
    assert!(!history.contains("recovery mode"), "{history}");
    assert!(history.contains("(normal shape): job"), "{history}");
}

#[test]
fn an_existing_driver_pod_of_the_run_s_name_is_adopted_one_pod() {
    let (k8s, env) = (start(), Env::new());
    let k = key("exists");
    let s = env
        .spec("k.toml", &k8s.spec("succeed", "", ""))
        .display()
        .to_string();
    // The store must exist for the tag: a status call makes it.
    let _ = env.run(&["ls"]);
    let t = tag(&env, &k, 1);
    let name = driver_pod_name(&t);
    let pod = json!({"metadata": {"name": name, "labels": {"tether-tag": label_value(&t),
        "spark-role": "driver", "spark-app-selector": "spark-app-9"}},
        "spec": {"containers": [{"name": "spark-kubernetes-driver", "image": "apache/spark:4.3.0",
            "args": ["driver", "succeed"]}]}});
    k8s.fake.create(Kind::Pod, NS, pod).unwrap();
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    let history = env.history_text(&k);
    assert_eq!(out.status.code(), Some(0), "{}\n{history}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["external_id"], name, "{v}");
    assert_eq!(k8s.fake.pods_created(), 1, "{history}");
    assert!(
        k8s.properties().is_empty(),
        "spark-submit never ran: {}",
        k8s.properties()
    );
}
