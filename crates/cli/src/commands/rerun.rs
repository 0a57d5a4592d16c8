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
use tether_fleet::{drive::RerunError, Ctx};

use super::{parse_key, read_spec, run, CliError, Exit};
use crate::args::RerunArgs;

pub async fn rerun(ctx: &Ctx, args: RerunArgs) -> Result<Exit, CliError> {
    let key = parse_key(&args.key)?;
    let spec = match &args.spec {
        Some(path) => Some(read_spec(path)?),
        None => None,
    };
    let tether_fleet::drive::Fresh {
        store,
        run: fresh,
        built,
        ..
    } = match tether_fleet::drive::rerun(ctx, &key, spec).await {
        Ok(r) => r,
        Err(RerunError::Open(e)) => return Err(e.into()),
        Err(RerunError::Store(e)) => return Err(CliError::store(e)),
        Err(e @ RerunError::NoRun(_)) => return Err(CliError::not_found(e.to_string())),
        Err(e) => return Err(CliError::usage(e.to_string())),
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
