//! The library's worker driven in-process against a real SQLite file and the local connector
//! (real processes). This binary is also the local jobs' supervisor, as the `tether` binary is
//! in production, hence `harness = false`.
use std::{sync::Arc, time::Duration};

use tether_core::{
    engine::{LeaseSettings, Quiet},
    ids::RunKey,
    journal::Phase,
    spec::spec_hash,
    store::NewRun,
};
use tether_fleet::{
    logs::LogsOptions,
    view::RunView,
    worker::{WorkerEnd, WorkerError, WorkerHooks, WorkerOptions},
    Config, Ctx,
};

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("__supervise") {
        let code = tether_connectors::local::supervisor::supervise_main(&argv[2..]);
        std::process::exit(code);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(a_library_worker_runs_a_submitted_run_and_stops_when_asked());
    println!("test a_library_worker_runs_a_submitted_run_and_stops_when_asked ... ok");
    rt.block_on(unusable_options_are_refused_before_the_store_is_touched());
    println!("test unusable_options_are_refused_before_the_store_is_touched ... ok");
    rt.block_on(a_workers_short_local_job_is_seen_ending_at_once());
    println!("test a_workers_short_local_job_is_seen_ending_at_once ... ok");
}

async fn unusable_options_are_refused_before_the_store_is_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context(tmp.path());
    let hooks = WorkerHooks {
        observer: Arc::new(Quiet),
        notices: Arc::new(|_| {}),
    };
    let r = tether_fleet::worker::worker(
        &ctx,
        WorkerOptions::new(0, 1),
        hooks,
        std::future::pending(),
    )
    .await;
    assert!(matches!(r, Err(WorkerError::Options(_))), "{r:?}");
    assert!(!tmp.path().join("state.db").exists(), "nothing was created");
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

async fn a_library_worker_runs_a_submitted_run_and_stops_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context(tmp.path());
    let spec = "[job]\nkind = \"local\"\ncommand = [\"sh\", \"-c\", \"echo hello from the job\"]\n";
    let key = RunKey::new("lib-1").unwrap();
    queue(tmp.path(), "hello.toml", spec, &key).await;
    let store = ctx.store().await.unwrap();
    let (stop_tx, worker) = start_worker(tmp.path());

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let run = loop {
        let run = store.get_run(&key).await.unwrap().unwrap();
        if matches!(run.journal.phase, Phase::Finished { .. }) {
            break run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run never finished: {run:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!worker.is_finished(), "the worker stops only when asked");
    stop_tx.send(()).unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("the worker stops when asked")
        .unwrap()
        .unwrap();
    assert_eq!(end, WorkerEnd::Stopped);

    // The view has its documented fields, with this run's values.
    let subs = store.submissions(&key).await.unwrap();
    let v = serde_json::to_value(RunView::new(&run, &subs)).unwrap();
    let fields = [
        "key",
        "kind",
        "spec_name",
        "state",
        "phase",
        "cancel_requested",
        "generation",
        "external_id",
        "epoch",
        "owner",
        "lease_alive",
        "queued",
        "placement",
        "created_at_ms",
        "updated_at_ms",
        "submissions",
    ];
    let obj = v.as_object().unwrap();
    for f in fields {
        assert!(obj.contains_key(f), "missing {f}: {v}");
    }
    assert!(
        !obj.contains_key("replayed"),
        "only run/rerun say replayed: {v}"
    );
    assert_eq!(v["key"], "lib-1");
    assert_eq!(v["state"], "succeeded", "{v}");
    assert_eq!(v["generation"], 1, "{v}");
    assert_eq!(v["queued"], true, "{v}");
    assert_eq!(v["submissions"].as_array().unwrap().len(), 1, "{v}");
    assert!(
        v["epoch"].as_i64().unwrap() >= 1,
        "claimed at least once: {v}"
    );

    // The job's output through the library's log reader.
    let mut seen = Vec::new();
    let mut out = |d: &[u8]| {
        seen.extend_from_slice(d);
        true
    };
    tether_fleet::logs::logs(&ctx, &key, &LogsOptions::new(), &mut out)
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&seen), "hello from the job\n");
}

/// The worker's connector wrappers (slots, metrics, bulk observation) pass the local
/// connector's wait for the job's end through: a minute's poll interval is not waited out.
async fn a_workers_short_local_job_is_seen_ending_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context(tmp.path());
    let spec = "poll_interval = \"1m\"\n[job]\nkind = \"local\"\ncommand = [\"sleep\", \"0.5\"]\n";
    let key = RunKey::new("lib-short").unwrap();
    queue(tmp.path(), "short.toml", spec, &key).await;
    let store = ctx.store().await.unwrap();
    let (stop_tx, worker) = start_worker(tmp.path());
    // Waiting out the interval would take a minute.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let run = store.get_run(&key).await.unwrap().unwrap();
        if matches!(run.journal.phase, Phase::Finished { .. }) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the end of a 0.5 s job was not seen within 30 s (poll interval 1 min): {run:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_tx.send(()).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
}

/// Queues a run of `spec` under `key` in `dir`'s store.
async fn queue(dir: &std::path::Path, name: &str, spec: &str, key: &RunKey) {
    let ctx = context(dir);
    let built = ctx.connector_to_submit(name, spec).unwrap();
    let store = ctx.store().await.unwrap();
    store
        .create_run(&NewRun {
            key: key.clone(),
            kind: built.connector.kind().to_string(),
            spec_hash: spec_hash(spec),
            spec: spec.into(),
            spec_name: name.into(),
            queued: true,
            base_dir: Some(dir.display().to_string()),
        })
        .await
        .unwrap();
}

type Worker = tokio::task::JoinHandle<Result<WorkerEnd, WorkerError>>;

/// A library worker on `dir`'s store, stopped when the sender is used.
fn start_worker(dir: &std::path::Path) -> (tokio::sync::oneshot::Sender<()>, Worker) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker_ctx = context(dir);
    let worker = tokio::spawn(async move {
        let hooks = WorkerHooks {
            observer: Arc::new(Quiet),
            notices: Arc::new(|_| {}),
        };
        let stop = async {
            let _ = stop_rx.await;
        };
        tether_fleet::worker::worker(&worker_ctx, WorkerOptions::new(4, 2), hooks, stop).await
    });
    (stop_tx, worker)
}
