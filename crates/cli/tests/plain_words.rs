//! What a person reads: every subcommand's `--help` (examples, exit codes, environment), the
//! one-line summary of a run, and `logs -f` of a run nobody drives ending with its job.
mod common;

use std::time::Duration;

use common::{signal, stderr, wait_child, wait_until, Env};

fn text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_subcommands_help_has_examples_exit_codes_and_environment() {
    let env = Env::new();
    let main = text(&env.run(&["--help"]));
    // The subcommands as `tether --help` lists them (between "Commands:" and "Options:").
    let commands: Vec<String> = main
        .split("Commands:")
        .nth(1)
        .and_then(|s| s.split("Options:").next())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 18, "{commands:?}\n{main}");
    for cmd in &commands {
        let out = env.run(&[cmd, "--help"]);
        let help = text(&out);
        assert!(out.status.success(), "{cmd} --help: {}", stderr(&out));
        for want in [
            "Examples:",
            "Exit codes:",
            "6    not found",
            "TETHER_STATE",
            "section \"Job specs\"",
        ] {
            assert!(help.contains(want), "{cmd} --help lacks {want:?}:\n{help}");
        }
        // TETHER_STATE is set (Env sets it): --state is an option, never a required argument.
        let usage = help.lines().find(|l| l.starts_with("Usage:")).unwrap_or("");
        assert!(!usage.contains("--state"), "{cmd}: {usage}");
    }
}

#[test]
fn a_run_ends_with_one_summary_line_in_plain_words() {
    let env = Env::new();
    let spec = env.spec(
        "ok.toml",
        "[job]\nkind = 'local'\ncommand = ['sh', '-c', 'echo hi']\n",
    );
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "sum", "-v"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let summary: Vec<&str> = err.lines().filter(|l| l.contains("succeeded in")).collect();
    assert_eq!(summary.len(), 1, "{err}");
    assert!(summary[0].contains("(peak memory "), "{}", summary[0]);
    // No raw JSON, and nothing said that did not happen: a first-shape job does not "run
    // alone" (that is the recovery shape), and it was not interrupted.
    for never in ["{\"", "runs alone", "lease released", "was left running"] {
        assert!(!err.contains(never), "{never:?} in: {err}");
    }
}

#[test]
fn logs_follow_of_a_run_nobody_drives_ends_when_its_job_ends() {
    let env = Env::new();
    let spec = env.spec(
        "job.toml",
        "[job]\nkind = 'local'\ncommand = ['sh', '-c', 'echo one; sleep 4; echo two']\n",
    );
    let mut run = env.spawn(&["run", spec.to_str().unwrap(), "--key", "orphan"], &[]);
    assert!(wait_until(Duration::from_secs(20), || env
        .status("orphan")
        .is_some_and(|s| s["phase"]["phase"] == "submitted")));
    // Nobody drives the run from here: the record stays `running`, the job goes on.
    signal(run.id(), "KILL");
    wait_child(&mut run, Duration::from_secs(10));
    let out_path = env.path("follow.txt");
    let mut follow = env
        .cmd()
        .args(["logs", "orphan", "-f"])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    let st = wait_child(&mut follow, Duration::from_secs(30));
    assert_eq!(st.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&out_path).unwrap(), "one\ntwo\n");
    assert_eq!(
        env.status("orphan").unwrap()["state"],
        "running",
        "logs only read"
    );
}
