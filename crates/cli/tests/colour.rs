//! Colour for people only: no escape codes in piped output, `CLICOLOR_FORCE=1` forces them,
//! `NO_COLOR` wins over everything (a terminal included), `tracing`'s colours only on a
//! terminal.
mod common;

use std::{path::Path, process::Output, time::Duration};

use common::{stderr, tmux::Tmux, wait_until, Env};

const ESC: char = '\u{1b}';

/// A failed run, `ls`, `status` and an error (unknown key), all with stdout and stderr piped,
/// `extra` in the environment: everything they printed.
fn everyday_output(env: &Env, extra: &[(&str, &str)]) -> String {
    let spec = env.spec(
        "fails.toml",
        "[job]\nkind = 'local'\ncommand = ['sh', '-c', 'echo oops >&2; exit 3']\n",
    );
    let run = |args: &[&str]| -> Output {
        let mut c = env.cmd();
        c.args(args).stdin(std::process::Stdio::null());
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().expect("run tether")
    };
    let mut all = String::new();
    for (args, code) in [
        (vec!["run", spec.to_str().unwrap(), "--key", "red"], Some(1)),
        (vec!["ls"], Some(0)),
        (vec!["status", "red"], Some(0)),
        (vec!["status", "no-such-run"], None),
    ] {
        let out = run(&args);
        if let Some(code) = code {
            assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        } else {
            assert!(!out.status.success(), "{args:?}");
        }
        all.push_str(&String::from_utf8_lossy(&out.stdout));
        all.push_str(&stderr(&out));
    }
    // The words are there, coloured or not.
    for word in ["failed", "error:", "oops"] {
        assert!(all.contains(word), "{word} missing: {all}");
    }
    all
}

#[test]
fn piped_output_has_no_escape_codes() {
    let env = Env::new();
    let all = everyday_output(&env, &[]);
    assert!(!all.contains(ESC), "escape codes in piped output: {all:?}");
}

#[test]
fn clicolor_force_colours_piped_output_and_no_color_wins_over_it() {
    let env = Env::new();
    let all = everyday_output(&env, &[("CLICOLOR_FORCE", "1")]);
    // `failed` in red (31), `error:` in red, on stdout (ls, status) and stderr alike.
    assert!(all.contains(&format!("{ESC}[")), "no colour: {all:?}");
    assert!(all.contains("31m"), "no red: {all:?}");
    let env = Env::new();
    let all = everyday_output(&env, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!all.contains(ESC), "NO_COLOR did not win: {all:?}");
    let env = Env::new();
    let all = everyday_output(&env, &[("CLICOLOR", "0")]);
    assert!(!all.contains(ESC), "CLICOLOR=0 ignored: {all:?}");
}

#[test]
fn a_workers_tracing_log_is_plain_when_piped_even_under_clicolor_force() {
    let env = Env::new();
    let spec = env.spec("ok.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    let out = env.run(&["submit", spec.to_str().unwrap(), "--key", "w"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env
        .cmd()
        .args(["worker", "--exit-when-idle"])
        .env("CLICOLOR_FORCE", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("worker");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("INFO"), "{err}");
    assert!(!err.contains(ESC), "escape codes in a piped log: {err:?}");
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// Runs `shell` in a terminal (tmux) until it writes `done`; the screen with its escape codes.
fn on_a_terminal(env: &Env, shell: &str) -> String {
    let done = env.path("done");
    let _ = std::fs::remove_file(&done);
    let tmux = Tmux::start(env, &format!("{shell}; touch {}; sleep 60", quote(&done)));
    assert!(
        wait_until(Duration::from_secs(60), || done.exists()),
        "{:#?}",
        tmux.screen()
    );
    std::thread::sleep(Duration::from_millis(300));
    tmux.screen_with_escapes()
}

#[test]
fn a_terminal_gets_colour_and_no_color_wins_over_it() {
    let env = Env::new();
    let bin = quote(Path::new(env!("CARGO_BIN_EXE_tether")));
    let spec = env.spec(
        "fails.toml",
        "[job]\nkind = 'local'\ncommand = ['sh', '-c', 'sleep 1; exit 3']\n",
    );
    let ok = env.spec("ok.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    let out = env.run(&["submit", ok.to_str().unwrap(), "--key", "w"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // `tether run` (status line, summary), `ls`, and a worker's tracing log on the terminal.
    let session = |prefix: &str, key: &str| {
        format!(
            "{prefix} {bin} run {} --key {key}; {prefix} {bin} ls; \
             {prefix} {bin} worker --exit-when-idle",
            quote(&spec)
        )
    };
    let coloured = on_a_terminal(&env, &session("", "plain"));
    assert!(coloured.contains("failed"), "{coloured}");
    assert!(
        coloured.contains(&format!("{ESC}[")),
        "no colour on a terminal: {coloured:?}"
    );
    let out = env.run(&["submit", ok.to_str().unwrap(), "--key", "w2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plain = on_a_terminal(&env, &session("NO_COLOR=1", "nocolour"));
    assert!(
        plain.contains("failed") && plain.contains("INFO"),
        "{plain}"
    );
    // tmux itself resets attributes at the end of a captured line: only colours count.
    let colours: Vec<&str> = plain
        .split(ESC)
        .skip(1)
        .filter(|s| !s.starts_with("[0m") && !s.starts_with("[m") && !s.starts_with("[39m"))
        .collect();
    assert!(colours.is_empty(), "colour despite NO_COLOR: {plain:?}");
}
