//! `tether submit`: enqueue a run for the workers, through [`tether_fleet::submit`] (the same
//! validation and answers as `POST /api/v1/runs` of `tether serve`).
use tether_core::{
    ids::RunKey,
    journal::Phase,
    spec::spec_hash_matches,
    store::{Created, NewRun},
};

use super::{parse_key, read_spec, CliError, Exit};
use crate::{args::SubmitArgs, output};
use tether_fleet::{
    submit::{content_key, other_spec, SubmitError, SubmitSpec, Submitted},
    view::RunView,
    Ctx,
};

/// A spec read from `spec` (`-`: stdin): its name for messages, its text and its key — `key`
/// if given, else one derived from the spec's canonical path (from its content for stdin, so
/// the same spec piped twice is the same run).
pub fn read_keyed(
    spec: &std::path::Path,
    key: Option<&str>,
) -> Result<(String, String, RunKey), CliError> {
    let from_stdin = spec.as_os_str() == "-";
    let (file, text) = if from_stdin {
        crate::io::read_spec_stdin()?
    } else {
        read_spec(spec)?
    };
    let key = match key {
        Some(k) => parse_key(k)?,
        None if from_stdin => content_key(&text),
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
    Ok((file, text, key))
}

/// Whoever drives the run takes the spec's relative paths from here, not from its own working
/// directory.
fn base_dir() -> Option<String> {
    std::env::current_dir()
        .ok()
        .map(|d| d.display().to_string())
}

/// Builds the `NewRun` of a spec file (for `tether run`, driven here) after validating it with
/// its connector.
pub fn new_run(
    ctx: &Ctx,
    spec: &std::path::Path,
    key: Option<&str>,
    queued: bool,
) -> Result<(NewRun, tether_connectors::registry::Built), CliError> {
    let (file, text, key) = read_keyed(spec, key)?;
    let built = ctx.connector_to_submit(&file, &text)?;
    let run = NewRun {
        key,
        kind: built.connector.kind().to_string(),
        spec_hash: tether_core::spec::spec_hash(&text),
        spec: text,
        spec_name: file,
        queued,
        base_dir: base_dir(),
    };
    Ok((run, built))
}

/// Creates the run, or checks that the existing run with this key has the same spec (the
/// refusal is the fleet's [`other_spec`], as for `tether submit` and the server).
pub async fn create(store: &dyn tether_core::Store, run: &NewRun) -> Result<Created, CliError> {
    let created = store.create_run(run).await.map_err(CliError::store)?;
    if let Created::Existing(existing) = &created {
        if !spec_hash_matches(&existing.spec_hash, &run.spec) {
            return Err(CliError::usage(other_spec(existing)));
        }
    }
    Ok(created)
}

pub async fn submit(ctx: &Ctx, args: SubmitArgs) -> Result<Exit, CliError> {
    let (file, text, key) = read_keyed(&args.spec, args.key.as_deref())?;
    let mut spec = SubmitSpec::new(file, text);
    spec.key = Some(key);
    spec.base_dir = base_dir();
    let record = match tether_fleet::submit::submit(ctx, spec).await {
        Ok(Submitted::New(r)) => r,
        Ok(Submitted::Existing(r)) => {
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
        Ok(_) => return Err(CliError::usage("unexpected answer of the submission")),
        Err(SubmitError::Build(e)) => return Err(e.into()),
        Err(SubmitError::Open(e)) => return Err(e.into()),
        Err(SubmitError::Store(e)) => return Err(CliError::store(e)),
        Err(e) => return Err(CliError::usage(e.to_string())),
    };
    if args.json {
        say!("{}", output::json_line(&RunView::new(&record, &[])));
    } else {
        say!("{}", record.key);
    }
    Ok(Exit::Succeeded)
}
