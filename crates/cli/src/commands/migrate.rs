//! `tether migrate`: create the state store or upgrade its schema, explicitly.
use super::{CliError, Exit};
use tether_fleet::Ctx;

pub async fn migrate(ctx: &Ctx) -> Result<Exit, CliError> {
    let shown = tether_store::redact(&ctx.config.state);
    let m = tether_store::migrate(&ctx.config.state, &ctx.open_options())
        .await
        .map_err(CliError::store)?;
    if m.before == m.after {
        say!("{shown}: schema version {} (up to date)", m.after);
    } else {
        say!("{shown}: schema version {} -> {}", m.before, m.after);
    }
    Ok(Exit::Succeeded)
}
