//! Awaiting a local job between two status calls (`Connector::wait_change`): the wait ends
//! when the job ends, not a poll interval later, and lasts the whole interval while it runs.
#![cfg(feature = "local")]

mod local_common;

use std::time::{Duration, Instant};

use local_common::*;
use tether_core::{journal::Shape, observe::JobStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_ends_when_a_short_job_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let c = connector(&ctx(tmp.path()), r#"command = ["sleep", "0.5"]"#);
    let job = submit(&*c, &request("short", Shape::Normal)).await;
    assert!(
        matches!(c.status(&job).await, JobStatus::Active { .. }),
        "the job runs right after submit"
    );
    let t = Instant::now();
    // A poll interval far longer than the job: the old sleep would last all of it.
    c.wait_change(&job, Duration::from_secs(60)).await;
    let waited = t.elapsed();
    assert!(
        waited < Duration::from_secs(20),
        "the wait lasted {waited:?}, not until the job's end"
    );
    assert!(
        matches!(c.status(&job).await, JobStatus::Succeeded { .. }),
        "right after the wait the end is recorded"
    );
    // An ended job's wait returns at once: its end is recorded, the caller asks again.
    let t = Instant::now();
    c.wait_change(&job, Duration::from_secs(60)).await;
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_lasts_the_interval_while_the_job_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let c = connector(&ctx(tmp.path()), r#"command = ["sleep", "600"]"#);
    let job = submit(&*c, &request("long", Shape::Normal)).await;
    let t = Instant::now();
    c.wait_change(&job, Duration::from_millis(700)).await;
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(700),
        "returned after {waited:?} although the job still runs"
    );
    assert!(matches!(c.status(&job).await, JobStatus::Active { .. }));
    c.cancel(&job).await.unwrap();
    wait_terminal(&*c, &job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_supervisor_is_gone_is_not_awaited_in_a_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let c = connector(&ctx(tmp.path()), r#"command = ["sleep", "600"]"#);
    let job = submit(&*c, &request("orphan", Shape::Normal)).await;
    let sup: i32 = job
        .external_id
        .0
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // SIGKILL the supervisor: the job runs on unsupervised, `status` still says active.
    assert!(std::process::Command::new("kill")
        .args(["-KILL", &sup.to_string()])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + PATIENCE;
    while pid_alive(sup) {
        assert!(
            Instant::now() < deadline,
            "supervisor {sup} survived SIGKILL"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(c.status(&job).await, JobStatus::Active { .. }));
    let t = Instant::now();
    c.wait_change(&job, Duration::from_millis(500)).await;
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "a dead supervisor must not end the wait at once (the engine would spin)"
    );
    c.cancel(&job).await.unwrap();
    wait_for(&*c, &job, "stopped", |st| {
        !matches!(st, JobStatus::Active { .. })
    })
    .await;
}
