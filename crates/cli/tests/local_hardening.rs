//! The local backend through the real binary: a spec that cannot start is bad input, a launch
//! that cannot heal ends the run after one submission, and jobs never see tether's secrets.
mod common;

use std::{fs, os::unix::fs::PermissionsExt, time::Duration};

use common::*;

const T: Duration = Duration::from_secs(120);

#[test]
fn a_missing_program_or_workdir_is_a_spec_error_and_nothing_is_written() {
    for (body, needles) in [
        (
            "[job]\nkind = 'local'\ncommand = ['tether-no-such-program-xyz']\n",
            &[
                "bad.toml",
                "job.command",
                "tether-no-such-program-xyz",
                "PATH",
            ][..],
        ),
        (
            "[job]\nkind = 'local'\ncommand = ['./missing.sh']\n",
            &["bad.toml", "job.command", "missing.sh", "does not exist"][..],
        ),
        (
            "[job]\nkind = 'local'\ncommand = ['true']\nworkdir = 'nowhere'\n",
            &["bad.toml", "job.workdir", "nowhere", "create it"][..],
        ),
    ]
    .into_iter()
    .map(|(b, n)| (b.to_string(), n))
    .chain([(
        format!(
            "[job]\nkind = 'local'\ncommand = ['true', '{}']\n",
            "x".repeat(200_000)
        ),
        &["bad.toml", "job.command", "E2BIG"][..],
    )]) {
        let env = Env::new();
        let spec = env.spec("bad.toml", &body);
        let out = env.run(&["run", spec.to_str().unwrap(), "--key", "bad"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        for n in needles {
            assert!(err.contains(n), "error should mention {n:?}: {err}");
        }
        assert!(!std::path::Path::new(&env.state).exists(), "{err}");
        assert!(!env.jobs.exists(), "nothing written: {err}");
    }
}

/// A script whose interpreter is missing passes every check before the fact, then `exec` fails
/// with ENOENT: the run ends as rejected after one submission, not `max_submissions`.
#[test]
fn a_launch_that_cannot_heal_ends_the_run_after_one_submission() {
    let env = Env::new();
    let script = env.path("orphan.sh");
    fs::write(&script, "#!/nonexistent/interpreter\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let spec = env.spec(
        "job.toml",
        "max_submissions = 3\nbackoff = '100ms'\n[job]\nkind = 'local'\ncommand = ['./orphan.sh']\n",
    );
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "k", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(v["state"], "failed", "{v} {}", stderr(&out));
    assert_eq!(v["failure_class"], "rejected", "{v}");
    assert_eq!(
        v["submissions"].as_array().map(Vec::len),
        Some(1),
        "{}",
        env.history_text("k")
    );
    assert_ne!(out.status.code(), Some(0));
}

/// The program is deleted after `tether submit` checked it and before a worker launches it.
#[test]
fn a_program_deleted_after_submit_ends_the_run_after_one_submission() {
    let env = Env::new();
    let program = env.path("prog.sh");
    fs::write(&program, "#!/bin/sh\necho ran\n").unwrap();
    fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
    let spec = env.spec(
        "job.toml",
        &format!(
            "max_submissions = 3\nbackoff = '100ms'\n[job]\nkind = 'local'\ncommand = [{:?}]\n",
            program.display().to_string()
        ),
    );
    let out = env.run(&["submit", spec.to_str().unwrap(), "--key", "gone"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    fs::remove_file(&program).unwrap();
    let mut worker = env.spawn(&["worker", "--exit-when-idle"], &[]);
    wait_child(&mut worker, T);
    let v = env.status("gone").expect("status");
    assert_eq!(v["state"], "failed", "{v}");
    assert_eq!(v["failure_class"], "rejected", "{v}");
    assert_eq!(
        v["submissions"].as_array().map(Vec::len),
        Some(1),
        "{}",
        env.history_text("gone")
    );
}

/// Neither the job nor its supervisor (the job's parent) sees tether's settings, libpq's
/// variables or anything named like a credential; the spec's `env` reaches the job.
#[test]
fn local_jobs_and_supervisors_get_a_scrubbed_environment_plus_the_spec_env() {
    let env = Env::new();
    let spec = env.spec(
        "job.toml",
        "[job]\nkind = 'local'\ncommand = ['sh', '-c', 'echo JOB; env; echo SUPERVISOR; tr \"\\\\0\" \"\\\\n\" < /proc/$PPID/environ']\nenv = { SPEC_VAR = 'from-spec', MY_TOKEN = 'given-on-purpose' }\n",
    );
    let out = env
        .cmd()
        .args(["run", spec.to_str().unwrap(), "--key", "env"])
        .env("TETHER_TEST_SECRET_TOKEN", "leak-1")
        .env("PGPASSWORD", "leak-2")
        .env("DATABASE_URL", "postgres://u:leak-3@h/db")
        .env("AWS_SECRET_ACCESS_KEY", "leak-4")
        .env("PLAIN_VAR", "kept")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let logs = env.run(&["logs", "env"]);
    let text = String::from_utf8_lossy(&logs.stdout).into_owned();
    let (job, supervisor) = text.split_once("SUPERVISOR").expect(&text);
    for leak in ["leak-1", "leak-2", "leak-3", "leak-4", "TETHER_"] {
        assert!(
            !text.contains(leak),
            "{leak} reached the job or supervisor:\n{text}"
        );
    }
    assert!(
        job.contains("SPEC_VAR=from-spec") && job.contains("MY_TOKEN=given-on-purpose"),
        "{job}"
    );
    assert!(
        job.contains("PLAIN_VAR=kept") && supervisor.contains("PLAIN_VAR=kept"),
        "{text}"
    );
}
