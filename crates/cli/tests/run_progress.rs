//! What a person sees while `tether run` waits: the status line in a real pseudo-terminal
//! (tmux at 80 columns, screen read back), timestamped lines and heartbeats when stderr is a
//! file, the job's own output with `--logs`, the stderr tail on failure, specs from stdin.
mod common;

use std::{io::Write, path::Path, process::Stdio, time::Duration};

use common::{stderr, tmux::Tmux, wait_until, Env};

fn used(screen: &[String]) -> Vec<&String> {
    screen.iter().filter(|l| !l.is_empty()).collect()
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display())
}

#[test]
fn a_six_second_job_uses_at_most_two_lines_of_an_80_column_terminal() {
    let env = Env::new();
    let spec = env.spec(
        "six.toml",
        "[job]\nkind = 'local'\ncommand = ['sh', '-c', 'sleep 6']\n",
    );
    let rc = env.path("rc");
    // A long key: the status line must be cut to the width, not wrapped.
    let cmd = format!(
        "{} run {} --key nightly-warehouse-load-of-all-the-regional-sales-tables-2026; echo $? > {}; sleep 60",
        shell_quote(Path::new(env!("CARGO_BIN_EXE_tether"))),
        shell_quote(&spec),
        shell_quote(&rc)
    );
    let tmux = Tmux::start(&env, &cmd);
    let mut ticks = Vec::new();
    let mut samples = 0;
    while !rc.exists() && samples < 100 {
        std::thread::sleep(Duration::from_millis(300));
        let screen = tmux.screen();
        let rows = used(&screen);
        if rows.iter().any(|r| r.contains("succeeded")) {
            break;
        }
        assert!(
            rows.len() <= 1,
            "more than one line while waiting: {screen:#?}"
        );
        if let Some(row) = rows.first() {
            assert!(row.chars().count() < 80, "the line fills the width: {row}");
            if row.contains("running") {
                ticks.push(row.rsplit(' ').next().unwrap_or("").to_string());
            }
        }
        samples += 1;
    }
    assert!(wait_until(Duration::from_secs(20), || rc.exists()));
    std::thread::sleep(Duration::from_millis(300));
    let screen = tmux.screen();
    assert_eq!(
        std::fs::read_to_string(&rc).unwrap().trim(),
        "0",
        "{screen:#?}"
    );
    let rows = used(&screen);
    assert!(
        rows.len() <= 2,
        "more than two lines in the end: {screen:#?}"
    );
    assert!(
        rows.iter().any(|r| r.contains("succeeded in")),
        "{screen:#?}"
    );
    // The elapsed time ticked every second while the job ran.
    ticks.dedup();
    assert!(
        ticks.len() >= 4 && ticks.iter().any(|t| t == "00:00:03"),
        "elapsed time did not tick: {ticks:?}"
    );
}

/// `2026-12-01T18:39:15Z ` at the start of a line.
fn has_iso_timestamp(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 21
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[19] == b'Z'
        && b[..4].iter().all(u8::is_ascii_digit)
}

#[test]
fn without_a_terminal_every_line_has_a_timestamp_and_heartbeats_come() {
    let env = Env::new();
    let spec = env.spec(
        "hb.toml",
        "[job]\nkind = 'local'\ncommand = ['sh', '-c', 'sleep 4']\n",
    );
    let out = env.run(&["run", spec.to_str().unwrap(), "--heartbeat", "1s"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    for line in err.lines().filter(|l| !l.is_empty()) {
        assert!(has_iso_timestamp(line), "no ISO timestamp: {line:?}\n{err}");
    }
    let beats = err.lines().filter(|l| l.contains("still running")).count();
    assert!(beats >= 2, "{beats} heartbeats in a 4 s job at 1 s: {err}");
    // One line per change, not per poll.
    let running = err.lines().filter(|l| l.contains("· running ·")).count();
    assert_eq!(running, 1, "{err}");
    // The end is one line in words, not the raw result.
    assert!(err.contains("succeeded in"), "{err}");
    assert!(!err.contains("peak_rss_bytes"), "{err}");
}

#[test]
fn logs_flag_streams_the_jobs_output_while_it_runs() {
    let env = Env::new();
    let go = env.path("go");
    let spec = env.spec(
        "logs.toml",
        &format!(
            "[job]\nkind = 'local'\ncommand = ['sh', '-c', 'echo to-stdout-1; echo to-stderr-1 >&2; \
             while [ ! -e {} ]; do sleep 0.1; done; echo to-stdout-2']\n",
            go.display()
        ),
    );
    let (out_path, err_path) = (env.path("out.txt"), env.path("err.txt"));
    let mut child = env
        .cmd()
        .args(["run", spec.to_str().unwrap(), "--logs"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    // The job waits for `go`: its first lines can only have come while it runs.
    let streamed = wait_until(Duration::from_secs(20), || {
        read(&out_path).contains("to-stdout-1") && read(&err_path).contains("to-stderr-1")
    });
    std::fs::write(&go, "").unwrap();
    let st = common::wait_child(&mut child, Duration::from_secs(30));
    assert!(
        streamed,
        "no output while running: {} / {}",
        read(&out_path),
        read(&err_path)
    );
    assert!(st.success(), "{}", read(&err_path));
    assert!(
        read(&out_path).contains("to-stdout-2"),
        "{}",
        read(&out_path)
    );
}

#[test]
fn a_failed_job_shows_the_last_20_lines_of_its_stderr() {
    let env = Env::new();
    let spec = env.spec(
        "fail.toml",
        "[job]\nkind = 'local'\ncommand = ['sh', '-c', 'for i in $(seq 1 30); do echo line-$i >&2; done; exit 3']\n",
    );
    let out = env.run(&["run", spec.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let shown: Vec<&str> = err
        .lines()
        .filter_map(|l| l.split_once("| ").map(|(_, t)| t))
        .collect();
    let expected: Vec<String> = (11..=30).map(|i| format!("line-{i}")).collect();
    assert_eq!(shown, expected, "{err}");
}

#[test]
fn run_and_submit_read_the_spec_from_stdin() {
    let env = Env::new();
    let spec = "[job]\nkind = 'local'\ncommand = ['echo', 'from-stdin']\n";
    let pipe = |args: &[&str]| {
        let mut child = env
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(spec.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = pipe(&["run", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let key = stdout.split('\t').next().unwrap().to_string();
    assert!(key.starts_with("stdin-"), "{stdout}");
    let logs = env.run(&["logs", &key]);
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "from-stdin\n");
    // The same spec piped again is the same run: already done, not run twice.
    let out = pipe(&["submit", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), key);
}
