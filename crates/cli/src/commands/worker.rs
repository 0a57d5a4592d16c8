//! `tether worker`: claims queued or orphaned runs and drives them (issue 4; in progress).
use super::CliError;
use crate::{args::WorkerArgs, context::Ctx};

pub async fn worker(_ctx: &Ctx, _args: WorkerArgs) -> Result<u8, CliError> {
    Err(CliError::usage("tether worker is not available in this build yet"))
}
