//! `tether submit`: enqueue a run for the workers.
use tether_core::{
    ids::RunKey,
    journal::Phase,
    spec::{spec_hash, spec_hash_matches},
    store::{Created, NewRun, RunRecord},
};

use super::{parse_key, read_spec, CliError, Exit};
use crate::{args::SubmitArgs, output};
use tether_fleet::{view::RunView, Ctx};

/// Builds the `NewRun` of a spec file after validating it with its connector.
pub fn new_run(
    ctx: &Ctx,
    spec: &std::path::Path,
    key: Option<&str>,
    queued: bool,
) -> Result<(NewRun, tether_connectors::registry::Built), CliError> {
    // `-`: the spec comes from stdin; its key (unless given) from its content, so the same
    // spec piped twice is the same run.
    let from_stdin = spec.as_os_str() == "-";
    let (file, text) = if from_stdin {
        crate::io::read_spec_stdin()?
    } else {
        read_spec(spec)?
    };
    let built = ctx.connector_to_submit(&file, &text)?;
    let key = match key {
        Some(k) => parse_key(k)?,
        None if from_stdin => RunKey::from_path("stdin", std::path::Path::new(&spec_hash(&text))),
        None => {
            let stem = spec
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let canonical = std::fs::canonicalize(spec).map_err(|e| {
                CliError::usage(format!(
                    "cannot resolve the path of job spec {file}: {e} (or give a key with --key)"
                ))
            })?;
            RunKey::from_path(&stem, &canonical)
        }
    };
    let run = NewRun {
        key,
        kind: built.connector.kind().to_string(),
        spec_hash: spec_hash(&text),
        spec: text,
        spec_name: file,
        queued,
        // Whoever drives the run takes the spec's relative paths from here, not from its own
        // working directory.
        base_dir: std::env::current_dir()
            .ok()
            .map(|d| d.display().to_string()),
    };
    Ok((run, built))
}

/// Creates the run, or checks that the existing run with this key has the same spec.
pub async fn create(store: &dyn tether_core::Store, run: &NewRun) -> Result<Created, CliError> {
    let created = store.create_run(run).await.map_err(CliError::store)?;
    if let Created::Existing(existing) = &created {
        if !spec_hash_matches(&existing.spec_hash, &run.spec) {
            return Err(CliError::usage(other_spec(existing)));
        }
    }
    Ok(created)
}

/// Why a spec whose key belongs to a run of other content is refused, and what to do. Nothing
/// is written: running the new content under the old key would either start a second job beside
/// the running one or return a result that the new content never produced.
fn other_spec(existing: &RunRecord) -> String {
    let key = &existing.key;
    let generation = existing
        .last_generation
        .map(|g| g.to_string())
        .unwrap_or_else(|| "-".into());
    match &existing.journal.phase {
        Phase::Finished { .. } => format!(
            "run {key} already {} at {} (generation {generation}) from another spec ({}; its \
             content differs); nothing was run. To run the new content: `tether rerun {key} SPEC` \
             (a fresh run under this key) or give another key with --key NEW",
            output::state(existing),
            output::iso_time(existing.updated_at_ms),
            existing.spec_name,
        ),
        _ => {
            let owner = match (&existing.owner, existing.lease_alive) {
                (Some(o), true) => format!("owner {o}"),
                _ => "no live owner".into(),
            };
            format!(
                "run {key} is {} (generation {generation}, {owner}, since {}, last change {}) from \
                 another spec ({}; its content differs); nothing was written. Wait for it to end, kill it with \
                 `tether cancel {key}`, resume it with the original content, or run this spec \
                 under another key with --key NEW",
                output::state(existing),
                output::iso_time(existing.created_at_ms),
                output::iso_time(existing.updated_at_ms),
                existing.spec_name,
            )
        }
    }
}

pub async fn submit(ctx: &Ctx, args: SubmitArgs) -> Result<Exit, CliError> {
    let (run, built) = new_run(ctx, &args.spec, args.key.as_deref(), true)?;
    if !built.durable {
        return Err(CliError::usage(
            "a spec with durable = false cannot be queued for workers: use `tether run`",
        ));
    }
    let store = ctx.store().await?;
    let created = create(store.as_ref(), &run).await?;
    let record = match created {
        Created::New(r) => r,
        Created::Existing(r) => {
            let hint = match r.journal.phase {
                Phase::Finished { .. } => format!(
                    " (finished at {}; `tether rerun {}` runs it again)",
                    output::iso_time(r.updated_at_ms),
                    r.key
                ),
                _ => String::new(),
            };
            diag!(
                "tether: run {} already exists ({}): nothing enqueued{hint}",
                r.key,
                output::state(&r)
            );
            r
        }
    };
    if args.json {
        say!("{}", output::json_line(&RunView::new(&record, &[])));
    } else {
        say!("{}", record.key);
    }
    Ok(Exit::Succeeded)
}
