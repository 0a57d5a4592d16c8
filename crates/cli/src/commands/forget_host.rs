//! `tether forget-host HOST`: the operator declares a machine gone for good.
//!
//! Local jobs are judged only on the host that launched them; when that host is dead, nothing
//! else may call them lost on a guess. This command is the explicit decision: the host's
//! unfinished runs lose their placement (and lease), so the next owner anywhere finds no job
//! under the tag and starts the next generation.
use super::{CliError, Exit};
use crate::args::ForgetHostArgs;
use tether_fleet::Ctx;

pub async fn forget_host(ctx: &Ctx, args: ForgetHostArgs) -> Result<Exit, CliError> {
    if args.host.trim().is_empty() {
        return Err(CliError::usage("forget-host: give the host name"));
    }
    if !args.yes {
        return Err(CliError::usage(format!(
            "forget-host {host}: this declares every unfinished local job of host {host} lost, \
             and the next owner starts a new generation elsewhere; if {host} is in fact alive \
             its jobs would then run twice. Add --yes to confirm.",
            host = args.host
        )));
    }
    let store = ctx.store().await?;
    let reason = format!(
        "host {} declared gone by the operator (tether forget-host): its jobs count as lost",
        args.host
    );
    let keys = store
        .forget_host(&args.host, &reason)
        .await
        .map_err(CliError::store)?;
    if keys.is_empty() {
        diag!(
            "tether: no unfinished run is bound to host {}; nothing changed",
            args.host
        );
    }
    for key in &keys {
        say!("{key}");
    }
    Ok(Exit::Succeeded)
}
