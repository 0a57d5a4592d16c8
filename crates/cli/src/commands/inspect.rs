//! `tether status`, `tether ls`, `tether history`.
use serde_json::json;

use super::{parse_key, CliError};
use crate::{
    args::{JsonArgs, KeyArgs},
    context::Ctx,
    output,
};

pub async fn status(ctx: &Ctx, args: KeyArgs) -> Result<u8, CliError> {
    let key = parse_key(&args.key)?;
    let store = ctx.store().await?;
    let run = store
        .get_run(&key)
        .await
        .map_err(CliError::store)?
        .ok_or_else(|| CliError::usage(format!("no run with key {key}: see `tether ls`")))?;
    let subs = store.submissions(&key).await.map_err(CliError::store)?;
    if args.json {
        say!("{}", output::run_json(&run, &subs));
    } else {
        output::print_status(&run, &subs);
    }
    Ok(0)
}

pub async fn ls(ctx: &Ctx, args: JsonArgs) -> Result<u8, CliError> {
    let store = ctx.store().await?;
    let runs = store.list_runs().await.map_err(CliError::store)?;
    if args.json {
        let all: Vec<_> = runs.iter().map(|r| output::run_json(r, &[])).collect();
        say!("{}", serde_json::Value::Array(all));
    } else {
        output::print_ls(&runs);
    }
    Ok(0)
}

pub async fn history(ctx: &Ctx, args: KeyArgs) -> Result<u8, CliError> {
    let key = parse_key(&args.key)?;
    let store = ctx.store().await?;
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
    Ok(0)
}
