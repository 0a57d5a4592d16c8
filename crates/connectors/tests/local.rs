//! The local backend against real processes: the conformance suite, outcomes and limits,
//! spec errors and concurrent submits. Cancel and process identity are in
//! `local_cancel.rs`, the recovery slot and logs in `local_recovery.rs` (all share
//! `local_common`). (Surviving a SIGKILLed submitter is in `local_submitter.rs`, which needs a
//! process of its own.)
#![cfg(feature = "local")]

mod local_common;

use std::{fs, os::unix::fs::PermissionsExt, time::Duration};

use local_common::*;
use tether_connectors::{
    conformance::{self, Fixture, Verdict},
    local::identity::ProcStat,
};
use tether_core::{
    connector::SubmitError,
    ids::ExternalId,
    journal::Shape,
    observe::{FailureClass, JobStatus, Lookup},
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
