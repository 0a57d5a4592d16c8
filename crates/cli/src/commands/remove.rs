//! `tether rm KEY` and `tether prune --older-than AGE`: finished runs go, with their
//! submissions, history and local job directories; `prune` also removes the registry rows of
//! workers gone for [`tether_fleet::view::GONE_AFTER_TTLS`] lease TTLs.
//!
//! ## Guarantees
//! - Only finished runs whose lease is not alive are removed: the store checks and removes in
//!   one transaction, so a run rerun or driven meanwhile stays.
//! - Job directories are removed after their rows, by the tags the store returned (each tag
//!   names one submission of that run only), and only on the host they live on.
//!
//! ## Caveats
//! - A crash between the rows and the files leaves job directories no run refers to; they hold
//!   only that run's logs and status files. Backends other than local keep their own logs.
use std::path::PathBuf;

use tether_connectors::local::{layout::JobDir, placement::this_host};
use tether_core::store::{Remove, RemovedRun, StoreError};
use tether_fleet::{view::iso_time, Ctx};

use super::{no_run, parse_key, CliError, Exit};
use crate::args::{PruneArgs, RmArgs};

/// Where a removed run's job directories are, or why they cannot be reached from here.
fn job_dirs(ctx: &Ctx, r: &RemovedRun) -> Result<Vec<PathBuf>, String> {
    if r.run.kind != "local" {
        return Ok(Vec::new());
    }
    let root = match &r.run.placement {
        Some(p) if p.host != this_host().host => {
            return Err(format!(
                "its job directories are on {}: remove them there",
                p.describe()
            ))
        }
        Some(p) => PathBuf::from(&p.location),
        None => ctx.config.jobs_dir.clone(),
    };
    Ok(r.tags
        .iter()
        .filter_map(|t| JobDir::new(&root, t.as_str()))
        .map(|d| d.path().to_path_buf())
        .filter(|p| p.exists())
        .collect())
}

/// Removes the run's job directories; how many went, and what could not.
fn remove_files(ctx: &Ctx, r: &RemovedRun) -> (usize, Vec<String>) {
    match job_dirs(ctx, r) {
        Ok(dirs) => {
            let mut problems = Vec::new();
            let mut n = 0;
            for d in dirs {
                match std::fs::remove_dir_all(&d) {
                    Ok(()) => n += 1,
                    Err(e) => problems.push(format!("cannot remove {}: {e}", d.display())),
                }
            }
            (n, problems)
        }
        Err(elsewhere) => (0, vec![elsewhere]),
    }
}

pub async fn rm(ctx: &Ctx, args: RmArgs) -> Result<Exit, CliError> {
    let key = parse_key(&args.key)?;
    let store = ctx.store().await?;
    let removed = match store.remove_run(&key).await {
        Ok(Remove::Removed(r)) => r,
        Ok(Remove::NotFinished(run)) => {
            let why = if run.lease_alive {
                format!(
                    "its lease is held by {} until it finishes",
                    run.owner.map(|o| o.to_string()).unwrap_or_default()
                )
            } else {
                "it has not finished".to_string()
            };
            return Err(CliError::usage(format!(
                "rm {key}: refused, {why}; nothing was removed. Cancel it first (`tether cancel \
                 {key}`) or wait for it (`tether wait {key}`)."
            )));
        }
        Ok(_) => return Err(CliError::usage(format!("rm {key}: nothing was removed"))),
        Err(StoreError::NotFound { .. }) => return Err(no_run(&key)),
        Err(e) => return Err(CliError::store(e)),
    };
    let (n, problems) = remove_files(ctx, &removed);
    say!(
        "removed {key} ({}, {} submission{}, {n} job director{})",
        removed.run.state,
        removed.tags.len(),
        if removed.tags.len() == 1 { "" } else { "s" },
        if n == 1 { "y" } else { "ies" }
    );
    for p in &problems {
        diag!("tether: rm {key}: {p}");
    }
    Ok(Exit::Succeeded)
}

pub async fn prune(ctx: &Ctx, args: PruneArgs) -> Result<Exit, CliError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let before_ms = i64::try_from(now.saturating_sub(args.older_than).as_millis()).unwrap_or(0);
    let act = args.yes && !args.dry_run;
    let store = if act {
        ctx.store().await?
    } else {
        ctx.store_existing().await?
    };
    let runs = store
        .prune(before_ms, !act)
        .await
        .map_err(CliError::store)?;
    let mut dirs = 0;
    for r in &runs {
        let files = if act {
            let (n, problems) = remove_files(ctx, r);
            for p in &problems {
                diag!("tether: prune {}: {p}", r.run.key);
            }
            n
        } else {
            job_dirs(ctx, r).map(|d| d.len()).unwrap_or(0)
        };
        dirs += files;
        say!(
            "{} {:<40} {:<10} updated {}  {} submission(s), {files} job dir(s)",
            if act { "removed" } else { "would remove" },
            r.run.key.as_str(),
            r.run.state,
            iso_time(r.run.updated_at_ms),
            r.tags.len(),
        );
    }
    // Registry rows of workers silent for long (killed): the fleet page shows them as gone.
    let silent = ctx.config.leases.ttl * tether_fleet::view::GONE_AFTER_TTLS;
    let workers = store
        .prune_workers(silent, !act)
        .await
        .map_err(CliError::store)?;
    for w in &workers {
        say!(
            "{} worker {:<40} last heartbeat {}",
            if act { "removed" } else { "would remove" },
            w.beat.owner.0,
            iso_time(w.heartbeat_at_ms),
        );
    }
    if !workers.is_empty() {
        diag!(
            "tether: {} {} gone worker(s) silent for over {}",
            if act {
                "removed"
            } else {
                "dry run: would remove"
            },
            workers.len(),
            humantime::format_duration(silent)
        );
    }
    let age = humantime::format_duration(args.older_than);
    if act {
        diag!(
            "tether: removed {} finished run(s) unchanged for {age}, {dirs} job director{}",
            runs.len(),
            if dirs == 1 { "y" } else { "ies" }
        );
    } else {
        diag!(
            "tether: dry run: {} finished run(s) unchanged for {age} would go, with their \
             history and {dirs} job director{}; add --yes to remove them",
            runs.len(),
            if dirs == 1 { "y" } else { "ies" }
        );
    }
    Ok(Exit::Succeeded)
}
