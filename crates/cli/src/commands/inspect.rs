//! `tether status`, `tether ls`, `tether history`.
use tether_core::store::RunRecord;
use tether_fleet::{
    view::{history_views, state_word, ListEntry, QuarantinedView, RunView},
    Ctx,
};

use super::{no_run, parse_key, CliError, Exit};
use crate::{
    args::{KeyArgs, LsArgs, LsFormat},
    output,
};

pub async fn status(ctx: &Ctx, args: KeyArgs) -> Result<Exit, CliError> {
    let key = parse_key(&args.key)?;
    let store = ctx.store_existing().await?;
    let run = match store.get_run(&key).await {
        Ok(run) => run,
        Err(e) => {
            // A row this tether cannot read is shown as quarantined, with the reason.
            let quarantined = store.quarantined().await.map_err(CliError::store)?;
            if let Some(q) = quarantined.iter().find(|q| q.key == key.as_str()) {
                if args.json {
                    say!("{}", output::json_line(&QuarantinedView::new(q)));
                } else {
                    say!("key:       {}", q.key);
                    say!("state:     quarantined: {}", q.reason);
                }
                return Ok(Exit::Succeeded);
            }
            return Err(CliError::store(e));
        }
    }
    .ok_or_else(|| no_run(&key))?;
    let subs = store.submissions(&key).await.map_err(CliError::store)?;
    if args.json {
        say!("{}", output::json_line(&RunView::new(&run, &subs)));
    } else {
        output::print_status(&run, &subs);
        // Nobody drives it: ask the backend (read only) rather than say `running` for ever.
        if let Some(seen) = tether_fleet::probe::unattended_status(ctx, &run, &subs).await {
            say!(
                "backend:   {} (unattended since {}; a worker or `tether run` records the \
                 outcome)",
                seen.label(),
                output::iso_time(run.lease_expires_at_ms.unwrap_or(run.updated_at_ms))
            );
        }
    }
    Ok(Exit::Succeeded)
}

/// The runs `args` asks for, most recently changed first.
fn select(mut runs: Vec<RunRecord>, args: &LsArgs) -> Result<Vec<RunRecord>, CliError> {
    const STATES: [&str; 5] = ["queued", "running", "succeeded", "failed", "cancelled"];
    if let Some(s) = &args.status {
        if !STATES.contains(&s.as_str()) {
            return Err(CliError::usage(format!(
                "--status {s}: not a state; use one of {}",
                STATES.join(", ")
            )));
        }
    }
    let since_ms = args.since.map(|d| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(now.saturating_sub(d).as_millis()).unwrap_or(0)
    });
    runs.retain(|r| {
        args.status.as_deref().is_none_or(|s| state_word(r) == s)
            && args.kind.as_deref().is_none_or(|k| r.kind == k)
            && since_ms.is_none_or(|t| r.updated_at_ms >= t)
    });
    runs.sort_by(|a, b| {
        b.updated_at_ms
            .cmp(&a.updated_at_ms)
            .then(a.key.as_str().cmp(b.key.as_str()))
    });
    if let Some(n) = args.limit {
        runs.truncate(n);
    }
    Ok(runs)
}

pub async fn ls(ctx: &Ctx, args: LsArgs) -> Result<Exit, CliError> {
    let store = ctx.store_existing().await?;
    let runs = select(store.list_runs().await.map_err(CliError::store)?, &args)?;
    // Unreadable rows are listed only when no filter could have excluded them.
    let unfiltered = args.status.is_none() && args.kind.is_none() && args.since.is_none();
    let quarantined = if unfiltered {
        store.quarantined().await.map_err(CliError::store)?
    } else {
        Vec::new()
    };
    let format = match (args.output, args.json) {
        (Some(f), _) => Some(f),
        (None, true) => Some(LsFormat::Json),
        (None, false) => None,
    };
    if format == Some(LsFormat::Name) {
        for r in &runs {
            say!("{}", r.key);
        }
    } else if format == Some(LsFormat::Json) {
        let mut all = Vec::with_capacity(runs.len() + quarantined.len());
        for r in &runs {
            let subs = store.submissions(&r.key).await.map_err(CliError::store)?;
            all.push(ListEntry::Run(Box::new(RunView::new(r, &subs))));
        }
        all.extend(
            quarantined
                .iter()
                .map(|q| ListEntry::Quarantined(QuarantinedView::new(q))),
        );
        say!("{}", output::json_line(&all));
    } else {
        output::print_ls(&runs, format == Some(LsFormat::Wide));
        for q in &quarantined {
            say!("{:<40} {:<16} {}", q.key, "quarantined", q.reason);
        }
    }
    Ok(Exit::Succeeded)
}

pub async fn history(ctx: &Ctx, args: KeyArgs) -> Result<Exit, CliError> {
    let key = parse_key(&args.key)?;
    let store = ctx.store_existing().await?;
    if store
        .get_run(&key)
        .await
        .map_err(CliError::store)?
        .is_none()
    {
        return Err(no_run(&key));
    }
    let entries = store.history(&key).await.map_err(CliError::store)?;
    if args.json {
        let subs = store.submissions(&key).await.map_err(CliError::store)?;
        say!("{}", output::json_line(&history_views(&entries, &subs)));
    } else {
        output::print_history(&entries);
    }
    Ok(Exit::Succeeded)
}
