//! The commands a person reaches for (issue 9): validate, version, completions, man, help
//! texts, and `logs` across generations.
mod common;

use std::time::Duration;

use common::*;

fn out_text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn validate_checks_a_spec_without_touching_the_store() {
    let env = Env::new();
    let ok = env.spec("ok.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    let out = env.run(&["validate", ok.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        out_text(&out).contains("valid (local job)"),
        "{}",
        out_text(&out)
    );
    let bad = env.spec("bad.toml", "[job]\nkind = 'local'\ncomand = ['true']\n");
    let out = env.run(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.toml"), "{}", stderr(&out));
    assert!(
        !std::path::Path::new(&env.state).exists(),
        "validate created the store"
    );
}

#[test]
fn version_completions_and_man_page() {
    let env = Env::new();
    let v = env.run(&["version"]);
    assert_eq!(
        out_text(&v),
        format!("tether {}\n", env!("CARGO_PKG_VERSION"))
    );
    for shell in ["bash", "zsh", "fish"] {
        let out = env.run(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let text = out_text(&out);
        assert!(
            text.contains("wait") && text.contains("validate"),
            "{shell}: {text}"
        );
    }
    let man = out_text(&env.run(&["man"]));
    assert!(man.contains(".TH tether 1"), "{man}");
    assert!(
        man.contains("Exit codes"),
        "the man page lacks the exit codes"
    );
    assert!(!std::path::Path::new(&env.state).exists());
}

#[test]
fn help_has_examples_environment_and_exit_codes() {
    let env = Env::new();
    let run = out_text(&env.run(&["run", "--help"]));
    for want in [
        "Examples:",
        "Exit codes:",
        "6    not found",
        "TETHER_STATE",
        "TETHER_JOBS_DIR",
        "section \"Job specs\"",
    ] {
        assert!(run.contains(want), "run --help lacks {want:?}:\n{run}");
    }
    for cmd in [
        "status", "ls", "logs", "history", "cancel", "wait", "validate",
    ] {
        let text = out_text(&env.run(&[cmd, "--help"]));
        assert!(
            text.contains("Examples:") && text.contains("TETHER_STATE"),
            "{cmd} --help:\n{text}"
        );
    }
}

#[test]
fn logs_say_which_generations_exist_and_mark_a_new_generation() {
    let env = Env::new();
    let counter = env.path("counter");
    // Generation 1 prints and fails after a while; generation 2 prints and succeeds.
    let body = format!(
        "if [ $(wc -l < {c}) -eq 1 ]; then echo first; sleep 2; exit 3; else echo second; fi",
        c = counter.display()
    );
    let spec = env.spec(
        "job.toml",
        &counter_spec(&counter, &body, "max_submissions = 2\nbackoff = \"100ms\""),
    );
    let mut run = env.spawn(&["run", spec.to_str().unwrap(), "--key", "g"], &[]);
    assert!(wait_until(Duration::from_secs(30), || env
        .status("g")
        .is_some_and(|s| s["phase"]["phase"] == "submitted")));
    let follow = env.run(&["logs", "g", "-f"]);
    assert!(follow.status.success(), "{}", stderr(&follow));
    assert_eq!(out_text(&follow), "first\nsecond\n");
    assert!(
        stderr(&follow).contains("--- generation 2 (after: failed: other) ---"),
        "{}",
        stderr(&follow)
    );
    assert_eq!(
        wait_child(&mut run, Duration::from_secs(30)).code(),
        Some(0)
    );
    let out = env.run(&["logs", "g", "--generation", "5"]);
    assert_eq!(out.status.code(), Some(6));
    assert!(
        stderr(&out).contains("no generation 5: it has generations 1 to 2"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        out_text(&env.run(&["logs", "g", "--generation", "1"])),
        "first\n"
    );
}

#[test]
fn an_airflow_run_id_is_a_run_key_as_it_is() {
    let env = Env::new();
    let ok = env.spec(
        "ok.toml",
        "[job]\nkind = 'local'\ncommand = ['echo', 'hi']\n",
    );
    let key = "scheduled__2026-12-01T00:00:00+00:00";
    let out = env.run(&["run", ok.to_str().unwrap(), "--key", key]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.status(key).unwrap()["key"], key);
    assert_eq!(
        out_text(&env.run(&["ls", "-o", "name"])),
        format!("{key}\n")
    );
    assert_eq!(out_text(&env.run(&["logs", key])), "hi\n");
}

#[test]
fn status_of_a_run_nobody_drives_asks_the_backend() {
    let env = Env::new();
    let done = env.path("done");
    let spec = env.spec(
        "job.toml",
        &format!(
            "[job]\nkind = 'local'\ncommand = ['sh', '-c', 'sleep 4; touch {}']\n",
            done.display()
        ),
    );
    let mut run = env.spawn(&["run", spec.to_str().unwrap(), "--key", "u"], &[]);
    assert!(wait_until(Duration::from_secs(30), || env
        .status("u")
        .is_some_and(|s| s["phase"]["phase"] == "submitted")));
    signal(run.id(), "KILL");
    wait_child(&mut run, Duration::from_secs(10));
    let text = || out_text(&env.run(&["status", "u"]));
    assert!(
        wait_until(Duration::from_secs(10), || text()
            .contains("backend:   running")),
        "{}",
        text()
    );
    assert!(text().contains("unattended since"), "{}", text());
    // The job ends while nobody drives the run: status shows the real outcome, not `running`.
    assert!(wait_until(Duration::from_secs(20), || done.exists()));
    assert!(
        wait_until(Duration::from_secs(10), || text()
            .contains("backend:   succeeded")),
        "{}",
        text()
    );
    assert_eq!(
        env.status("u").unwrap()["state"],
        "running",
        "status only reads"
    );
}

#[test]
fn a_short_local_job_is_seen_ending_at_once_not_a_poll_interval_later() {
    let env = Env::new();
    for durable in [true, false] {
        let spec = env.spec(
            &format!("short-{durable}.toml"),
            &format!(
                "durable = {durable}\npoll_interval = '1m'\n[job]\nkind = 'local'\n\
                 command = ['sleep', '0.5']\n"
            ),
        );
        let t = std::time::Instant::now();
        let out = env.run(&[
            "run",
            spec.to_str().unwrap(),
            "--key",
            &format!("short-{durable}"),
        ]);
        let took = t.elapsed();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        // The poll interval is a minute: waiting it out would take at least that.
        assert!(
            took < Duration::from_secs(30),
            "durable = {durable}: took {took:?}"
        );
    }
}
