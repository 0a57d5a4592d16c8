//! Helpers shared by the local backend's integration tests (included with `mod`).
#![allow(dead_code)]
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use tether_connectors::{
    local::LocalFactory,
    registry::{BuildContext, Built, Registry},
};
use tether_core::{
    connector::{JobRef, SubmitRequest},
    ids::{Generation, RunKey, Tag},
    journal::{Shape, Submission},
    observe::JobStatus,
    Connector,
};

/// Generous bound for anything a test waits for (the machine may be busy compiling).
pub const PATIENCE: Duration = Duration::from_secs(120);

/// A registry whose local factory keeps jobs in `jobs_dir`, and the context it builds with.
pub struct Ctx {
    pub jobs_dir: PathBuf,
    pub registry: Registry,
    pub build: BuildContext,
}

/// A context keeping jobs under `root/jobs`, with this crate's supervisor binary.
pub fn ctx(root: &Path) -> Ctx {
    let jobs_dir = root.join("jobs");
    let supervisor = vec![env!("CARGO_BIN_EXE_tether-supervisor").to_string()];
    Ctx {
        registry: Registry::builtin().with(LocalFactory::new(jobs_dir.clone(), supervisor)),
        jobs_dir,
        build: BuildContext {
            token_env_allow: Vec::new(),
            base_dir: Some(root.to_path_buf()),
        },
    }
}

/// Builds the spec `text` (file name `file`) with `ctx`'s registry.
pub fn build(file: &str, text: &str, ctx: &Ctx) -> Result<Built, tether_core::spec::SpecError> {
    ctx.registry.build(file, text, &ctx.build)
}

/// Builds a local spec whose `[job]` table has `kind = "local"` plus `job` (TOML lines), and
/// `extra` after it (e.g. a `[recovery]` table).
pub fn built(ctx: &Ctx, job: &str, extra: &str) -> Built {
    let text = format!("[job]\nkind = \"local\"\n{job}\n{extra}\n");
    match build("test.toml", &text, ctx) {
        Ok(b) => b,
        Err(e) => panic!("spec did not build: {e}\n{text}"),
    }
}

/// The connector of [`built`].
pub fn connector(ctx: &Ctx, job: &str) -> Arc<dyn Connector> {
    built(ctx, job, "").connector
}

/// A request for run key `key`, generation 1.
pub fn request(key: &str, shape: Shape) -> SubmitRequest {
    let key = RunKey::new(key).unwrap();
    let tag = Tag::derive(
        &tether_core::ids::StoreId::new("testst0r").unwrap(),
        &key,
        Generation::FIRST,
    );
    SubmitRequest {
        key,
        submission: Submission {
            generation: Generation::FIRST,
            tag,
            shape,
        },
        fence: tether_core::connector::FenceHandle(std::sync::Arc::new(
            tether_core::connector::NoFence,
        )),
    }
}

/// Submits and returns the job reference.
pub async fn submit(c: &dyn Connector, req: &SubmitRequest) -> JobRef {
    let id = c
        .submit(req)
        .await
        .unwrap_or_else(|e| panic!("submit failed: {e}"));
    JobRef {
        external_id: id,
        submission: req.submission.clone(),
    }
}

/// Polls until `pred` holds, panicking after [`PATIENCE`] with the last status.
pub async fn wait_for(
    c: &dyn Connector,
    job: &JobRef,
    what: &str,
    pred: impl Fn(&JobStatus) -> bool,
) -> JobStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let st = c.status(job).await;
        if pred(&st) {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "{} not {what} within {PATIENCE:?}: {st:?}",
            job.external_id
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the job is terminal.
pub async fn wait_terminal(c: &dyn Connector, job: &JobRef) -> JobStatus {
    wait_for(c, job, "terminal", JobStatus::is_terminal).await
}

/// Waits until `path` exists.
pub async fn wait_file(path: &Path) {
    let deadline = Instant::now() + PATIENCE;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear within {PATIENCE:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Is `pid` a live (non-zombie) process?
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next())
                .unwrap_or("X");
            !matches!(state, "Z" | "X" | "x")
        }
        Err(_) => false,
    }
}

/// Waits until `pid` is gone (or a zombie).
pub async fn wait_dead(pid: i32) {
    let deadline = Instant::now() + PATIENCE;
    while pid_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "pid {pid} still alive after {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// TOML string literal for a path.
pub fn toml_str(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}
