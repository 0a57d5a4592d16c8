//! Bad input: each case is a clear error naming what and where, exit code 2, nothing written.
mod common;

use common::*;

fn assert_rejected(env: &Env, spec_body: Option<&str>, needles: &[&str]) {
    let spec = match spec_body {
        Some(b) => env.spec("bad.toml", b),
        None => env.path("missing.toml"),
    };
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "bad"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for n in needles {
        assert!(err.contains(n), "error should mention {n:?}: {err}");
    }
    assert!(
        !std::path::Path::new(&env.state).exists(),
        "nothing written: the state store was created: {err}"
    );
    assert!(!env.jobs.exists(), "nothing written: a job dir was created");
}

#[test]
fn missing_command_field() {
    assert_rejected(
        &Env::new(),
        Some("[job]\nkind = 'local'\n"),
        &["bad.toml", "command"],
    );
}

#[test]
fn missing_job_table() {
    assert_rejected(
        &Env::new(),
        Some("max_submissions = 2\n"),
        &["bad.toml", "[job]"],
    );
}

#[test]
fn wrong_type_names_file_line_and_field() {
    assert_rejected(
        &Env::new(),
        Some("[job]\nkind = 'local'\ncommand = 'echo hi'\n"),
        &["bad.toml:3:", "sequence"],
    );
    assert_rejected(
        &Env::new(),
        Some("max_submissions = 'three'\n[job]\nkind = 'local'\ncommand = ['true']\n"),
        &["bad.toml:1:"],
    );
}

#[test]
fn unknown_backend_lists_the_known_ones() {
    assert_rejected(
        &Env::new(),
        Some("[job]\nkind = 'mainframe'\n"),
        &["bad.toml:2", "mainframe", "local"],
    );
}

#[test]
fn unknown_fields_are_named_with_their_line() {
    assert_rejected(
        &Env::new(),
        Some("[job]\nkind = 'local'\ncommand = ['true']\ncomand = ['x']\n"),
        &["bad.toml:4:", "comand"],
    );
    assert_rejected(
        &Env::new(),
        Some("retries = 3\n[job]\nkind = 'local'\ncommand = ['true']\n"),
        &["bad.toml:1:", "retries"],
    );
}

#[test]
fn unreadable_spec_file() {
    assert_rejected(&Env::new(), None, &["missing.toml", "cannot read"]);
}

#[test]
fn bad_values() {
    assert_rejected(
        &Env::new(),
        Some("[job]\nkind = 'local'\ncommand = []\n"),
        &["job.command"],
    );
    assert_rejected(
        &Env::new(),
        Some("[job]\nkind = 'local'\ncommand = ['true']\nmemory_limit = 'lots'\n"),
        &["bad.toml:4:", "size"],
    );
    assert_rejected(
        &Env::new(),
        Some("status_timeout = 'soon'\n[job]\nkind = 'local'\ncommand = ['true']\n"),
        &["bad.toml:1:", "duration"],
    );
}

#[test]
fn bad_run_key() {
    let env = Env::new();
    let spec = env.spec("ok.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "no spaces please"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid run key"), "{}", stderr(&out));
}

#[test]
fn corrupt_state_database_is_left_untouched() {
    let env = Env::new();
    let junk = b"this is not a database, but someone's notes\n".repeat(200);
    std::fs::write(&env.state, &junk).unwrap();
    let spec = env.spec("ok.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "k"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&env.state),
        "names the file: {}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(&env.state).unwrap(),
        junk,
        "the file was modified"
    );
    assert!(!env.jobs.exists(), "no job was started");
}

#[test]
fn a_locked_state_database_is_waited_for_not_bad_input() {
    let env = Env::new();
    // Create the store, then hold an exclusive lock on it from another connection.
    let spec = env.spec("ok.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    assert_eq!(
        env.run(&["run", spec.to_str().unwrap(), "--key", "first"])
            .status
            .code(),
        Some(0)
    );
    let conn = rusqlite::Connection::open(&env.state).unwrap();
    conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
        .unwrap();
    // A busy store is not bad input (exit 2): tether says it waits, and goes on once free.
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(4));
        conn.execute_batch("ROLLBACK;").unwrap();
        drop(conn);
    });
    let out = env
        .cmd()
        .args(["run", spec.to_str().unwrap(), "--key", "second"])
        .output()
        .unwrap();
    release.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("busy"), "{}", stderr(&out));
    assert!(env.run(&["status", "second"]).status.success());
}

#[test]
fn same_key_with_another_spec_is_refused() {
    let env = Env::new();
    let a = env.spec("a.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    let b = env.spec("b.toml", "[job]\nkind = 'local'\ncommand = ['false']\n");
    assert_eq!(
        env.run(&["run", a.to_str().unwrap(), "--key", "same"])
            .status
            .code(),
        Some(0)
    );
    let out = env.run(&["run", b.to_str().unwrap(), "--key", "same"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("another spec"), "{}", stderr(&out));
}

#[test]
fn token_env_names_only_tether_token_variables_or_the_config_allowlist() {
    let env = Env::new();
    let spec = |var: &str| {
        format!(
            "[job]\nkind = \"spark-standalone\"\nmaster_rest = \"https://127.0.0.1:1\"\n\
             app_resource = \"file:/x.jar\"\nmain_class = \"X\"\ntoken_env = \"{var}\"\n"
        )
    };
    // A spec in the store must not read a worker's database password and send it away.
    let bad = env.spec("bad.toml", &spec("PGPASSWORD"));
    let out = env.run(&["submit", bad.to_str().unwrap(), "--key", "tok1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("token_env"), "{}", stderr(&out));
    assert!(stderr(&out).contains("TETHER_TOKEN_"), "{}", stderr(&out));
    // The operator may allow a name in the config file.
    let custom = env.spec("custom.toml", &spec("SPARK_REST_TOKEN"));
    let out = env.run(&["submit", custom.to_str().unwrap(), "--key", "tok2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let conf = env.dir.path().join("config").join("tether");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("config.toml"),
        "token_env_allow = [\"SPARK_REST_TOKEN\"]\n",
    )
    .unwrap();
    let with_token = |args: &[&str], var: &str| {
        env.cmd()
            .args(args)
            .env(var, "t0k3n")
            .output()
            .expect("run tether")
    };
    let out = with_token(
        &["submit", custom.to_str().unwrap(), "--key", "tok2"],
        "SPARK_REST_TOKEN",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ok = env.spec("ok.toml", &spec("TETHER_TOKEN_SPARK"));
    let out = with_token(
        &["submit", ok.to_str().unwrap(), "--key", "tok3"],
        "TETHER_TOKEN_SPARK",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
