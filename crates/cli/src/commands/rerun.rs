//! `tether rerun KEY [SPEC]`: a fresh run instance for a finished key.
//!
//! ## Guarantees
//! - Only a finished run (succeeded, failed or cancelled) with no live lease is rerun; an
//!   unfinished one is refused (exit 2) and left untouched.
//! - The earlier instance stays in `tether history` and in the submissions; the fresh instance
//!   continues the generation numbering, so its jobs carry new tags and a lookup by tag can
//!   never adopt (and report) the earlier instance's job. This is the trap of re-using a stored
//!   result id that "re-runs" without running anything.
//! - With SPEC, the spec is validated before anything is written and replaces the stored one.
use tether_core::{
    spec::spec_hash,
    store::{Rerun, RerunSpec, StoreError},
};

use super::{parse_key, read_spec, run, CliError, Exit};
use crate::{args::RerunArgs, context::Ctx, output};

pub async fn rerun(ctx: &Ctx, args: RerunArgs) -> Result<Exit, CliError> {
    let key = parse_key(&args.key)?;
    // Validate a new spec before touching the store: bad input writes nothing.
    let new_spec = match &args.spec {
        Some(path) => {
            let (file, text) = read_spec(path)?;
            let built = ctx.connector(&file, &text)?;
            if !built.durable {
                return Err(CliError::usage(format!(
                    "{file}: durable = false: such a spec has no journal to rerun; use `tether run {file}`"
                )));
            }
            Some((
                RerunSpec {
                    kind: built.connector.kind().to_string(),
                    spec_hash: spec_hash(&text),
                    spec: text,
                    spec_name: file,
                },
                built,
            ))
        }
        None => None,
    };
    let store = ctx.store().await?;
    let fresh = match store.rerun(&key, new_spec.as_ref().map(|(s, _)| s)).await {
        Ok(Rerun::Fresh(r)) => r,
        Ok(Rerun::NotFinished(r)) => {
            let generation = r
                .last_generation
                .map(|g| g.to_string())
                .unwrap_or_else(|| "-".into());
            return Err(CliError::usage(format!(
                "run {key} is {} (generation {generation}, last change {}), not finished: nothing \
                 was changed. Follow it with `tether status {key}`, or kill it with \
                 `tether cancel {key}` and rerun it once it is cancelled",
                output::state(&r),
                output::iso_time(r.updated_at_ms),
            )));
        }
        Ok(_) => return Err(CliError::usage(format!("run {key}: unexpected rerun answer"))),
        Err(StoreError::NotFound { .. }) => {
            return Err(CliError::usage(format!(
                "no run with key {key}: nothing to rerun (see `tether ls`; `tether run SPEC` starts a new one)"
            )))
        }
        Err(e) => return Err(CliError::store(e)),
    };
    let built = match new_spec {
        Some((_, built)) => built,
        None => ctx.connector_for(&fresh)?,
    };
    let next = fresh.journal.after_generation.map_or(1, |g| g.0 + 1);
    diag!("tether: {key}: fresh instance; its first submission is generation {next}");
    let resume = format!("tether run {} --key {key}", fresh.spec_name);
    let how = run::Drive {
        json: args.json,
        cancel_on_exit: args.cancel_on_exit,
        resume: &resume,
    };
    run::drive(ctx, store, &key, built, how).await
}
