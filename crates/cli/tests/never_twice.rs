//! Issue 7 items 4, 5, 9 and 15 (CLI side), with real processes and real local jobs counted
//! from outside (each job appends a line to a counter file before doing anything else).
mod common;

use std::{io::Write, process::Stdio, time::Duration};

use common::*;
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn keys(env: &Env) -> Vec<String> {
    let out = env.run(&["ls", "--json"]);
    if !out.status.success() {
        return Vec::new(); // no state store yet: read commands never create one
    }
    let v = json(&out);
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect()
}

fn submitted(env: &Env, key: &str) -> bool {
    env.status(key)
        .is_some_and(|s| s["phase"]["phase"] == "submitted")
}

#[test]
fn editing_a_spec_after_a_sigkill_is_refused_instead_of_a_second_job() {
    let env = Env::new();
    let counter = env.path("counter");
    let spec = env.spec("job.toml", &counter_spec(&counter, "sleep 30", ""));
    let mut first = env.spawn(&["run", spec.to_str().unwrap()], &[]);
    let mut key = String::new();
    assert!(
        wait_until(T, || {
            key = keys(&env).pop().unwrap_or_default();
            !key.is_empty() && submitted(&env, &key)
        }),
        "the first run never recorded its job"
    );
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&spec)
        .unwrap();
    writeln!(f, "# a comment added after the crash").unwrap();
    let out = env.run(&["run", spec.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for needle in [
        key.as_str(),
        "running",
        "generation 1",
        "since 20",
        "tether cancel",
        "--key",
    ] {
        assert!(
            err.contains(needle),
            "the refusal should mention {needle:?}: {err}"
        );
    }
    assert_eq!(keys(&env), [key.clone()], "no second run was created");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count_lines(&counter), 1, "no second job was started");
    // Kill the job the test left running.
    let _ = env.run(&["cancel", &key]);
}

