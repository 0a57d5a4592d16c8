//! The local backend against real processes: cancel (the whole process group, escalation)
//! and process identity (a reused pid, another boot, a SIGKILLed supervisor).
#![cfg(feature = "local")]

mod local_common;

use std::{fs, time::Duration};

use local_common::*;
use tether_connectors::local::{
    identity::{boot_id, Identity, ProcStat},
    layout::{JobProcess, SupervisorRecord, FORMAT_VERSION},
};
use tether_core::{
    connector::JobRef,
    ids::ExternalId,
    journal::Shape,
    observe::{FailureClass, JobStatus, Lookup},
    Connector,
};

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
    cancel_and_expect_killed(&*c, &job).await;
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
    cancel_and_expect_killed(&*c, &job).await;
}

/// Writes a forged `supervisor.json` for `tag` naming `identity` (and the same process as job).
/// Cancels `job` and waits until the connector reports it killed.
async fn cancel_and_expect_killed(c: &dyn Connector, job: &JobRef) {
    c.cancel(job).await.unwrap();
    match wait_terminal(c, job).await {
        JobStatus::Failed {
            class: FailureClass::Killed,
            ..
        } => {}
        other => panic!("expected Failed(Killed), got {other:?}"),
    }
}

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
