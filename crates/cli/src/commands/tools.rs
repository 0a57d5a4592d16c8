//! `tether validate`, `tether version`, `tether completions`, `tether man`: commands that never
//! open the state store.
use clap::CommandFactory;
use tether_fleet::Ctx;

use super::{read_spec, CliError, Exit};
use crate::args::{Cli, ValidateArgs};

/// Parses and checks a spec as `tether run` would, without opening the store or submitting.
pub fn validate(ctx: &Ctx, args: ValidateArgs) -> Result<Exit, CliError> {
    let (name, text) = read_spec(&args.spec)?;
    let built = ctx.connector_to_submit(&name, &text)?;
    say!("{name}: valid ({} job)", built.connector.kind());
    Ok(Exit::Succeeded)
}

/// `tether <version>`, as `tether --version` prints it.
pub fn version() -> Exit {
    say!("tether {}", env!("CARGO_PKG_VERSION"));
    Exit::Succeeded
}

/// A completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Exit {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "tether", &mut out);
    crate::io::out_bytes(&out);
    Exit::Succeeded
}

/// The man page (roff) on stdout, built from the same definitions as `--help`.
pub fn man() -> Result<Exit, CliError> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| CliError::usage(format!("cannot render the man page: {e}")))?;
    crate::io::out_bytes(&out);
    Ok(Exit::Succeeded)
}
