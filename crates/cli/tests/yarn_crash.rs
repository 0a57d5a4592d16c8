//! Crash tests of `tether run` with the spark-yarn connector on the real YARN of
//! `scripts/yarn-cluster` (`TETHER_YARN_ENV`; skipped with a message without it).
//!
//! Every test counts, from outside tether, the applications the ResourceManager lists with the
//! run's tags (`GET /ws/v1/cluster/apps?applicationTags=`): "exactly one application" is checked
//! against YARN itself.
mod common;
#[path = "../../connectors/tests/yarn_support/mod.rs"]
mod yarn_support;

use common::*;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;
use tether_core::ids::{Generation, RunKey, Tag};
use yarn_support::{cluster_or_skip, repo_root, Yarn, T};

fn key(name: &str) -> String {
    format!("yarn-{name}-{}", std::process::id())
}

/// The run's tag of generation `g` in `env`'s store.
fn tag(env: &Env, key: &str, g: u32) -> String {
    let store = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(tether_store::open(&env.state))
        .expect("open the test store");
    Tag::derive(store.store_id(), &RunKey::new(key).unwrap(), Generation(g)).to_string()
}

fn phase(env: &Env, key: &str) -> Option<String> {
    env.status(key)
        .and_then(|s| s["phase"]["phase"].as_str().map(str::to_string))
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}); stderr:\n{}", stderr(out)))
}

/// A spec for the test job (a jar with `args`, or alloc.py with `py_args`), small resources.
fn spec(y: &Yarn, args: &[&str], top: &str, tail: &str) -> String {
    let (resource, class) = match args.first() {
        Some(&"alloc.py") => (
            repo_root()
                .join("tests/spark-job/python/alloc.py")
                .display()
                .to_string(),
            String::new(),
        ),
        _ => (
            y.job_jar.clone(),
            "main_class = \"dev.tether.testjob.TestJob\"\n".into(),
        ),
    };
    let args: Vec<String> = args
        .iter()
        .filter(|a| **a != "alloc.py")
        .map(|a| format!("{a:?}"))
        .collect();
    format!(
        "{top}\n[job]\nkind = \"spark-yarn\"\napp_resource = \"{resource}\"\n{class}args = [{}]\n\
         hadoop_conf_dir = \"{}\"\nspark_home = \"{}\"\n[job.conf]\n\"spark.driver.memory\" = \"512m\"\n\
         \"spark.executor.memory\" = \"512m\"\n\"spark.executor.instances\" = \"1\"\n{tail}",
        args.join(", "),
        y.hadoop_conf_dir,
        y.spark_home,
    )
}

/// The test YARN is shared by this binary's tests and one of them freezes it (SIGSTOP, ~15 s):
/// that one holds this lock alone, the others together, so no test talks to a frozen RM beside
/// it (a `tether logs -f` gave up after its 10 s request timeout in CI).
static RM: RwLock<()> = RwLock::new(());

fn setup(test: &str) -> Option<(Yarn, Env, RwLockReadGuard<'static, ()>)> {
    let shared = RM.read().unwrap_or_else(PoisonError::into_inner);
    let (y, env) = prepare(test)?;
    Some((y, env, shared))
}

/// [`setup`] for the test that freezes the RM: no other test runs beside it.
fn setup_alone(test: &str) -> Option<(Yarn, Env, RwLockWriteGuard<'static, ()>)> {
    let alone = RM.write().unwrap_or_else(PoisonError::into_inner);
    let (y, env) = prepare(test)?;
    Some((y, env, alone))
}

fn prepare(test: &str) -> Option<(Yarn, Env)> {
    let y = cluster_or_skip(test)?;
    // spark-submit (started by tether) needs a JVM: the cluster's.
    if std::env::var_os("JAVA_HOME").is_none() {
        std::env::set_var("JAVA_HOME", &y.java_home);
    }
    Some((y, Env::new()))
}

