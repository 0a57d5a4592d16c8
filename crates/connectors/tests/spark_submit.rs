//! The spark-submit runner (`spark::submit`) with real processes: pyspark's spark-submit against
//! the real standalone cluster, a closed port, a listener that never answers; and a stand-in
//! spark-submit script (a real process) for what the real one cannot show (its environment).
mod spark_support;

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use spark_support::{cluster, driver_tag_on_disk, drivers, launch_command};
use tether_connectors::spark::{
    conf::SparkConf,
    submit::{Cluster, SparkSubmit},
};
use tether_core::connector::SubmitError;

fn spark_home() -> PathBuf {
    cluster()
        .spark_home
        .clone()
        .expect("the cluster env names SPARK_HOME (pyspark's distribution)")
}

/// A unique marker for this test's processes and tags.
fn marker(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("tether-submit-{name}-{}-{nanos}", std::process::id())
}

fn job(master: String, tag: &str) -> SparkSubmit {
    let mut conf = SparkConf::default();
    conf.set("spark.tether.tag", tag);
    conf.set("spark.driver.memory", "450m");
    conf.set("spark.executor.memory", "512m");
    SparkSubmit {
        spark_home: Some(spark_home()),
        cluster: Cluster::Standalone,
        master,
        main_class: Some("dev.tether.testjob.TestJob".into()),
        app_resource: format!("file:{}", cluster().jar),
        args: vec!["sleep".into(), "1".into()],
        conf,
        env_allow: vec![],
        env: vec![],
        timeout: Duration::from_secs(180),
        output_cap: 1 << 20,
    }
}

