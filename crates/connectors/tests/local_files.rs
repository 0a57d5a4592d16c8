//! The local backend's files against a hostile neighbour, with real files and processes: modes
//! under umask 000, planted symbolic links, records and locks owned by another user (made with
//! `chown` to uid 65534, so these tests need root), directories writable by others.
//!
//! Every test here sets the umask to 000 first (it is per process, and this binary is only
//! these tests), so every file the connector and its supervisor create is checked under it.
#![cfg(feature = "local")]

mod local_common;

use std::{
    fs,
    os::unix::fs::{chown, symlink, DirBuilderExt, MetadataExt, PermissionsExt},
    path::Path,
    process::Command,
};

use local_common::*;
use tether_connectors::local::{
    identity::Identity,
    layout::{JobProcess, SupervisorRecord, FORMAT_VERSION},
};
use tether_core::{
    connector::{JobRef, SubmitError},
    ids::ExternalId,
    journal::Shape,
    observe::{FailureClass, JobStatus, Lookup},
};

const NOBODY: u32 = 65534;

fn umask_000() {
    // SAFETY: umask only swaps an integer of the process; it cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::umask(0);
    }
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directories_are_0700_and_files_0600_under_umask_000() {
    umask_000();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let c = connector(&ctx, r#"command = ["sh", "-c", "echo out; echo err >&2"]"#);
    let req = request("modes", Shape::Normal);
    let job = submit(&*c, &req).await;
    assert!(matches!(
        wait_terminal(&*c, &job).await,
        JobStatus::Succeeded { .. }
    ));
    let jobs = tmp.path().join("jobs");
    let dir = jobs.join(req.submission.tag.as_str());
    assert_eq!(mode(&jobs), 0o700);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&jobs.join("local.lock")), 0o600);
    let mut seen = Vec::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    seen.sort();
    for name in [
        "job.json",
        "status.json",
        "stderr.log",
        "stdout.log",
        "supervisor.json",
        "supervisor.lock",
    ] {
        assert!(seen.iter().any(|s| s == name), "{name} missing in {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_stdout_symlink_is_never_followed() {
    umask_000();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let c = connector(&ctx, r#"command = ["echo", "job output"]"#);
    let req = request("planted", Shape::Normal);
    let dir = tmp.path().join("jobs").join(req.submission.tag.as_str());
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .unwrap();
    let victim = tmp.path().join("victim.txt");
    fs::write(&victim, "precious\n").unwrap();
    symlink(&victim, dir.join("stdout.log")).unwrap();
    let job = submit(&*c, &req).await;
    match wait_terminal(&*c, &job).await {
        JobStatus::Failed {
            class: FailureClass::Rejected,
            message,
        } => assert!(message.contains("symbolic link"), "{message}"),
        other => panic!("expected a refused start, got {other:?}"),
    }
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
}

/// Another user plants `supervisor.json` naming one of their processes: tether must neither
/// take it for the job (status, lookup, submit) nor signal it (cancel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_owned_by_another_user_is_never_trusted_nor_signalled() {
    umask_000();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let c = connector(&ctx, r#"command = ["true"]"#);
    let req = request("foreign", Shape::Normal);
    let dir = tmp.path().join("jobs").join(req.submission.tag.as_str());
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .unwrap();
    let mut stranger = Command::new("sleep").arg("600").spawn().unwrap();
    let pid = i32::try_from(stranger.id()).unwrap();
    let identity = Identity::of_pid(pid).unwrap();
    let record = SupervisorRecord {
        version: FORMAT_VERSION,
        tag: req.submission.tag.as_str().into(),
        supervisor: identity.clone(),
        job: Some(JobProcess {
            pid,
            pgid: pid,
            start_time: identity.start_time,
            started_at_ms: 0,
            memory_enforcement: "none".into(),
        }),
        waiting_for_slot: false,
    };
    let path = dir.join("supervisor.json");
    fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();

    let job = JobRef {
        external_id: ExternalId(identity.external_id()),
        submission: req.submission.clone(),
    };
    match c.status(&job).await {
        JobStatus::Unknown { reason } => assert!(reason.contains("uid 65534"), "{reason}"),
        other => panic!("a foreign record was trusted: {other:?}"),
    }
    let lookup = c
        .find_by_tag()
        .unwrap()
        .find_by_tag(&req.submission.tag)
        .await;
    assert!(matches!(lookup, Lookup::Unknown { .. }), "{lookup:?}");
    match c.submit(&req).await {
        Err(SubmitError::Ambiguous { reason }) => assert!(reason.contains("uid 65534"), "{reason}"),
        other => panic!("submit adopted or overwrote a foreign record: {other:?}"),
    }
    let e = c.cancel(&job).await.unwrap_err().to_string();
    assert!(e.contains("uid 65534"), "{e}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "the stranger's process was signalled"
    );
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_and_tag_directories_others_can_write_or_own_are_refused() {
    umask_000();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let jobs = tmp.path().join("jobs");
    let c = connector(&ctx, r#"command = ["true"]"#);
    let refused = |r: Result<ExternalId, SubmitError>| match r {
        Err(SubmitError::Unavailable { reason }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    };

    fs::DirBuilder::new().mode(0o777).create(&jobs).unwrap();
    let why = refused(c.submit(&request("w", Shape::Normal)).await);
    assert!(
        why.contains(&jobs.display().to_string()) && why.contains("777") && why.contains("chmod"),
        "{why}"
    );
    assert_eq!(fs::read_dir(&jobs).unwrap().count(), 0, "nothing written");

    fs::set_permissions(&jobs, fs::Permissions::from_mode(0o700)).unwrap();
    chown(&jobs, Some(NOBODY), None).unwrap();
    let why = refused(c.submit(&request("w", Shape::Normal)).await);
    assert!(why.contains("uid 65534"), "{why}");

    chown(&jobs, Some(0), None).unwrap();
    let req = request("t", Shape::Normal);
    let tag_dir = jobs.join(req.submission.tag.as_str());
    fs::DirBuilder::new().mode(0o777).create(&tag_dir).unwrap();
    let why = refused(c.submit(&req).await);
    assert!(why.contains(&tag_dir.display().to_string()), "{why}");
    assert_eq!(
        fs::read_dir(&tag_dir).unwrap().count(),
        0,
        "nothing written"
    );
}

/// Another user's `local.lock` could be held (`flock`) forever to stall every local job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_lock_owned_by_another_user_is_refused() {
    umask_000();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    let jobs = tmp.path().join("jobs");
    fs::DirBuilder::new().mode(0o700).create(&jobs).unwrap();
    let lock = jobs.join("local.lock");
    fs::write(&lock, "").unwrap();
    chown(&lock, Some(NOBODY), Some(NOBODY)).unwrap();
    let c = connector(&ctx, r#"command = ["true"]"#);
    match c.submit(&request("lock", Shape::Normal)).await {
        Err(SubmitError::Unavailable { reason }) => {
            assert!(
                reason.contains("local.lock") && reason.contains("uid 65534"),
                "{reason}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Relative program and workdir are taken from the build context's base directory, not from
/// this process's current directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_program_and_workdir_resolve_against_the_base_dir() {
    umask_000();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = ctx(tmp.path());
    fs::create_dir(tmp.path().join("work")).unwrap();
    let script = tmp.path().join("work").join("pwd.sh");
    fs::write(&script, "#!/bin/sh\npwd\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    assert_ne!(std::env::current_dir().unwrap(), tmp.path());
    let c = connector(&ctx, "command = [\"./pwd.sh\"]\nworkdir = \"work\"");
    let req = request("relative", Shape::Normal);
    let job = submit(&*c, &req).await;
    assert!(matches!(
        wait_terminal(&*c, &job).await,
        JobStatus::Succeeded { .. }
    ));
    let out = fs::read_to_string(
        tmp.path()
            .join("jobs")
            .join(req.submission.tag.as_str())
            .join("stdout.log"),
    )
    .unwrap();
    assert_eq!(out.trim(), tmp.path().join("work").display().to_string());
}
