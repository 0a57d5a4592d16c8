//! The state store location and its access: strict parsing, read commands that create
//! nothing, private files, a frozen lock holder, quarantined rows, `tether migrate`.
mod common;

use std::{os::unix::fs::PermissionsExt, process::Stdio, time::Duration};

use common::*;

/// Everything in the env dir except what the test itself put there.
fn entries(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "hello.toml")
        .collect();
    v.sort();
    v
}

#[test]
fn unsupported_locations_are_bad_input_and_create_nothing() {
    for state in [
        "postgress://app:hunter2@db/tether",
        "mysql://x",
        "host=db user=app password=hunter2",
        "http://h/x",
    ] {
        let env = Env::with_state(state);
        let spec = env.spec("hello.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
        for args in [
            vec!["run", spec.to_str().unwrap(), "--key", "k"],
            vec!["ls"],
            vec!["migrate"],
        ] {
            let out = env.run(&args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{state} {args:?}: {err}");
            assert!(
                err.contains("postgres://") && err.contains("sqlite:"),
                "{err}"
            );
            assert!(!err.contains("hunter2"), "the password leaked: {err}");
        }
        assert_eq!(
            entries(&env),
            Vec::<String>::new(),
            "{state}: nothing created"
        );
        assert!(!env.jobs.exists());
    }
}

#[test]
fn read_commands_never_create_or_migrate_a_store() {
    let env = Env::new();
    for args in [
        vec!["ls"],
        vec!["status", "k"],
        vec!["history", "k"],
        vec!["logs", "k"],
    ] {
        let out = env.run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("no state store at"), "{args:?}: {err}");
        assert!(
            !std::path::Path::new(&env.state).exists(),
            "{args:?} created the store"
        );
    }
    let out = env.run(&["migrate"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("schema version 0 -> 8"), "{text}");
    let out = env.run(&["migrate"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("schema version 8 (up to date)"), "{text}");
    assert!(env.run(&["ls"]).status.success());
}

#[test]
fn sqlite_colon_state_puts_jobs_next_to_the_file_and_files_are_private() {
    let env = Env::new();
    let state_dir = env.path("fresh").join("nested");
    let state = format!("sqlite:{}", state_dir.join("t.db").display());
    let spec = env.spec("hello.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    // umask 000: modes must not depend on it.
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "umask 000; exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_tether"),
        ])
        .args(["run", spec.to_str().unwrap(), "--key", "k"])
        .env("TETHER_STATE", &state)
        .env_remove("TETHER_JOBS_DIR")
        .env("XDG_CONFIG_HOME", env.path("config"))
        .current_dir(env.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        state_dir.join("t.jobs").is_dir(),
        "jobs dir next to the state file"
    );
    assert!(!env.path("sqlite:").exists(), "no ./sqlite: directory");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.path("fresh")), 0o700);
    assert_eq!(mode(&state_dir), 0o700);
    assert_eq!(mode(&state_dir.join("t.db")), 0o600);
    if state_dir.join("t.db-wal").exists() {
        assert_eq!(mode(&state_dir.join("t.db-wal")), 0o600);
    }
}

fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn a_frozen_lock_holder_makes_the_follower_wait_not_fail() {
    let env = Env::new();
    let counter = env.path("counter");
    let spec = env.spec("hello.toml", &counter_spec(&counter, "sleep 1", ""));
    // Make the store exist first, so the freeze hits the run's own write.
    assert!(env.run(&["migrate"]).status.success());
    let mut a = env.spawn(
        &["run", spec.to_str().unwrap(), "--key", "k"],
        &[("TETHER_FAULT", "stop-holding-write-lock:create_run")],
    );
    assert!(
        wait_until(Duration::from_secs(20), || process_state(a.id())
            == Some('T')),
        "the first run never stopped holding the lock"
    );
    let b_err = env.path("b-stderr.txt");
    let mut b = env
        .cmd()
        .args(["run", spec.to_str().unwrap(), "--key", "k"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&b_err).unwrap())
        .spawn()
        .unwrap();
    // Longer than the old 10 s busy timeout, after which the follower used to exit 2.
    std::thread::sleep(Duration::from_secs(12));
    let waiting = b.try_wait().unwrap();
    let err = std::fs::read_to_string(&b_err).unwrap_or_default();
    if waiting.is_some() {
        signal(a.id(), "KILL");
    }
    assert!(
        waiting.is_none(),
        "the follower gave up ({waiting:?}): {err}"
    );
    assert!(
        err.contains("busy"),
        "the follower says why it waits: {err}"
    );
    signal(a.id(), "CONT");
    let st_b = wait_child(&mut b, Duration::from_secs(60));
    let st_a = wait_child(&mut a, Duration::from_secs(60));
    let err = std::fs::read_to_string(&b_err).unwrap_or_default();
    assert_eq!(st_b.code(), Some(0), "{err}");
    assert_eq!(st_a.code(), Some(0));
    assert_eq!(count_lines(&counter), 1, "the job ran exactly once");
}

#[test]
fn an_unreadable_row_is_listed_as_quarantined() {
    let env = Env::new();
    let spec = env.spec("hello.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    for k in ["ok", "bad"] {
        let out = env.run(&["run", spec.to_str().unwrap(), "--key", k]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let c = rusqlite::Connection::open(&env.state).unwrap();
    c.execute(
        "UPDATE runs SET phase = 'from-tether-v9' WHERE key = 'bad'",
        [],
    )
    .unwrap();
    drop(c);
    let out = env.run(&["ls"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(text.contains("ok"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("bad")
            && l.contains("quarantined")
            && l.contains("from-tether-v9")),
        "{text}"
    );
    let out = env.run(&["status", "bad"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("quarantined") && text.contains("from-tether-v9"),
        "{text}"
    );
}
