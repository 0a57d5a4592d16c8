//! A local job outlives the tether process that submitted it, even SIGKILLed together with its
//! whole process group, and any later process finds it by tag and learns its outcome.
//!
//! The submitter must be a process of its own, so this test has its own `main`
//! (`harness = false`): run without arguments it is the test; with `--as-submitter` it is the
//! submitter, which submits, prints the external id and then polls forever, like `tether run`.
use std::{
    io::{BufRead, BufReader},
    os::unix::process::CommandExt,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

mod local_common;

use local_common::*;
use tether_connectors::local::identity::ProcStat;
use tether_core::{
    connector::{JobRef, LogCursor, LogStream},
    ids::ExternalId,
    journal::Shape,
    observe::{JobStatus, Lookup},
};

const KEY: &str = "survives-submitter-sigkill";

fn job_toml(root: &Path) -> String {
    format!(
        "command = [\"sh\", \"-c\", \"while [ ! -e go ]; do sleep 0.05; done; echo done\"]\nworkdir = {}",
        toml_str(root)
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        println!("survives_sigkilled_submitter: test");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Some(i) = args.iter().position(|a| a == "--as-submitter") {
        rt.block_on(submitter(Path::new(&args[i + 1])));
        return;
    }
    // Honour `cargo test <filter>` like the standard harness does (flags are ignored).
    let filters: Vec<&String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !filters.is_empty()
        && !filters
            .iter()
            .any(|f| "survives_sigkilled_submitter".contains(f.as_str()))
    {
        return;
    }
    rt.block_on(survives_sigkilled_submitter());
    println!("test survives_sigkilled_submitter ... ok");
}

async fn submitter(root: &Path) {
    let c = connector(&ctx(root), &job_toml(root));
    let job = submit(&*c, &request(KEY, Shape::Normal)).await;
    println!("{}", job.external_id);
    loop {
        let _ = c.status(&job).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn survives_sigkilled_submitter() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--as-submitter")
        .arg(root)
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let submitter_pid = i32::try_from(child.id()).unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let id = ExternalId(line.trim().to_string());
    assert!(id.0.contains(':'), "the submitter printed no id: {line:?}");
    let supervisor_pid: i32 = id.0.split_once(':').unwrap().0.parse().unwrap();
    assert_ne!(
        ProcStat::read(supervisor_pid).unwrap().ppid,
        submitter_pid,
        "the supervisor is the submitter's child"
    );

    // SIGKILL the submitter's whole process group, as a crash or a Ctrl-C storm would.
    let killed = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{submitter_pid}")])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the submitter should have died of SIGKILL"
    );

    // A new process (this one) picks the job up by its tag alone.
    let c = connector(&ctx(root), &job_toml(root));
    let req = request(KEY, Shape::Normal);
    let found = c
        .find_by_tag()
        .unwrap()
        .find_by_tag(&req.submission.tag)
        .await;
    assert_eq!(
        found,
        Lookup::Found {
            external_id: id.clone()
        }
    );
    let job = JobRef {
        external_id: id,
        submission: req.submission.clone(),
    };
    match c.status(&job).await {
        JobStatus::Active { .. } => {}
        other => panic!("the job should still run after the submitter's death, got {other:?}"),
    }
    // Submitting again (a restarted tether would) does not start a second job.
    assert_eq!(c.submit(&req).await.unwrap(), job.external_id);

    std::fs::write(root.join("go"), "").unwrap();
    match wait_terminal(&*c, &job).await {
        JobStatus::Succeeded { result } => assert_eq!(result["exit_code"], 0),
        other => panic!("expected success, got {other:?}"),
    }
    let out = c
        .logs()
        .unwrap()
        .read_logs(&job, LogStream::Stdout, &LogCursor::start(), 1024)
        .await
        .unwrap();
    assert_eq!(out.data, b"done\n");
}