/// Processes whose command line contains `text`.
fn processes_with(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(text) {
                found.push(name);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn submits_to_the_real_standalone_cluster_and_the_master_lists_the_driver() {
    let rest = cluster().rest.trim_start_matches("http://").to_string();
    let tag = marker("ok");
    let submitted = job(format!("spark://{rest}"), &tag)
        .run()
        .await
        .unwrap_or_else(|e| panic!("spark-submit against the real cluster: {e}"));
    let id = submitted.id.0;
    assert!(id.starts_with("driver-"), "{id}");
    assert!(
        drivers().iter().any(|(d, _)| *d == id),
        "the master's /json/ lists {id}: {:?}",
        drivers()
    );
    // It is our submission: the worker launched it with our tag.
    assert!(
        !launch_command(&id).is_empty(),
        "driver {id} never launched"
    );
    assert_eq!(driver_tag_on_disk(&id).as_deref(), Some(tag.as_str()));
    assert!(wait_gone(&tag), "the driver (sleep 1) ended");
}

/// The driver (on the worker) carries the tag too; it ends by itself after `sleep 1`.
fn wait_gone(text: &str) -> bool {
    let deadline = Instant::now() + spark_support::T;
    while Instant::now() < deadline {
        if processes_with(text).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_port_is_unavailable() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = job(format!("spark://127.0.0.1:{port}"), &marker("closed"))
        .run()
        .await
        .unwrap_err();
    assert!(matches!(e, SubmitError::Unavailable { .. }), "{e:?}");
    assert!(e.to_string().contains("Connection refused"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listener_that_never_answers_times_out_ambiguous_and_leaves_no_process() {
    // Accepts and holds every connection, never answering: a stopped master.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(s);
        }
    });
    let tag = marker("stopped");
    let mut submit = job(format!("spark://127.0.0.1:{port}"), &tag);
    submit.timeout = Duration::from_secs(25);
    let started = Instant::now();
    let e = submit.run().await.unwrap_err();
    assert!(matches!(e, SubmitError::Ambiguous { .. }), "{e:?}");
    assert!(e.to_string().contains("killed"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "the timeout is hard"
    );
    assert!(
        accepted.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "spark-submit reached the listener (the timeout hit a hanging request, not a slow start)"
    );
    assert_eq!(
        processes_with(&tag),
        Vec::<String>::new(),
        "spark-submit and its JVM are gone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_and_a_missing_distribution_are_rejected() {
    let e = job("nonsense://x".into(), &marker("args"))
        .run()
        .await
        .unwrap_err();
    assert!(matches!(e, SubmitError::Rejected { .. }), "{e:?}");
    let mut missing = job("spark://127.0.0.1:1".into(), &marker("home"));
    missing.spark_home = Some("/nonexistent/spark".into());
    let e = missing.run().await.unwrap_err();
    assert!(
        matches!(&e, SubmitError::Rejected { message } if message.contains("/nonexistent/spark/bin/spark-submit")),
        "{e:?}"
    );
}

/// A stand-in distribution whose spark-submit prints its environment and arguments, then
/// `tail` (shell).
fn fake_home(dir: &Path, tail: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("spark-submit");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nenv >&2\necho \"args: $*\" >&2\n{tail}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir.to_path_buf()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_environment_is_cleared_and_secret_conf_never_shows() {
    // Cargo runs tests with CARGO_MANIFEST_DIR set: it stands for any variable of ours.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let dir = tempfile::tempdir().unwrap();
    let home = fake_home(
        dir.path(),
        "echo 'Submission successfully created as driver-20261201000000-0042. Polling'",
    );
    let mut submit = job("spark://m:6066".into(), &marker("env"));
    submit.spark_home = Some(home.clone());
    submit
        .conf
        .set("spark.authenticate.secret", "hunter2-secret");
    let ok = submit.run().await.unwrap();
    assert_eq!(ok.id.0, "driver-20261201000000-0042");
    let out = &ok.output;
    assert!(!out.contains("CARGO_MANIFEST_DIR"), "{out}");
    assert!(out.contains("PATH="), "{out}");
    assert!(
        out.contains(&format!("SPARK_HOME={}", home.display())),
        "{out}"
    );
    assert!(
        out.contains("spark.standalone.submit.waitAppCompletion=false"),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "{out}");

    // Exit 0 without an id: ambiguous, and the secret is not in the error either.
    let home = fake_home(&dir.path().join("silent"), "exit 0");
    submit.spark_home = Some(home);
    let e = submit.run().await.unwrap_err();
    assert!(matches!(e, SubmitError::Ambiguous { .. }), "{e:?}");
    assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn output_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let home = fake_home(
        dir.path(),
        "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo driver-20261201000000-0001",
    );
    let mut submit = job("spark://m:6066".into(), &marker("cap"));
    submit.spark_home = Some(home);
    submit.output_cap = 64 << 10;
    let e = submit.run().await.unwrap_err();
    // The id came after the cap: not seen, so ambiguous (never a guess), and the run finished.
    assert!(matches!(e, SubmitError::Ambiguous { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_conf_goes_through_an_in_memory_file_with_the_defaults_never_the_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen");
    std::fs::create_dir_all(&seen).unwrap();
    let conf_dir = dir.path().join("conf");
    std::fs::create_dir_all(&conf_dir).unwrap();
    std::fs::write(
        conf_dir.join("spark-defaults.conf"),
        "spark.eventLog.enabled true\n",
    )
    .unwrap();
    // Reads the file twice, as spark-submit's launcher and its JVM do.
    let home = fake_home(
        &dir.path().join("home"),
        &format!(
            "prev=; for a in \"$@\"; do if [ \"$prev\" = --properties-file ]; then cat \"$a\" > {s}/props; \
             cat \"$a\" > {s}/props2; fi; prev=\"$a\"; done; printf '%s\\n' \"$@\" > {s}/args; \
             echo 'Submission successfully created as driver-20261201000000-0043. Polling'",
            s = seen.display()
        ),
    );
    let mut submit = job("spark://m:6066".into(), &marker("props"));
    submit.spark_home = Some(home);
    submit.env = vec![("SPARK_CONF_DIR".into(), conf_dir.display().to_string())];
    submit
        .conf
        .set("spark.hadoop.fs.s3a.secret.key", "s3cr=t:value");
    assert_eq!(
        submit.run().await.unwrap().id.0,
        "driver-20261201000000-0043"
    );
    let args = std::fs::read_to_string(seen.join("args")).unwrap();
    assert!(!args.contains("s3cr"), "{args}");
    assert!(args.contains("--properties-file\n/dev/fd/"), "{args}");
    assert!(
        args.contains("spark.tether.tag="),
        "other conf stays arguments: {args}"
    );
    let props = std::fs::read_to_string(seen.join("props")).unwrap();
    assert_eq!(
        props,
        "spark.eventLog.enabled true\nspark.hadoop.fs.s3a.secret.key=s3cr\\=t\\:value\n"
    );
    assert_eq!(std::fs::read_to_string(seen.join("props2")).unwrap(), props);
    // Nothing of it is left open in tether.
    let open: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|l| l.display().to_string())
        .filter(|l| l.contains("tether-spark-conf"))
        .collect();
    assert_eq!(open, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_real_spark_submit_reads_secret_conf_from_the_memory_file_and_no_process_shows_it() {
    let rest = cluster().rest.trim_start_matches("http://").to_string();
    let tag = marker("secret");
    let secret = format!("pw-{}", tag.rsplit('-').next().unwrap());
    let mut submit = job(format!("spark://{rest}"), &tag);
    submit.conf.set("spark.tether.test.password", &secret);
    // Watch every process's command line while spark-submit runs (the launcher, its JVM).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, secret) = (stop.clone(), secret.clone());
        std::thread::spawn(move || {
            let (mut shown, mut driver_has_it) = (Vec::new(), false);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for pid in processes_with(&secret) {
                    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                    if !cmd.contains(&secret) {
                        // Gone between the two reads (an ended process's cmdline reads empty).
                        continue;
                    }
                    // The driver the worker launches carries its conf as -D options: Spark's
                    // doing, after submission; what must not show it is the submitting side.
                    if cmd.contains("DriverWrapper") {
                        driver_has_it = true;
                    } else {
                        shown.push(cmd);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            (shown, driver_has_it)
        })
    };
    let submitted = submit.run().await;
    let id = submitted
        .unwrap_or_else(|e| panic!("spark-submit against the real cluster: {e}"))
        .id
        .0;
    // The worker logs the launch command redacted; the key is there, so Spark got the conf.
    let launched = launch_command(&id);
    assert!(
        launched.contains("spark.tether.test.password"),
        "{launched}"
    );
    assert!(wait_gone(&tag), "the driver (sleep 1) ended");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (shown, driver_has_it) = watcher.join().unwrap();
    assert_eq!(
        shown,
        Vec::<String>::new(),
        "the secret was in a command line"
    );
    // The value itself arrived intact: the driver JVM was started with it.
    assert!(driver_has_it, "no driver process carried the secret value");
}
