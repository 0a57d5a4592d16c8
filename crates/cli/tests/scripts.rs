//! What a script reads (issue 9): the JSON views validated against the documented JSON Schema
//! (docs/json-schema/tether-v1.schema.json), JSON errors in `--json` mode, and the exit codes.
mod common;

use serde_json::{json, Value};

use common::*;

/// The documented schema, with `$ref` to one of its definitions (`run`, `list`, …).
fn validator(def: &str) -> jsonschema::Validator {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/json-schema/tether-v1.schema.json"
    );
    let mut schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    schema["$ref"] = json!(format!("#/$defs/{def}"));
    jsonschema::validator_for(&schema).expect("the schema file is a valid JSON Schema")
}

fn assert_valid(def: &str, v: &Value) {
    let errors: Vec<String> = validator(def)
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{def} does not match the schema: {errors:#?}\n{v:#}"
    );
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON on stdout ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

#[test]
fn every_json_view_matches_the_documented_schema() {
    let env = Env::new();
    let ok = env.spec(
        "ok.toml",
        "[job]\nkind = 'local'\ncommand = ['sh', '-c', 'echo hi']\n",
    );
    let out = env.run(&["run", ok.to_str().unwrap(), "--key", "ok", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_valid("run", &v);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["state"], "succeeded");
    assert!(v["failure_class"].is_null());
    assert!(v["duration_ms"].as_i64().is_some(), "{v}");
    assert!(
        v["started_at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{v}"
    );

    let counter = env.path("counter");
    let bad = env.spec(
        "bad.toml",
        &counter_spec(
            &counter,
            "exit 3",
            "max_submissions = 2\nbackoff = \"100ms\"",
        ),
    );
    let out = env.run(&["run", bad.to_str().unwrap(), "--key", "bad", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json_of(&out);
    assert_valid("run", &v);
    assert_eq!(
        (v["state"].as_str(), v["failure_class"].as_str()),
        (Some("failed"), Some("other"))
    );

    let status = json_of(&env.run(&["status", "bad", "--json"]));
    assert_valid("run", &status);

    // `ls` lists runs with their submissions, most recent first.
    let ls = json_of(&env.run(&["ls", "--json"]));
    assert_valid("list", &ls);
    assert_eq!(ls[0]["key"], "bad", "{ls}");
    assert_eq!(
        ls[0]["submissions"].as_array().map(Vec::len),
        Some(2),
        "{ls}"
    );
    assert_eq!(json_of(&env.run(&["ls", "-o", "json"])), ls);

    // History entries carry generation, epoch, owner and external id as fields.
    let h = json_of(&env.run(&["history", "bad", "--json"]));
    assert_valid("history", &h);
    let submit = h
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["decision"] == "submit")
        .unwrap_or_else(|| panic!("no submit entry: {h}"));
    assert_eq!(submit["generation"], 1, "{submit}");
    assert!(
        submit["owner"]
            .as_str()
            .is_some_and(|o| o.starts_with("run@")),
        "{submit}"
    );
    assert_eq!(
        submit["external_id"], status["submissions"][0]["external_id"],
        "{submit}"
    );

    // Errors in --json mode are JSON on stdout too.
    for args in [
        &["status", "nope", "--json"][..],
        &["history", "nope", "--json"],
        &["ls", "--status", "bogus", "--json"],
    ] {
        let out = env.run(args);
        let v = json_of(&out);
        assert_valid("error", &v);
        assert_eq!(
            Some(i64::from(out.status.code().unwrap())),
            v["error"]["exit_code"].as_i64()
        );
    }
}

#[test]
fn not_found_has_its_own_exit_code() {
    let env = Env::new();
    let ok = env.spec("ok.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    assert!(env
        .run(&["run", ok.to_str().unwrap(), "--key", "k"])
        .status
        .success());
    for cmd in ["status", "history", "logs", "cancel", "wait", "rerun"] {
        let out = env.run(&[cmd, "nope"]);
        assert_eq!(out.status.code(), Some(6), "{cmd}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("no run with key nope"),
            "{cmd}: {}",
            stderr(&out)
        );
    }
    // A usage error stays 2.
    assert_eq!(
        env.run(&["status", "bad key with spaces"]).status.code(),
        Some(2)
    );
}

#[test]
fn wait_exits_with_the_outcome_or_7_at_its_timeout() {
    let env = Env::new();
    let ok = env.spec("ok.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    let bad = env.spec(
        "bad.toml",
        "max_submissions = 1\n[job]\nkind = 'local'\ncommand = ['false']\n",
    );
    assert!(env
        .run(&["submit", ok.to_str().unwrap(), "--key", "q"])
        .status
        .success());
    // Nobody drives it: the timeout ends the wait, and says so.
    let out = env.run(&["wait", "q", "--timeout", "1s", "--json"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nobody drives it"),
        "{}",
        stderr(&out)
    );
    assert_valid("error", &json_of(&out));
    // A worker drives it: wait returns its outcome.
    let mut waiter = env.spawn(&["wait", "q"], &[]);
    assert!(env.run(&["worker", "--exit-when-idle"]).status.success());
    assert_eq!(
        wait_child(&mut waiter, std::time::Duration::from_secs(30)).code(),
        Some(0)
    );
    assert_eq!(
        env.run(&["run", bad.to_str().unwrap(), "--key", "b"])
            .status
            .code(),
        Some(1)
    );
    let out = env.run(&["wait", "b", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_valid("run", &json_of(&out));
}

#[test]
fn ls_filters_sorts_and_formats() {
    let env = Env::new();
    let ok = env.spec("ok.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    let bad = env.spec(
        "bad.toml",
        "max_submissions = 1\n[job]\nkind = 'local'\ncommand = ['false']\n",
    );
    env.run(&["run", ok.to_str().unwrap(), "--key", "a-ok"]);
    env.run(&["run", bad.to_str().unwrap(), "--key", "b-bad"]);
    env.run(&["run", ok.to_str().unwrap(), "--key", "c-ok"]);
    let names = |args: &[&str]| {
        let out = env.run(&[&["ls", "-o", "name"][..], args].concat());
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(names(&[]), "c-ok\nb-bad\na-ok\n", "most recent first");
    assert_eq!(names(&["--status", "failed"]), "b-bad\n");
    assert_eq!(names(&["--status", "succeeded", "--limit", "1"]), "c-ok\n");
    assert_eq!(names(&["--kind", "spark-standalone"]), "");
    assert_eq!(
        names(&["--kind", "local", "--since", "1h"]).lines().count(),
        3
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(names(&["--since", "1s"]), "");
    let wide = String::from_utf8(env.run(&["ls", "-o", "wide"]).stdout).unwrap();
    assert!(
        wide.lines()
            .next()
            .is_some_and(|h| h.contains("KIND") && h.contains("UPDATED")),
        "{wide}"
    );
    assert!(wide.contains("bad.toml"), "{wide}");
}

#[test]
fn cancel_exits_0_at_once_without_a_job_and_says_when_nothing_will_kill() {
    let env = Env::new();
    let counter = env.path("counter");
    let spec = env.spec("job.toml", &counter_spec(&counter, "sleep 30", ""));
    assert!(env
        .run(&["submit", spec.to_str().unwrap(), "--key", "q"])
        .status
        .success());
    let started = std::time::Instant::now();
    let out = env.run(&["cancel", "q"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(env.status("q").unwrap()["state"], "cancelled");
    assert!(!counter.exists(), "a job started");
    // --no-wait on a run nobody drives: the request alone kills nothing, and it says so.
    assert!(env
        .run(&["submit", spec.to_str().unwrap(), "--key", "r"])
        .status
        .success());
    let out = env.run(&["cancel", "r", "--no-wait"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("nobody drives the run now"),
        "{}",
        stderr(&out)
    );
}

/// Every command with `--json` prints a documented view (submit, wait, cancel, rerun: `run`),
/// and a documented `error` on stdout when it fails, whatever the command.
#[test]
fn submit_wait_cancel_and_rerun_print_documented_json_and_json_errors() {
    let env = Env::new();
    let ok = env.spec("ok.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    let ok = ok.to_str().unwrap();
    let long = env.spec(
        "long.toml",
        "[job]\nkind = 'local'\ncommand = ['sleep', '60']\n",
    );
    let long = long.to_str().unwrap();

    let v = json_of(&env.run(&["submit", ok, "--key", "s", "--json"]));
    assert_valid("run", &v);
    assert_eq!(
        (v["key"].as_str(), v["queued"].as_bool()),
        (Some("s"), Some(true))
    );
    // Nobody drives `s`: cancel records the request and says so; the JSON is the run.
    let out = env.run(&["cancel", "s", "--no-wait", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_valid("run", &v);
    assert_eq!(v["cancel_requested"], true, "{v}");

    let out = env.run(&["run", ok, "--key", "done"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json_of(&env.run(&["wait", "done", "--json"]));
    assert_valid("run", &v);
    assert_eq!(v["state"], "succeeded");
    let v = json_of(&env.run(&["rerun", "done", "--json"]));
    assert_valid("run", &v);
    assert_eq!(v["state"], "succeeded");

    // A cancel that kills a running job: the run as it ended.
    let mut run = env.spawn(&["run", long, "--key", "c"], &[]);
    assert!(wait_until(std::time::Duration::from_secs(20), || env
        .status("c")
        .is_some_and(|s| s["phase"]["phase"] == "submitted")));
    let out = env.run(&["cancel", "c", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json_of(&out);
    assert_valid("run", &v);
    assert_eq!(v["state"], "cancelled", "{v}");
    wait_child(&mut run, std::time::Duration::from_secs(20));

    let bad = env.spec("bad.toml", "[job]\nkind = 'nope'\n");
    for args in [
        &["run", bad.to_str().unwrap(), "--json"][..],
        &["submit", bad.to_str().unwrap(), "--key", "b", "--json"],
        &["wait", "nope", "--json"],
        &["cancel", "nope", "--json"],
        &["rerun", "nope", "--json"],
        &["logs", "nope", "--json"],
    ] {
        let out = env.run(args);
        let v = json_of(&out);
        assert_valid("error", &v);
        assert_eq!(
            Some(i64::from(out.status.code().unwrap())),
            v["error"]["exit_code"].as_i64(),
            "{args:?}"
        );
    }
}
