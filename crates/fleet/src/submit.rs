//! Enqueueing a spec for the workers (`tether submit`, `POST /api/v1/runs` of `tether serve`).
//!
//! ## Guarantees
//! - The spec is built with its connector (the checks of a new submission included) before
//!   anything is written: a bad spec writes nothing and its error keeps line and column.
//! - A key that already has a run with another spec content is refused ([`SubmitError::OtherSpec`])
//!   and nothing is written; the same content returns the existing run.
use tether_core::{
    ids::RunKey,
    journal::Phase,
    spec::{spec_hash, spec_hash_matches},
    store::{Created, NewRun, RunRecord, StoreError},
};

use crate::{
    context::{BuildError, OpenError},
    view::{iso_time, state},
    Ctx,
};

/// A spec to enqueue.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubmitSpec {
    /// The spec's file name, for messages and views.
    pub file: String,
    /// Its text (TOML).
    pub text: String,
    /// The run key; without it, one derived from the content (the same spec twice is one run).
    pub key: Option<RunKey>,
    /// The directory its relative paths resolve against (the submitter's).
    pub base_dir: Option<String>,
}

impl SubmitSpec {
    /// A spec named `file` with `text`, no key, no base directory.
    pub fn new(file: impl Into<String>, text: impl Into<String>) -> SubmitSpec {
        SubmitSpec {
            file: file.into(),
            text: text.into(),
            key: None,
            base_dir: None,
        }
    }
}

/// What the submission did.
#[derive(Debug)]
#[non_exhaustive]
pub enum Submitted {
    /// A new run, queued.
    New(RunRecord),
    /// The key already had a run with this content: nothing was enqueued.
    Existing(RunRecord),
}

/// Why a spec was not enqueued. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The spec does not build (its message has file, line and column where known).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The spec has `durable = false`.
    #[error("a spec with durable = false cannot be queued for workers: use `tether run`")]
    NotDurable,
    /// The key belongs to a run with other content.
    #[error("{0}")]
    OtherSpec(String),
    /// The state store could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A store call failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key of a spec submitted without one and without a path: derived from its content.
pub fn content_key(text: &str) -> RunKey {
    RunKey::from_path("stdin", std::path::Path::new(&spec_hash(text)))
}

/// Validates `spec` and enqueues it (or finds the run its key already has).
pub async fn submit(ctx: &Ctx, spec: SubmitSpec) -> Result<Submitted, SubmitError> {
    let mut build = ctx.build.clone();
    if let Some(dir) = &spec.base_dir {
        build.base_dir = Some(dir.into());
    }
    let built = ctx
        .registry
        .build_to_submit(&spec.file, &spec.text, &build)
        .map_err(BuildError::from)?;
    if !built.durable {
        return Err(SubmitError::NotDurable);
    }
    let run = NewRun {
        key: spec.key.unwrap_or_else(|| content_key(&spec.text)),
        kind: built.connector.kind().to_string(),
        spec_hash: spec_hash(&spec.text),
        spec: spec.text,
        spec_name: spec.file,
        queued: true,
        base_dir: spec.base_dir,
    };
    let store = ctx.store().await?;
    match store.create_run(&run).await? {
        Created::New(r) => Ok(Submitted::New(r)),
        Created::Existing(existing) if spec_hash_matches(&existing.spec_hash, &run.spec) => {
            Ok(Submitted::Existing(existing))
        }
        Created::Existing(existing) => Err(SubmitError::OtherSpec(other_spec(&existing))),
    }
}

/// Why a spec whose key belongs to a run of other content is refused, and what to do.
pub fn other_spec(existing: &RunRecord) -> String {
    let key = &existing.key;
    let generation = existing
        .last_generation
        .map(|g| g.to_string())
        .unwrap_or_else(|| "-".into());
    match &existing.journal.phase {
        Phase::Finished { .. } => format!(
            "run {key} already {} at {} (generation {generation}) from another spec ({}; its \
             content differs); nothing was run. To run the new content: `tether rerun {key} SPEC` \
             (a fresh run under this key) or give another key (`--key NEW`)",
            state(existing),
            iso_time(existing.updated_at_ms),
            existing.spec_name,
        ),
        _ => {
            let owner = match (&existing.owner, existing.lease_alive) {
                (Some(o), true) => format!("owner {o}"),
                _ => "no live owner".into(),
            };
            format!(
                "run {key} is {} (generation {generation}, {owner}, since {}, last change {}) from \
                 another spec ({}; its content differs); nothing was written. Wait for it to end, \
                 kill it with `tether cancel {key}`, resume it with the original content, or \
                 run this spec under another key (`--key NEW`)",
                state(existing),
                iso_time(existing.created_at_ms),
                iso_time(existing.updated_at_ms),
                existing.spec_name,
            )
        }
    }
}
