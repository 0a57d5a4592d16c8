//! `tether serve`: the HTTP API of `tether-server`, until SIGINT/SIGTERM/SIGHUP.
use tether_fleet::Ctx;
use tether_server::ServeOptions;

use super::{interrupted, CliError, Exit};
use crate::args::ServeArgs;

pub async fn serve(ctx: Ctx, args: ServeArgs) -> Result<Exit, CliError> {
    let mut options = ServeOptions::new(args.listen);
    options.tls = args.tls_cert.zip(args.tls_key);
    options.insecure_no_auth = args.insecure_no_auth;
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let bound = |addr| {
        diag!("tether: serving the API on {scheme}://{addr}/api/v1");
        diag!("tether: the web UI is at {scheme}://{addr}/ui/runs, metrics at /metrics");
    };
    match tether_server::serve(ctx, options, interrupted()?, bound).await {
        // A service manager's stop is the normal end of a server.
        Ok(()) => Ok(Exit::Succeeded),
        // Bad settings (listen address, tokens, certificate) or a port taken: nothing served.
        Err(e) => Err(CliError::usage(e.to_string())),
    }
}