#[test]
fn the_same_spec_in_two_directories_is_two_runs() {
    let env = Env::new();
    let counter = env.path("counter");
    let body = counter_spec(&counter, "echo done", "");
    let mut specs = Vec::new();
    for dir in ["a", "b"] {
        std::fs::create_dir(env.path(dir)).unwrap();
        let p = env.path(&format!("{dir}/job.toml"));
        std::fs::write(&p, &body).unwrap();
        specs.push(p);
    }
    for spec in &specs {
        let out = env.run(&["run", spec.to_str().unwrap(), "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(json(&out)["replayed"], false);
    }
    assert_eq!(count_lines(&counter), 2, "both projects' jobs really ran");
    let ks = keys(&env);
    assert_eq!(ks.len(), 2, "{ks:?}");
    assert!(ks.iter().all(|k| k.starts_with("job-toml-")), "{ks:?}");
}

#[test]
fn a_finished_key_says_it_was_replayed_and_rerun_runs_a_fresh_instance() {
    let env = Env::new();
    let counter = env.path("counter");
    let spec = env.spec("job.toml", &counter_spec(&counter, "echo done", ""));
    let spec = spec.to_str().unwrap();
    let out = env.run(&["run", spec, "--key", "r1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = env.run(&["run", spec, "--key", "r1", "--json"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("already succeeded at 20"), "{err}");
    assert!(
        err.contains("(generation 1, id ") && err.contains("nothing was run"),
        "{err}"
    );
    assert_eq!(json(&out)["replayed"], true);
    assert_eq!(count_lines(&counter), 1, "a replay runs nothing");

    let out = env.run(&["rerun", "r1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(count_lines(&counter), 2, "the rerun really ran the job");
    assert_eq!(v["replayed"], false);
    let subs = v["submissions"].as_array().unwrap();
    assert_eq!(subs.len(), 2, "the earlier instance is kept: {v}");
    assert_eq!(subs[1]["submission"]["generation"], 2);
    assert_ne!(subs[0]["submission"]["tag"], subs[1]["submission"]["tag"]);
    assert!(env.decisions("r1").contains(&"rerun".to_string()));

    // A failed run replays its failure with exit 1; rerun with another spec runs that one.
    let bad = env.spec(
        "bad.toml",
        &counter_spec(&counter, "exit 3", "max_submissions = 1"),
    );
    let out = env.run(&["run", bad.to_str().unwrap(), "--key", "r2"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = env.run(&["run", bad.to_str().unwrap(), "--key", "r2"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("already failed"), "{}", stderr(&out));
    assert_eq!(count_lines(&counter), 3);
    let out = env.run(&["rerun", "r2", spec]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count_lines(&counter), 4);
}

#[test]
fn rerun_refuses_an_unfinished_or_unknown_run() {
    let env = Env::new();
    let counter = env.path("counter");
    let spec = env.spec("job.toml", &counter_spec(&counter, "sleep 30", ""));
    let out = env.run(&["rerun", "nope"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let mut first = env.spawn(&["run", spec.to_str().unwrap(), "--key", "u1"], &[]);
    assert!(wait_until(T, || submitted(&env, "u1")));
    let out = env.run(&["rerun", "u1"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not finished") && err.contains("tether cancel u1"),
        "{err}"
    );
    assert!(submitted(&env, "u1"), "left untouched");
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    assert_eq!(count_lines(&counter), 1);
    let _ = env.run(&["cancel", "u1"]);
}

#[test]
fn ls_into_a_closed_pipe_exits_quietly() {
    let env = Env::new();
    for i in 0..50 {
        let spec = env.spec(
            &format!("j{i}.toml"),
            "[job]\nkind = 'local'\ncommand = ['true']\n",
        );
        let out = env.run(&["submit", spec.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    for _ in 0..3 {
        let mut child = env
            .cmd()
            .arg("ls")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before tether writes (it opens the store first).
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(out.status.code(), Some(0), "{err}");
    }
}

#[test]
fn a_worker_whose_run_task_panics_releases_the_run() {
    let env = Env::new();
    let counter = env.path("counter");
    let spec = env.spec(
        "job.toml",
        &counter_spec(&counter, "sleep 2; echo done", ""),
    );
    let out = env.run(&["submit", spec.to_str().unwrap(), "--key", "p1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut worker = env.spawn(&["worker"], &[("TETHER_FAULT", "panic-after-submitted")]);
    // Released, not black-holed: the release is in the history (the worker, free again, may
    // claim the run back and finish it before this test looks).
    assert!(
        wait_until(T, || env.decisions("p1").iter().any(|d| d == "released")),
        "the worker never released the run whose task panicked: {}",
        env.history_text("p1")
    );
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the worker itself keeps going"
    );
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "p1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count_lines(&counter), 1, "taken over, not started again");
    signal(worker.id(), "TERM");
    let st = wait_child(&mut worker, T);
    assert_eq!(st.code(), Some(130));
}

#[test]
fn oversized_specs_and_bad_timings_are_refused_before_anything_is_written() {
    let huge = format!(
        "{}\n[job]\nkind = 'local'\ncommand = ['true']\n",
        "# padding padding padding padding padding padding padding\n".repeat(20_000)
    );
    let spark = "[job]\nkind='spark-standalone'\nmaster_rest='http://m:6066'\n\
                 app_resource='file:/j.jar'\nmain_class='a.B'\nrequest_timeout='0s'\n";
    for (body, needles) in [
        (huge.as_str(), &["larger than 1024 KiB"][..]),
        (spark, &["request_timeout", "out of range"][..]),
        (
            "status_timeout = '18446744073709551615s1s'\n[job]\nkind='local'\ncommand=['true']\n",
            &["bad.toml:1:", "18446744073709551615s1s", "too long"][..],
        ),
        (
            "poll_interval = '0s'\n[job]\nkind='local'\ncommand=['true']\n",
            &["poll_interval", "out of range"][..],
        ),
    ] {
        let env = Env::new();
        let spec = env.spec("bad.toml", body);
        let out = env.run(&["run", spec.to_str().unwrap(), "--key", "bad"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        for n in needles {
            assert!(err.contains(n), "error should mention {n:?}: {err}");
        }
        assert!(
            !std::path::Path::new(&env.state).exists(),
            "nothing written: {err}"
        );
    }
}

#[test]
fn a_run_stored_with_the_old_spec_hash_is_not_refused() {
    let env = Env::new();
    let counter = env.path("counter");
    let body = counter_spec(&counter, "echo done", "");
    let spec = env.spec("job.toml", &body);
    let out = env.run(&["submit", spec.to_str().unwrap(), "--key", "old"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // What an earlier tether stored: 16 hex digits of FNV-1a of the text.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let db = rusqlite::Connection::open(&env.state).unwrap();
    db.execute(
        "UPDATE runs SET spec_hash = ?1 WHERE key = 'old'",
        [format!("{h:016x}")],
    )
    .unwrap();
    drop(db);
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "old"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count_lines(&counter), 1);
    let other = env.spec("other.toml", &counter_spec(&counter, "echo other", ""));
    let out = env.run(&["run", other.to_str().unwrap(), "--key", "old"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_worker_with_a_closed_stderr_drives_and_releases_without_panicking() {
    let env = Env::new();
    let counter = env.path("counter");
    let spec = env.spec("job.toml", &counter_spec(&counter, "sleep 30", ""));
    let out = env.run(&["submit", spec.to_str().unwrap(), "--key", "w1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut worker = env
        .cmd()
        .arg("worker")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Every diagnostic of this worker now meets EPIPE (its banner, its decisions, its stop).
    drop(worker.stderr.take());
    assert!(
        wait_until(T, || submitted(&env, "w1")),
        "the worker died on its closed stderr: {:?}",
        worker.try_wait()
    );
    signal(worker.id(), "TERM");
    let st = wait_child(&mut worker, T);
    assert_eq!(st.code(), Some(130), "stopped cleanly, no panic");
    let s = env.status("w1").unwrap();
    assert!(s["owner"].is_null(), "released on SIGTERM: {s}");
    assert_eq!(count_lines(&counter), 1);
    let _ = env.run(&["cancel", "w1"]);
}
