//! `tether status`, `tether ls`, `tether history`.
use tether_core::store::{RunCursor, RunQuery, RunState};
use tether_fleet::{
    view::{self, history_views, ListEntry, QuarantinedView, RunView},
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

/// The store query `args` asks for.
fn query(args: &LsArgs) -> Result<RunQuery, CliError> {
    let list = |s: &Option<String>| -> Vec<String> {
        s.iter()
            .flat_map(|s| s.split(','))
            .map(|w| w.trim().to_string())
            .filter(|w| !w.is_empty())
            .collect()
    };
    let states = list(&args.status)
        .iter()
        .map(|w| {
            w.parse::<RunState>()
                .map_err(|e| CliError::usage(format!("--status {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let since_ms = args.since.map(|d| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(now.saturating_sub(d).as_millis()).unwrap_or(0)
    });
    let after = args
        .after
        .as_deref()
        .map(|c| c.parse::<RunCursor>())
        .transpose()
        .map_err(|e| CliError::usage(format!("--after: {e}")))?;
    Ok(RunQuery::new()
        .states(states)
        .kinds(list(&args.kind))
        .owners(list(&args.owner))
        .since_ms(since_ms)
        .limit(args.limit.unwrap_or(0))
        .after(after))
}

pub async fn ls(ctx: &Ctx, args: LsArgs) -> Result<Exit, CliError> {
    let q = query(&args)?;
    let store = ctx.store_existing().await?;
    // Unreadable rows are listed (on the first page) only when no filter could have excluded
    // them.
    let unfiltered = args.status.is_none()
        && args.kind.is_none()
        && args.since.is_none()
        && args.after.is_none();
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
    let next = if format == Some(LsFormat::Json) {
        let (runs, next) = view::list_with_submissions(store.as_ref(), &q)
            .await
            .map_err(CliError::store)?;
        let mut all: Vec<ListEntry> = runs
            .into_iter()
            .map(|r| ListEntry::Run(Box::new(r)))
            .collect();
        all.extend(
            quarantined
                .iter()
                .map(|q| ListEntry::Quarantined(QuarantinedView::new(q))),
        );
        say!("{}", output::json_line(&all));
        next
    } else {
        let page = view::list(store.as_ref(), &q)
            .await
            .map_err(CliError::store)?;
        if format == Some(LsFormat::Name) {
            for r in &page.runs {
                say!("{}", r.key);
            }
        } else {
            output::print_ls(&page.runs, format == Some(LsFormat::Wide));
            for q in &quarantined {
                say!("{:<40} {:<16} {}", q.key, "quarantined", q.reason);
            }
        }
        page.next_cursor
    };
    if let Some(next) = next {
        // On stderr: stdout stays exactly the listing, for scripts.
        diag!("more runs: continue with `--after {next}` (same filters and --limit)");
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
