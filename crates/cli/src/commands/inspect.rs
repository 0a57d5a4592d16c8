//! `tether status`, `tether ls`, `tether history`.
use serde_json::json;
use tether_fleet::{
    view::{ListEntry, QuarantinedView, RunView},
    Ctx,
};

use super::{parse_key, CliError, Exit};
use crate::{
    args::{JsonArgs, KeyArgs},
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
    .ok_or_else(|| CliError::usage(format!("no run with key {key}: see `tether ls`")))?;
    let subs = store.submissions(&key).await.map_err(CliError::store)?;
    if args.json {
        say!("{}", output::json_line(&RunView::new(&run, &subs)));
    } else {
        output::print_status(&run, &subs);
    }
    Ok(Exit::Succeeded)
}

pub async fn ls(ctx: &Ctx, args: JsonArgs) -> Result<Exit, CliError> {
    let store = ctx.store_existing().await?;
    let runs = store.list_runs().await.map_err(CliError::store)?;
    let quarantined = store.quarantined().await.map_err(CliError::store)?;
    if args.json {
        let mut all: Vec<ListEntry> = runs
            .iter()
            .map(|r| ListEntry::Run(Box::new(RunView::new(r, &[]))))
            .collect();
        all.extend(
            quarantined
                .iter()
                .map(|q| ListEntry::Quarantined(QuarantinedView::new(q))),
        );
        say!("{}", output::json_line(&all));
    } else {
        output::print_ls(&runs);
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
        return Err(CliError::usage(format!(
            "no run with key {key}: see `tether ls`"
        )));
    }
    let entries = store.history(&key).await.map_err(CliError::store)?;
    if args.json {
        say!("{}", json!(entries));
    } else {
        output::print_history(&entries);
    }
    Ok(Exit::Succeeded)
}