/// The one application of generation 1, ended, with its final status.
fn one_app(y: &Yarn, env: &Env, k: &str) -> Value {
    let apps = y.wait_ended(&tag(env, k, 1));
    assert_eq!(apps.len(), 1, "exactly one YARN application: {apps:?}");
    apps[0].clone()
}

/// Whether a spark-submit for `tag` runs on this machine.
fn spark_submit_running(tag: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", &format!("spark.yarn.tags={tag}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn sigkill_while_spark_submit_runs_then_rerun_makes_one_app() {
    let Some((y, env, _rm)) = setup("sigkill_while_spark_submit_runs_then_rerun_makes_one_app")
    else {
        return;
    };
    let k = key("early");
    let s = env
        .spec("y.toml", &spec(&y, &["pi", "2"], "", ""))
        .display()
        .to_string();
    let mut first = env.spawn(&["run", &s, "--key", &k], &[]);
    let t = tag(&env, &k, 1);
    assert!(
        wait_until(T, || spark_submit_running(&t)),
        "spark-submit never started"
    );
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    // spark-submit dies with tether (PR_SET_PDEATHSIG): no submission left in flight.
    assert!(
        wait_until(
            std::time::Duration::from_secs(20),
            || !spark_submit_running(&t)
        ),
        "spark-submit outlived tether"
    );
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["state"], "succeeded");
    let app = one_app(&y, &env, &k);
    assert_eq!(app["finalStatus"], "SUCCEEDED", "{app}");
    assert_eq!(json(&out)["external_id"], app["id"]);
}

#[test]
fn sigkill_while_polling_then_rerun_reconnects_to_the_one_app() {
    let Some((y, env, _rm)) = setup("sigkill_while_polling_then_rerun_reconnects_to_the_one_app")
    else {
        return;
    };
    let k = key("poll");
    let s = env
        .spec("y.toml", &spec(&y, &["pi", "2"], "", ""))
        .display()
        .to_string();
    let mut first = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")));
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["state"], "succeeded", "{v}");
    assert_eq!(v["submissions"].as_array().unwrap().len(), 1, "{v}");
    let app = one_app(&y, &env, &k);
    assert_eq!(v["external_id"], app["id"]);
}

#[test]
fn crash_right_after_spark_submit_adopts_the_app_by_tag() {
    let Some((y, env, _rm)) = setup("crash_right_after_spark_submit_adopts_the_app_by_tag") else {
        return;
    };
    let k = key("adopt");
    let s = env
        .spec("y.toml", &spec(&y, &["pi", "2"], "", ""))
        .display()
        .to_string();
    let out = env
        .cmd()
        .args(["run", &s, "--key", &k])
        .env("TETHER_FAULT", "after-submit")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        None,
        "the fault hook SIGKILLs tether: {}",
        stderr(&out)
    );
    assert_eq!(phase(&env, &k).as_deref(), Some("intent"));
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let d = env.decisions(&k);
    assert!(d.contains(&"adopt".to_string()), "{}", env.history_text(&k));
    let app = one_app(&y, &env, &k);
    assert_eq!(json(&out)["external_id"], app["id"]);
}

#[test]
fn an_app_that_finished_while_tether_was_dead_returns_at_once() {
    let Some((y, env, _rm)) = setup("an_app_that_finished_while_tether_was_dead_returns_at_once")
    else {
        return;
    };
    let k = key("done");
    let text = spec(&y, &["pi", "2"], "poll_interval = \"10m\"", "");
    let s = env.spec("y.toml", &text).display().to_string();
    let mut first = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")));
    let app = one_app(&y, &env, &k);
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["state"], "succeeded");
    assert_eq!(json(&out)["external_id"], app["id"]);
    let d = env.decisions(&k);
    assert_eq!(
        d.iter().filter(|x| *x == "submit").count(),
        1,
        "{}",
        env.history_text(&k)
    );
    assert_eq!(y.apps_with_tag(&tag(&env, &k, 1)).len(), 1);
}

