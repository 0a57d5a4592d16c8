//! Host-bound local runs, with two hosts simulated in one test: host B is the same binary run in
//! a UTS namespace of its own (`unshare --uts`, another host name), with another jobs directory,
//! against the same PostgreSQL store. Jobs are counted from outside (a line per start).
mod common;

use std::{path::Path, process::Output, time::Duration};

use common::*;

const T: Duration = Duration::from_secs(60);
const HOST_B: &str = "tether-test-host-b";

/// `tether <args>` as host B: another host name, another jobs directory.
fn run_on_b(env: &Env, jobs_b: &Path, args: &[&str]) -> Output {
    let mut c = env.cmd();
    let prog = c.get_program().to_owned();
    let mut cmd = std::process::Command::new("unshare");
    cmd.args([
        "--uts",
        "sh",
        "-c",
        &format!("hostname {HOST_B} && exec \"$0\" \"$@\""),
    ])
    .arg(prog)
    .args(args);
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env("TETHER_JOBS_DIR", jobs_b)
        .current_dir(env.dir.path())
        .stdin(std::process::Stdio::null());
    c.stdin(std::process::Stdio::null());
    cmd.output().expect("unshare tether")
}

fn submitted(env: &Env, key: &str) -> bool {
    env.status(key)
        .is_some_and(|s| s["phase"]["phase"] == "submitted")
}

#[test]
fn a_local_run_is_judged_only_on_its_host_and_in_its_recorded_jobs_dir() {
    let pg = PgScratch::create();
    let env = Env::with_state(&pg.url);
    let jobs_b = env.path("jobs-b");
    let counter = env.path("counter");
    let spec = env.spec("job.toml", &counter_spec(&counter, "sleep 4", ""));
    let spec = spec.to_str().unwrap();

    // Host A starts the run and dies after the id is recorded.
    let mut first = env.spawn(&["run", spec, "--key", "hb"], &[]);
    assert!(wait_until(T, || submitted(&env, "hb")), "never submitted");
    signal(first.id(), "KILL");
    wait_child(&mut first, T);
    let placement = env.status("hb").unwrap()["placement"].clone();
    assert_eq!(
        placement["location"].as_str(),
        Some(std::fs::canonicalize(&env.jobs).unwrap().to_str().unwrap()),
        "{placement}"
    );

    // Host B never judges it: unknown (exit 4, lives on host A), no second job.
    let out = run_on_b(&env, &jobs_b, &["run", spec, "--key", "hb"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("lives on host"), "{}", stderr(&out));
    assert_eq!(count_lines(&counter), 1, "host B started a second copy");

    // Host A again, from a shell whose TETHER_JOBS_DIR points elsewhere: the recorded
    // directory is used, the job is found and its real outcome returned.
    let out = env
        .cmd()
        .env("TETHER_JOBS_DIR", env.path("somewhere-else"))
        .args(["run", spec, "--key", "hb", "--json"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        count_lines(&counter),
        1,
        "the job must have run exactly once"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["submissions"].as_array().unwrap().len(), 1, "{v}");
}

#[test]
fn forget_host_is_the_only_way_to_declare_a_dead_hosts_jobs_lost() {
    let pg = PgScratch::create();
    let env = Env::with_state(&pg.url);
    let jobs_b = env.path("jobs-b");
    let counter = env.path("counter");
    // Host B starts the run and dies (with its machine) after the id is recorded.
    let spec = env.spec("job.toml", &counter_spec(&counter, "sleep 2", ""));
    let spec = spec.to_str().unwrap();
    let mut b = std::process::Command::new("unshare")
        .args([
            "--uts",
            "sh",
            "-c",
            &format!("hostname {HOST_B} && exec \"$0\" \"$@\""),
        ])
        .arg(env!("CARGO_BIN_EXE_tether"))
        .args(["run", spec, "--key", "fh"])
        .envs(
            env.cmd()
                .get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .env_remove("TETHER_FAULT")
        .env("TETHER_JOBS_DIR", &jobs_b)
        .current_dir(env.dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(T, || submitted(&env, "fh")),
        "never submitted on B"
    );
    signal(b.id(), "KILL");
    wait_child(&mut b, T);
    assert_eq!(env.status("fh").unwrap()["placement"]["host"], HOST_B);

    // Host A waits for B, whatever it tries.
    let out = env.run(&["run", spec, "--key", "fh"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let status = env.run(&["status", "fh"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains(&format!(
            "waiting for a worker (or `tether run`) on host {HOST_B}"
        )),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
    // Without --yes nothing changes.
    let out = env.run(&["forget-host", HOST_B]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(env.status("fh").unwrap()["placement"]["host"], HOST_B);

    // The operator declares B gone: A treats the job as lost and runs generation 2.
    let out = env.run(&["forget-host", HOST_B, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "fh");
    let out = env.run(&["run", spec, "--key", "fh", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["submissions"].as_array().unwrap().len(), 2, "{v}");
    assert!(env.decisions("fh").contains(&"host-forgotten".to_string()));
}
