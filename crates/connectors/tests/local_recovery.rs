//! The local backend against real processes: the recovery slot (a recovery job runs alone,
//! its overrides) and the job's logs read from an offset.
#![cfg(feature = "local")]

mod local_common;

use std::{fs, time::Duration};

use local_common::*;
use tether_core::{
    connector::{JobRef, LogCursor, LogError, LogStream},
    ids::ExternalId,
    journal::Shape,
    observe::{ActiveState, FailureClass, JobStatus},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_job_runs_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let work = tmp.path();
    // Jobs that run until their "go" file appears, and leave a mark that they ran.
    let gated = |name: &str| {
        connector(
            &ctx,
            &format!(
                "command = [\"sh\", \"-c\", \"touch {name}.ran; while [ ! -e {name}.go ]; do sleep 0.05; done\"]\nworkdir = {}",
                toml_str(work)
            ),
        )
    };
    let rec_c = gated("recovery");
    let normal_c = gated("normal");
    let recovery = submit(&*rec_c, &request("alone-recovery", Shape::Recovery)).await;
    wait_file(&work.join("recovery.ran")).await;
    let normal = submit(&*normal_c, &request("alone-normal", Shape::Normal)).await;
    // While the recovery job runs, the normal one waits for the slot (and never starts).
    for _ in 0..5 {
        match normal_c.status(&normal).await {
            JobStatus::Active { detail, state } => {
                assert!(detail.contains("waiting for the local slot"), "{detail}");
                // In this job's words: it is not the one that runs alone.
                assert!(detail.contains("this job starts when it ends"), "{detail}");
                assert_eq!(state, ActiveState::Queued, "waiting for the slot is queued");
            }
            other => panic!("expected the normal job to wait, got {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !work.join("normal.ran").exists(),
        "a normal job started beside a recovery job"
    );
    fs::write(work.join("recovery.go"), "").unwrap();
    assert!(matches!(
        wait_terminal(&*rec_c, &recovery).await,
        JobStatus::Succeeded { .. }
    ));
    wait_file(&work.join("normal.ran")).await;
    // And the other way round: a recovery job waits for a running normal job.
    let recovery2 = submit(&*rec_c, &request("alone-recovery-2", Shape::Recovery)).await;
    match rec_c.status(&recovery2).await {
        JobStatus::Active { detail, .. } => {
            assert!(detail.contains("waiting for the local slot"), "{detail}");
            assert!(
                detail.contains("waits for the other local jobs"),
                "{detail}"
            )
        }
        other => panic!("expected the recovery job to wait, got {other:?}"),
    }
    fs::write(work.join("normal.go"), "").unwrap();
    assert!(matches!(
        wait_terminal(&*normal_c, &normal).await,
        JobStatus::Succeeded { .. }
    ));
    assert!(matches!(
        wait_terminal(&*rec_c, &recovery2).await,
        JobStatus::Succeeded { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_waiting_for_the_slot_never_starts_the_job() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let work = tmp.path();
    let blocker = connector(&ctx, r#"command = ["sleep", "3600"]"#);
    let waiter = connector(
        &ctx,
        &format!(
            "command = [\"touch\", \"waiter.ran\"]\nworkdir = {}",
            toml_str(work)
        ),
    );
    let running = submit(&*blocker, &request("slot-blocker", Shape::Recovery)).await;
    wait_for(
        &*blocker,
        &running,
        "running",
        |s| matches!(s, JobStatus::Active { detail, .. } if detail.contains("running")),
    )
    .await;
    let waiting = submit(&*waiter, &request("slot-waiter", Shape::Normal)).await;
    waiter.cancel(&waiting).await.unwrap();
    match wait_terminal(&*waiter, &waiting).await {
        JobStatus::Failed {
            class: FailureClass::Killed,
            message,
        } => assert!(message.contains("before it started"), "{message}"),
        other => panic!("expected Failed(Killed), got {other:?}"),
    }
    blocker.cancel(&running).await.unwrap();
    wait_terminal(&*blocker, &running).await;
    assert!(
        !work.join("waiter.ran").exists(),
        "a cancelled waiting job must never start"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_overrides_are_applied_and_described() {
    let tmp = tempfile::tempdir().unwrap();
    let b = built(
        &ctx(tmp.path()),
        "command = [\"sh\", \"-c\", \"echo normal\"]\nenv = { A = \"1\" }\nmemory_limit = \"100MiB\"",
        "[recovery]\nargs = [\"-c\", \"echo recovered $A $B\"]\nenv = { B = \"2\" }\nmemory_limit = \"1GiB\"",
    );
    assert!(b.policy.recovery);
    let c = b.connector;
    let described = c.recovery().expect("recovery shape offered").describe();
    assert!(described.contains("runs alone"), "{described}");
    assert!(
        described.contains("memory_limit 100MiB -> 1GiB"),
        "{described}"
    );
    let job = submit(&*c, &request("recovery-overrides", Shape::Recovery)).await;
    assert!(matches!(
        wait_terminal(&*c, &job).await,
        JobStatus::Succeeded { .. }
    ));
    let logs = c
        .logs()
        .unwrap()
        .read_logs(&job, LogStream::Stdout, &LogCursor::start(), 1 << 20)
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&logs.data), "recovered 1 2\n");
}

#[test]
fn recovery_is_on_without_a_table_and_off_when_disabled() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let b = built(&ctx, r#"command = ["true"]"#, "");
    assert!(
        b.policy.recovery,
        "local jobs recover by running alone even without [recovery]"
    );
    assert!(b
        .connector
        .recovery()
        .unwrap()
        .describe()
        .contains("runs alone"));
    assert_eq!(b.policy.poll_interval, Duration::from_millis(500));
    let b = built(&ctx, r#"command = ["true"]"#, "[recovery]\nenabled = false");
    assert!(!b.policy.recovery);
    assert!(b.connector.recovery().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_readable_from_an_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let c = connector(
        &ctx(tmp.path()),
        r#"command = ["sh", "-c", "echo hello; echo oops >&2"]"#,
    );
    let job = submit(&*c, &request("logs", Shape::Normal)).await;
    wait_terminal(&*c, &job).await;
    let logs = c.logs().unwrap();
    let out = logs
        .read_logs(&job, LogStream::Stdout, &LogCursor::start(), 1024)
        .await
        .unwrap();
    assert_eq!(out.data, b"hello\n");
    assert_eq!(out.next, LogCursor::at_byte(6));
    let tail = logs
        .read_logs(&job, LogStream::Stdout, &LogCursor::at_byte(2), 2)
        .await
        .unwrap();
    assert_eq!(
        (tail.data.as_slice(), tail.next),
        (&b"ll"[..], LogCursor::at_byte(4))
    );
    let end = logs
        .read_logs(&job, LogStream::Stdout, &LogCursor::at_byte(6), 1024)
        .await
        .unwrap();
    assert_eq!((end.data.len(), end.next), (0, LogCursor::at_byte(6)));
    let err = logs
        .read_logs(&job, LogStream::Stderr, &LogCursor::start(), 1024)
        .await
        .unwrap();
    assert_eq!(err.data, b"oops\n");
    // A cursor another connector made (Livy pages by line) is refused, not read as an offset.
    let foreign = LogCursor::from_token("l3");
    match logs.read_logs(&job, LogStream::Stdout, &foreign, 10).await {
        Err(e @ LogError::ForeignCursor { .. }) => assert!(e.to_string().contains("\"l3\"")),
        other => panic!("a foreign cursor was read: {other:?}"),
    }
    let other = JobRef {
        external_id: ExternalId("1:1".into()),
        submission: job.submission.clone(),
    };
    assert!(
        logs.read_logs(&other, LogStream::Stdout, &LogCursor::start(), 10)
            .await
            .is_err(),
        "logs of another job's id"
    );
}