#[test]
fn a_driver_past_its_container_is_oom_and_the_recovery_shape_succeeds() {
    let Some((y, env, _rm)) =
        setup("a_driver_past_its_container_is_oom_and_the_recovery_shape_succeeds")
    else {
        return;
    };
    let k = key("oom");
    // 1500 MB in a 512m driver (1 GB container): the NodeManager kills it (-104). The recovery
    // shape gives the driver 2g (a 2.4 GB container), where it fits.
    let text = spec(
        &y,
        &["alloc.py", "1500", "5"],
        "max_submissions = 2\nbackoff = \"1s\"",
        "[recovery.conf]\n\"spark.driver.memory\" = \"2g\"\n",
    );
    let s = env.spec("y.toml", &text).display().to_string();
    let out = env.run(&["run", &s, "--key", &k, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stderr(&out),
        env.history_text(&k)
    );
    let v = json(&out);
    let subs = v["submissions"].as_array().unwrap();
    assert_eq!(subs.len(), 2, "{v}");
    assert_eq!(subs[1]["submission"]["shape"], "recovery", "{v}");
    let history = env.history_text(&k);
    assert!(history.contains("failed (oom)"), "{history}");
    // The first submission's outcome quotes the NodeManager's kill.
    let first_outcome = subs[0]["outcome"].to_string();
    assert!(
        first_outcome.contains("driver ran out of memory") && first_outcome.contains("-104"),
        "{first_outcome}"
    );
    assert!(history.contains("spark.driver.memory = 2g"), "{history}");
    let first = y.wait_ended(&tag(&env, &k, 1));
    let second = y.wait_ended(&tag(&env, &k, 2));
    assert_eq!((first.len(), second.len()), (1, 1), "{first:?} {second:?}");
    assert_eq!(first[0]["finalStatus"], "FAILED");
    assert_eq!(second[0]["finalStatus"], "SUCCEEDED");
}

#[test]
fn cancel_kills_the_yarn_app() {
    let Some((y, env, _rm)) = setup("cancel_kills_the_yarn_app") else {
        return;
    };
    let k = key("cancel");
    let text = spec(&y, &["skew", "10", "10", "1", "3600000"], "", "");
    let s = env.spec("y.toml", &text).display().to_string();
    let mut run = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")));
    let t = tag(&env, &k, 1);
    assert!(wait_until(T, || y
        .apps_with_tag(&t)
        .iter()
        .any(|a| a["state"] == "RUNNING")));
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
    let apps = y.wait_ended(&t);
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(apps[0]["state"], "KILLED", "{apps:?}");
}

#[test]
fn an_unreachable_rm_submits_nothing_and_says_so() {
    let Some((y, env, _rm)) = setup("an_unreachable_rm_submits_nothing_and_says_so") else {
        return;
    };
    let k = key("norm");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let text = spec(
        &y,
        &["pi", "2"],
        "status_timeout = \"5s\"\nbackoff = \"1s\"",
        "",
    )
    .replace(
        "[job.conf]",
        &format!("rm_url = \"http://{closed}\"\n[job.conf]"),
    );
    let s = env.spec("y.toml", &text).display().to_string();
    let out = env.run(&["run", &s, "--key", &k]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let history = env.history_text(&k);
    assert!(history.contains("cannot connect"), "{history}");
    assert!(
        !env.decisions(&k).iter().any(|d| d == "submitted"),
        "{history}"
    );
    assert!(
        y.apps_with_tag(&tag(&env, &k, 1)).is_empty(),
        "nothing reached YARN"
    );
}

#[test]
fn a_jar_without_main_class_is_rejected_at_once() {
    let Some((y, env, _rm)) = setup("a_jar_without_main_class_is_rejected_at_once") else {
        return;
    };
    let text =
        spec(&y, &["pi", "2"], "", "").replace("main_class = \"dev.tether.testjob.TestJob\"\n", "");
    let s = env.spec("y.toml", &text).display().to_string();
    let out = env.run(&["run", &s, "--key", &key("nomain")]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("main_class"), "{}", stderr(&out));
}

/// Thaws the frozen YARN JVM even when the test fails.
struct Thaw(u32);
impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

#[test]
fn rm_frozen_mid_run_is_unknown_never_resubmitted_and_the_app_completes_once() {
    let Some((y, env, _rm)) =
        setup_alone("rm_frozen_mid_run_is_unknown_never_resubmitted_and_the_app_completes_once")
    else {
        return;
    };
    let cluster_env = std::fs::read_to_string(y.dir.join("cluster.env")).unwrap();
    let pid: u32 = cluster_env
        .lines()
        .find_map(|l| l.strip_prefix("YARN_PID="))
        .expect("YARN_PID in cluster.env")
        .parse()
        .unwrap();
    let k = key("frozen");
    // A real SparkContext holding a task for 40 s: the app is RUNNING only once the driver's
    // SparkContext registered the AM (`sleep` mode never does, and ends with exit 13).
    let text = spec(
        &y,
        &["skew", "10", "10", "1", "40000"],
        "poll_interval = \"1s\"\nbackoff = \"1s\"\nbackoff_max = \"2s\"",
        "",
    )
    .replace("[job.conf]", "request_timeout = \"3s\"\n[job.conf]");
    let s = env.spec("y.toml", &text).display().to_string();
    let mut run = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")));
    let t = tag(&env, &k, 1);
    assert!(wait_until(T, || y
        .apps_with_tag(&t)
        .iter()
        .any(|a| a["state"] == "RUNNING")));
    eprintln!("freezing the test YARN (pid {pid}) for ~15 s: other YARN users will wait");
    let frozen = std::time::Instant::now();
    signal(pid, "STOP");
    let thaw = Thaw(pid);
    let unknown = wait_until(std::time::Duration::from_secs(60), || {
        env.decisions(&k).iter().any(|d| d == "ask-again")
    });
    std::thread::sleep(std::time::Duration::from_secs(15).saturating_sub(frozen.elapsed()));
    drop(thaw);
    assert!(
        unknown,
        "a frozen RM gives unknown, asked again: {}",
        env.history_text(&k)
    );
    let st = wait_child(&mut run, T);
    let history = env.history_text(&k);
    assert_eq!(st.code(), Some(0), "{history}");
    let d = env.decisions(&k);
    assert_eq!(
        d.iter()
            .filter(|x| *x == "submit" || x.starts_with("resubmit"))
            .count(),
        1,
        "never resubmitted on unknown: {history}"
    );
    let app = one_app(&y, &env, &k);
    assert_eq!(app["finalStatus"], "SUCCEEDED", "{app}");
}

#[test]
fn logs_follow_a_yarn_run_and_read_again_after_it_finished() {
    let Some((y, env, _rm)) = setup("logs_follow_a_yarn_run_and_read_again_after_it_finished")
    else {
        return;
    };
    let k = key("logs");
    let s = env
        .spec(
            "y.toml",
            &spec(&y, &["pi", "2"], "poll_interval = \"1s\"", ""),
        )
        .display()
        .to_string();
    let mut run = env.spawn(&["run", &s, "--key", &k], &[]);
    assert!(wait_until(T, || phase(&env, &k).as_deref() == Some("submitted")));
    let follow = env.run(&["logs", &k, "-f"]);
    assert!(follow.status.success(), "{}", stderr(&follow));
    let text = String::from_utf8_lossy(&follow.stdout).into_owned();
    assert!(text.contains("tether test job: mode pi"), "{text}");
    assert!(
        text.contains("Pi is roughly"),
        "the whole log, to the end: {text}"
    );
    assert_eq!(wait_child(&mut run, T).code(), Some(0));
    // After the app finished: the NodeManager still serves the driver's log.
    let again = env.run(&["logs", &k]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(String::from_utf8_lossy(&again.stdout), text);
    let err = env.run(&["logs", &k, "--stderr"]);
    assert!(
        String::from_utf8_lossy(&err.stdout).contains("ApplicationMaster"),
        "{}",
        stderr(&err)
    );
}
