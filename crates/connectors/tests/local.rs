//! The local backend against real processes: the conformance suite, limits, cancel, identity,
//! the recovery slot, logs and spec errors. (Surviving a SIGKILLed submitter is in
//! `local_submitter.rs`, which needs a process of its own.)
#![cfg(feature = "local")]

mod local_common;

use std::{fs, os::unix::fs::PermissionsExt, time::Duration};

use local_common::*;
use tether_connectors::{
    conformance::{self, Fixture, Verdict},
    local::{
        identity::{boot_id, Identity, ProcStat},
        layout::{JobProcess, SupervisorRecord, FORMAT_VERSION},
    },
};
use tether_core::{
    connector::{JobRef, LogCursor, LogError, LogStream, SubmitError},
    ids::ExternalId,
    journal::Shape,
    observe::{ActiveState, FailureClass, JobStatus, Lookup},
};

fn fixture(root: &std::path::Path) -> Fixture {
    let ctx = ctx(root);
    Fixture {
        name: "local".into(),
        succeeds: connector(&ctx, r#"command = ["sh", "-c", "sleep 0.2; echo ok"]"#),
        fails: connector(&ctx, r#"command = ["sh", "-c", "echo broken >&2; exit 3"]"#),
        runs_long: connector(&ctx, r#"command = ["sleep", "3600"]"#),
        unknown_id: ExternalId("999999999:1".into()),
        timeout: PATIENCE,
        poll: Duration::from_millis(100),
    }
}

macro_rules! conformance_check {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let tmp = tempfile::tempdir().unwrap();
            let verdict = conformance::$name(&fixture(tmp.path()))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                verdict,
                Verdict::Passed,
                "the local backend offers every capability"
            );
        }
    };
}

