//! Bring your own backend: implement [`Connector`] (and [`FindByTag`]) and the engine gives it
//! the same guarantees as the built-in connectors: intent before submit, id before poll, tag
//! lookup after a crash, fencing, unknown-never-resubmits. A [`ConnectorFactory`] with its own
//! spec type, registered in a [`Registry`] with one line, turns spec files of the new kind into
//! connectors like the built-in kinds.
//!
//! The "backend" here is a toy batch service: a directory in which a job is a file named after
//! its tag, whose content becomes `done` after a few seconds (a thread plays the service).
//! Run it twice and interrupt the first run with Ctrl-C: the second run reconnects.
//!
//! ```sh
//! cargo run -p tether-cli --example custom_connector -- /tmp/toy-backend /tmp/toy-state.db
//! ```
use std::{path::PathBuf, sync::Arc, time::Duration};

use async_trait::async_trait;
use serde::Deserialize;
use tether_connectors::registry::{BuildContext, Built, ConnectorFactory, Registry};
use tether_core::{
    connector::{CancelError, FindByTag, JobRef, SubmitError, SubmitRequest},
    engine::{Engine, Finish, LeaseSettings, Quiet},
    ids::{ExternalId, OwnerId, RunKey, Tag},
    observe::{FailureClass, JobStatus, Lookup},
    spec::{parse_spec, SpecError},
    store::NewRun,
    Connector,
};

/// The `[job]` table of a `kind = "toy-batch"` spec. `deny_unknown_fields`: a typo is a spec
/// error with its line and column, as for the built-in kinds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToyJob {
    #[allow(dead_code)]
    kind: String,
    /// The service's directory.
    dir: PathBuf,
}

/// This kind has no recovery shape: a `[recovery]` table may hold nothing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoRecovery {}

/// Builds [`ToyBatch`] connectors from `kind = "toy-batch"` specs.
struct ToyFactory;

impl ConnectorFactory for ToyFactory {
    fn kind(&self) -> &str {
        "toy-batch"
    }

    fn build(&self, file: &str, text: &str, ctx: &BuildContext) -> Result<Built, SpecError> {
        let spec = parse_spec::<ToyJob, NoRecovery>(file, text)?;
        // Relative paths are the submitter's, as for the built-in kinds.
        let dir = ctx.base_dir().join(&spec.job.dir);
        Ok(Built {
            connector: Arc::new(ToyBatch { dir }),
            policy: spec.policy(Duration::from_millis(500), false),
            durable: spec.durable,
        })
    }
}

/// Connector for the toy batch service in `dir`.
struct ToyBatch {
    dir: PathBuf,
}

#[async_trait]
impl Connector for ToyBatch {
    fn kind(&self) -> &str {
        "toy-batch"
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        // The tag names the job, so the backend itself refuses duplicates: create_new.
        let path = self.dir.join(req.submission.tag.as_str());
        // Right before creating: prove we still own the run (a frozen ex-owner stops here).
        req.fence.confirm().await?;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(SubmitError::Unavailable {
                    reason: e.to_string(),
                })
            }
        }
        std::fs::write(&path, "running").map_err(|e| SubmitError::Ambiguous {
            reason: e.to_string(),
        })?;
        // The "service" finishes the job in 3 seconds, whether we are alive or not.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            let _ = std::fs::write(path, "done");
        });
        Ok(ExternalId(req.submission.tag.to_string()))
    }

    async fn status(&self, job: &JobRef) -> JobStatus {
        if job.external_id.0 != job.submission.tag.as_str() {
            return JobStatus::Mismatch {
                found: job.external_id.0.clone(),
            };
        }
        match std::fs::read_to_string(self.dir.join(&job.external_id.0)) {
            Ok(s) if s == "done" => JobStatus::Succeeded {
                result: serde_json::json!({ "file": job.external_id.0 }),
            },
            Ok(s) if s == "running" || s.is_empty() => JobStatus::running("running"),
            Ok(s) => JobStatus::Failed {
                class: FailureClass::Other,
                message: s,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => JobStatus::NotFound {
                detail: "no such job".into(),
            },
            Err(e) => JobStatus::Unknown {
                reason: e.to_string(),
            },
        }
    }

    async fn cancel(&self, job: &JobRef) -> Result<(), CancelError> {
        std::fs::write(self.dir.join(&job.external_id.0), "killed").map_err(|e| {
            CancelError::Unavailable {
                reason: e.to_string(),
            }
        })
    }

    fn find_by_tag(&self) -> Option<&dyn FindByTag> {
        Some(self)
    }
}

#[async_trait]
impl FindByTag for ToyBatch {
    async fn find_by_tag(&self, tag: &Tag) -> Lookup {
        match self.dir.join(tag.as_str()).try_exists() {
            Ok(true) => Lookup::Found {
                external_id: ExternalId(tag.to_string()),
            },
            Ok(false) => Lookup::Absent,
            Err(e) => Lookup::Unknown {
                reason: e.to_string(),
            },
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "/tmp/toy-backend".into()));
    let state = args.next().unwrap_or_else(|| "/tmp/toy-state.db".into());
    std::fs::create_dir_all(&dir)?;

    // One line adds the kind to the built-in ones; specs of it then build like any other.
    let registry = Registry::builtin().with(ToyFactory);
    let text = format!(
        "[job]\nkind = \"toy-batch\"\ndir = {:?}\n",
        dir.display().to_string()
    );
    let built = registry.build("toy.toml", &text, &BuildContext::default())?;

    let store = tether_store::open(&state).await?;
    let key = RunKey::new("toy-example")?;
    store
        .create_run(&NewRun {
            key: key.clone(),
            kind: "toy-batch".into(),
            spec: text.clone(),
            spec_name: "toy.toml".into(),
            spec_hash: "toy".into(),
            queued: false,
            base_dir: None,
        })
        .await?;
    let engine = Engine::new(
        store.clone(),
        built.connector,
        built.policy,
        LeaseSettings::default(),
        Arc::new(Quiet),
    );
    let owner = OwnerId(format!("example:{}", std::process::id()));
    match engine.run(&key, &owner).await? {
        Finish::Outcome(o) => println!("{}", o.label()),
        Finish::GaveUp { reason } => println!("unknown: {reason}"),
        Finish::Elsewhere(e) => println!("unknown: {e}"),
    }
    for h in store.history(&key).await? {
        eprintln!("epoch {} {:<16} {}", h.epoch, h.decision, h.reason);
    }
    Ok(())
}
