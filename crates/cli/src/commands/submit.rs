//! `tether submit`: enqueue a run for the workers.
use tether_core::{
    ids::{fnv1a64, RunKey},
    store::{Created, NewRun},
};

use super::{parse_key, read_spec, CliError};
use crate::{args::SubmitArgs, context::Ctx, output};

/// Builds the `NewRun` of a spec file after validating it with its connector.
pub fn new_run(
    ctx: &Ctx,
    spec: &std::path::Path,
    key: Option<&str>,
    queued: bool,
) -> Result<(NewRun, tether_connectors::registry::Built), CliError> {
    let (file, text) = read_spec(spec)?;
    let built = ctx.connector_to_submit(&file, &text)?;
    let key = match key {
        Some(k) => parse_key(k)?,
        None => {
            let stem = spec
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            RunKey::from_content(&stem, text.as_bytes())
        }
    };
    let run = NewRun {
        key,
        kind: built.connector.kind().to_string(),
        spec_hash: format!("{:016x}", fnv1a64(text.as_bytes())),
        spec: text,
        spec_name: file,
        queued,
    };
    Ok((run, built))
}

/// Creates the run, or checks that the existing run with this key has the same spec.
pub async fn create(store: &dyn tether_core::Store, run: &NewRun) -> Result<Created, CliError> {
    let created = store.create_run(run).await.map_err(CliError::store)?;
    if let Created::Existing(existing) = &created {
        if existing.spec_hash != run.spec_hash {
            return Err(CliError::usage(format!(
                "run key {} already belongs to a run of another spec ({}, created from {}): use another --key, \
                 or run the original spec to resume it",
                run.key, existing.spec_hash, existing.spec_name
            )));
        }
    }
    Ok(created)
}

pub async fn submit(ctx: &Ctx, args: SubmitArgs) -> Result<u8, CliError> {
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
            eprintln!(
                "tether: run {} already exists ({}): nothing enqueued",
                r.key,
                output::state(&r)
            );
            r
        }
    };
    if args.json {
        println!("{}", output::run_json(&record, &[]));
    } else {
        println!("{}", record.key);
    }
    Ok(0)
}