mod conformance_suite {
    use super::*;
    conformance_check!(submit_then_succeeds);
    conformance_check!(find_by_tag_finds_the_job);
    conformance_check!(foreign_tag_is_a_mismatch);
    conformance_check!(unknown_id_is_not_found);
    conformance_check!(cancel_kills_a_long_job);
    conformance_check!(failing_job_fails);
    conformance_check!(submit_twice_is_one_job);
    conformance_check!(recovery_shape_runs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_reports_exit_code_peak_memory_and_duration() {
    let tmp = tempfile::tempdir().unwrap();
    // A short spike of 64 MiB: peak memory must not depend on a sampler catching it.
    let c = connector(
        &ctx(tmp.path()),
        r#"command = ["python3", "-c", "b = b'x' * (64 << 20)"]"#,
    );
    let job = submit(&*c, &request("ok-result", Shape::Normal)).await;
    let (pid, _) = job
        .external_id
        .0
        .split_once(':')
        .expect("external id is pid:starttime");
    let supervisor: i32 = pid.parse().unwrap();
    // The supervisor is nobody's child here: it cannot linger as our zombie.
    if let Ok(stat) = ProcStat::read(supervisor) {
        assert_ne!(
            stat.ppid,
            i32::try_from(std::process::id()).unwrap(),
            "the supervisor is our child"
        );
    }
    match wait_terminal(&*c, &job).await {
        JobStatus::Succeeded { result } => {
            assert_eq!(result["exit_code"], 0);
            assert!(
                result["peak_rss_bytes"].as_u64().unwrap() >= 64 << 20,
                "{result}"
            );
            assert!(result["duration_ms"].is_u64(), "{result}");
        }
        other => panic!("expected success, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_zero_exit_is_other_and_names_the_code() {
    let tmp = tempfile::tempdir().unwrap();
    let c = connector(&ctx(tmp.path()), r#"command = ["sh", "-c", "exit 7"]"#);
    let job = submit(&*c, &request("exit-7", Shape::Normal)).await;
    match wait_terminal(&*c, &job).await {
        JobStatus::Failed {
            class: FailureClass::Other,
            message,
        } => assert!(message.contains("code 7"), "{message}"),
        other => panic!("expected Failed(Other), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_program_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let c = connector(
        &ctx(tmp.path()),
        r#"command = ["/nonexistent/tether-test-program"]"#,
    );
    let req = request("no-program", Shape::Normal);
    match c.submit(&req).await {
        Err(SubmitError::Rejected { message }) => assert!(
            message.contains("tether-test-program") && message.contains("does not exist"),
            "{message}"
        ),
        other => panic!("expected Rejected, got {other:?}"),
    }
    let dir = tmp.path().join("jobs").join(req.submission.tag.as_str());
    assert!(
        !dir.join("supervisor.json").exists(),
        "no supervisor was started"
    );
}

/// A program that exists but cannot be executed (its interpreter is missing: `ENOENT` at
/// `exec`, which no check before the fact sees) is rejected by `submit` once the supervisor
/// recorded the failure, instead of being a job that failed (and would be resubmitted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_failure_that_cannot_heal_is_rejected_at_submit() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("orphan.sh");
    fs::write(&script, "#!/nonexistent/interpreter\necho never\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let c = connector(
        &ctx(tmp.path()),
        &format!("command = [{}]", toml_str(&script)),
    );
    match c.submit(&request("orphan", Shape::Normal)).await {
        Err(SubmitError::Rejected { message }) => assert!(
            message.contains("orphan.sh") && message.contains("No such file"),
            "{message}"
        ),
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_kills_the_job_as_oom() {
    let tmp = tempfile::tempdir().unwrap();
    // 400 MB of real (touched) bytes, then a long sleep so the limit has every chance to bite.
    let c = connector(
        &ctx(tmp.path()),
        r#"command = ["python3", "-c", "import time; b = b'x' * (400 << 20); time.sleep(600)"]
memory_limit = "100MiB""#,
    );
    let job = submit(&*c, &request("oom", Shape::Normal)).await;
    match wait_terminal(&*c, &job).await {
        JobStatus::Failed {
            class: FailureClass::Oom,
            message,
        } => {
            assert!(message.contains("memory_limit"), "{message}")
        }
        other => panic!("expected Failed(Oom), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_the_job() {
    let tmp = tempfile::tempdir().unwrap();
    let c = connector(
        &ctx(tmp.path()),
        "command = [\"sleep\", \"3600\"]\ntimeout = \"1s\"",
    );
    let job = submit(&*c, &request("timeout", Shape::Normal)).await;
    match wait_terminal(&*c, &job).await {
        JobStatus::Failed {
            class: FailureClass::Other,
            message,
        } => assert!(message.contains("timeout"), "{message}"),
        other => panic!("expected Failed(Other) for a timeout, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_the_whole_process_group() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().to_path_buf();
    let c = connector(
        &ctx(tmp.path()),
        &format!(
            "command = [\"sh\", \"-c\", \"sleep 3600 & echo $! > child.pid; wait\"]\nworkdir = {}",
            toml_str(&work)
        ),
    );
    let job = submit(&*c, &request("cancel-group", Shape::Normal)).await;
    let child_pid = work.join("child.pid");
    wait_file(&child_pid).await;
    let child: i32 = loop {
        // The shell may not have finished writing the line yet.
        if let Ok(pid) = fs::read_to_string(&child_pid)
            .unwrap_or_default()
            .trim()
            .parse()
        {
            break pid;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        pid_alive(child),
        "the job's child should run before the cancel"
    );
    c.cancel(&job).await.unwrap();
    match wait_terminal(&*c, &job).await {
        JobStatus::Failed {
            class: FailureClass::Killed,
            ..
        } => {}
        other => panic!("expected Failed(Killed), got {other:?}"),
    }
    wait_dead(child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_escalates_to_sigkill_when_sigterm_is_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let c = connector(
        &ctx(tmp.path()),
        r#"command = ["sh", "-c", "trap '' TERM; echo started; sleep 3600"]"#,
    );
    let job = submit(&*c, &request("cancel-stubborn", Shape::Normal)).await;
    wait_for(
        &*c,
        &job,
        "running",
        |s| matches!(s, JobStatus::Active { detail, .. } if detail.contains("running")),
    )
    .await;
    c.cancel(&job).await.unwrap();
    match wait_terminal(&*c, &job).await {
        JobStatus::Failed {
            class: FailureClass::Killed,
            ..
        } => {}
        other => panic!("expected Failed(Killed), got {other:?}"),
    }
}

/// Writes a forged `supervisor.json` for `tag` naming `identity` (and the same process as job).
fn forge(root: &std::path::Path, tag: &str, identity: Identity) {
    let dir = root.join("jobs").join(tag);
    fs::create_dir_all(&dir).unwrap();
    let job = JobProcess {
        pid: identity.pid,
        pgid: identity.pid,
        start_time: identity.start_time,
        started_at_ms: 0,
        memory_enforcement: "none".into(),
    };
    let record = SupervisorRecord {
        version: FORMAT_VERSION,
        tag: tag.into(),
        supervisor: identity,
        job: Some(job),
        waiting_for_slot: false,
    };
    fs::write(
        dir.join("supervisor.json"),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_pid_is_not_taken_for_our_job_and_is_never_signalled() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let c = connector(&ctx, r#"command = ["true"]"#);
    // Our own (live) pid, with a start time it does not have: what a reused pid looks like.
    let me = i32::try_from(std::process::id()).unwrap();
    let real = ProcStat::read(me).unwrap().start_time;
    let forged = Identity {
        pid: me,
        start_time: real + 12345,
        boot_id: boot_id().unwrap(),
    };
    let req = request("reused-pid", Shape::Normal);
    forge(tmp.path(), req.submission.tag.as_str(), forged.clone());
    let job = JobRef {
        external_id: ExternalId(forged.external_id()),
        submission: req.submission.clone(),
    };
    match c.status(&job).await {
        JobStatus::NotFound { detail } => assert!(detail.contains("another process"), "{detail}"),
        other => panic!("a reused pid must not look active: {other:?}"),
    }
    // Cancel must not signal the process that now has the pid (us: we would die here).
    let _ = c.cancel(&job).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(pid_alive(me));
    // And a submit for that tag does not start a second job: it returns the recorded id.
    assert_eq!(c.submit(&req).await.unwrap(), job.external_id);
    assert_eq!(
        c.find_by_tag()
            .unwrap()
            .find_by_tag(&req.submission.tag)
            .await,
        Lookup::Found {
            external_id: job.external_id.clone()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_from_another_boot_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let c = connector(&ctx(tmp.path()), r#"command = ["true"]"#);
    let mut me = Identity::of_self().unwrap();
    me.boot_id = "00000000-0000-0000-0000-000000000000".into();
    let req = request("other-boot", Shape::Normal);
    forge(tmp.path(), req.submission.tag.as_str(), me.clone());
    let job = JobRef {
        external_id: ExternalId(me.external_id()),
        submission: req.submission,
    };
    match c.status(&job).await {
        JobStatus::NotFound { detail } => assert!(
            detail.contains("rebooted") && detail.contains("lost"),
            "{detail}"
        ),
        other => panic!("a job from before a reboot must be lost, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_supervisor_leaves_the_job_active_until_it_ends_then_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let c = connector(&ctx(tmp.path()), r#"command = ["sleep", "3600"]"#);
    let req = request("supervisor-killed", Shape::Normal);
    let job = submit(&*c, &req).await;
    wait_for(
        &*c,
        &job,
        "running",
        |s| matches!(s, JobStatus::Active { detail, .. } if detail.contains("running")),
    )
    .await;
    let dir = ctx(tmp.path()).jobs_dir.join(req.submission.tag.as_str());
    let record: SupervisorRecord =
        serde_json::from_slice(&fs::read(dir.join("supervisor.json")).unwrap()).unwrap();
    let job_pid = record.job.as_ref().unwrap().pid;
    let status = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(record.supervisor.pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    // While the job itself runs, it is active (unsupervised): a resubmission now would run a
    // second copy beside it.
    wait_for(
        &*c,
        &job,
        "unsupervised",
        |s| matches!(s, JobStatus::Active { detail, .. } if detail.contains("unsupervised")),
    )
    .await;
    assert!(pid_alive(job_pid), "the job runs on without its supervisor");
    c.cancel(&job).await.unwrap();
    wait_dead(job_pid).await;
    // Once it is gone, nobody knows how it ended: lost.
    match wait_for(&*c, &job, "lost", |s| {
        !matches!(s, JobStatus::Active { .. })
    })
    .await
    {
        JobStatus::NotFound { detail } => assert!(detail.contains("lost"), "{detail}"),
        other => panic!("expected NotFound (lost), got {other:?}"),
    }
}

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

#[test]
fn bad_specs_name_file_line_column_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let err = |text: &str| match build("bad.toml", text, &ctx) {
        Ok(_) => panic!("accepted a bad spec:\n{text}"),
        Err(e) => e.to_string(),
    };
    let m = err("[job]\nkind = \"local\"\n");
    assert!(m.starts_with("bad.toml:") && m.contains("command"), "{m}");
    let m = err("[job]\nkind = \"local\"\ncommand = \"true\"\n");
    assert!(m.starts_with("bad.toml:3:"), "{m}");
    let m = err("[job]\nkind = \"local\"\ncommand = [\"true\"]\ncolour = \"red\"\n");
    assert!(
        m.starts_with("bad.toml:4:1:") && m.contains("colour"),
        "{m}"
    );
    let m = err("[job]\nkind = \"local\"\ncommand = [\"true\"]\nmemory_limit = \"lots\"\n");
    assert!(m.starts_with("bad.toml:4:") && m.contains("size"), "{m}");
    let m = err("[job]\nkind = \"local\"\ncommand = [\"true\"]\n[recovery]\nmemory = \"1GiB\"\n");
    assert!(
        m.starts_with("bad.toml:5:1:") && m.contains("memory"),
        "{m}"
    );
    let m = err("[job]\nkind = \"local\"\ncommand = []\n");
    assert!(
        m.starts_with("bad.toml: job.command:") && m.contains("empty"),
        "{m}"
    );
    let m = err("[job]\nkind = \"local\"\ncommand = [\"true\"]\n[recovery]\ncommand = [\"a\"]\nargs = [\"b\"]\n");
    assert!(m.contains("recovery.args") && m.contains("not both"), "{m}");
    let m = err("[job]\nkind = \"local\"\ncommand = [\"true\"]\n[recovery]\nenabled = false\ntimeout = \"1m\"\n");
    assert!(m.contains("recovery.enabled"), "{m}");
    let m = err("[job]\nkind = \"local\"\ncommand = [\"true\"]\ntimeout = \"0s\"\n");
    assert!(m.contains("job.timeout"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submits_of_one_tag_start_one_job() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let ctx = ctx(work);
    // Every start of the job appends a line: two lines would be two jobs.
    let job = format!(
        "command = [\"sh\", \"-c\", \"echo started >> starts\"]\nworkdir = {}",
        toml_str(work)
    );
    let (a, b) = (connector(&ctx, &job), connector(&ctx, &job));
    let req = request("concurrent", Shape::Normal);
    let (ja, jb) = tokio::join!(submit(&*a, &req), submit(&*b, &req));
    assert_eq!(ja.external_id, jb.external_id);
    assert!(matches!(
        wait_terminal(&*a, &ja).await,
        JobStatus::Succeeded { .. }
    ));
    assert_eq!(
        fs::read_to_string(work.join("starts")).unwrap(),
        "started\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_written_directory_without_supervisor_is_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let c = connector(&ctx, r#"command = ["true"]"#);
    let req = request("half-written", Shape::Normal);
    // A crash between creating the directory and starting the supervisor leaves this.
    let dir = ctx.jobs_dir.join(req.submission.tag.as_str());
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("job.json"), "{ truncated").unwrap();
    assert_eq!(
        c.find_by_tag()
            .unwrap()
            .find_by_tag(&req.submission.tag)
            .await,
        Lookup::Absent
    );
    let job = submit(&*c, &req).await;
    assert!(matches!(
        wait_terminal(&*c, &job).await,
        JobStatus::Succeeded { .. }
    ));
}
