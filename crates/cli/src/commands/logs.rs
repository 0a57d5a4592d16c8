//! `tether logs`: the library's log reader (`tether_fleet::logs`) into stdout.
use tether_fleet::{
    logs::{LogsError, LogsOptions},
    Ctx,
};

use super::{parse_key, CliError, Exit};
use crate::args::LogsArgs;

pub async fn logs(ctx: &Ctx, args: LogsArgs) -> Result<Exit, CliError> {
    let key = parse_key(&args.key)?;
    let mut options = LogsOptions::new();
    options.stderr = args.stderr;
    options.follow = args.follow;
    options.generation = args.generation;
    let mut print = |data: &[u8]| crate::io::out_bytes(data);
    match tether_fleet::logs::logs(ctx, &key, &options, &mut print).await {
        Ok(()) => Ok(Exit::Succeeded),
        Err(LogsError::Open(e)) => Err(e.into()),
        Err(LogsError::Store(e)) => Err(CliError::store(e)),
        Err(
            e @ (LogsError::NoRun(_) | LogsError::NoGeneration { .. } | LogsError::NotSubmitted(_)),
        ) => Err(CliError::not_found(e.to_string())),
        Err(e @ LogsError::Read(_)) => Err(CliError {
            code: Exit::Failed,
            message: e.to_string(),
        }),
        Err(e) => Err(CliError::usage(e.to_string())),
    }
}
