//! The subcommands.
mod cancel;
mod exit;
mod forget_host;
mod inspect;
mod logs;
mod migrate;
mod remove;
mod rerun;
mod run;
mod serve;
mod submit;
mod tools;
mod wait;
mod worker;

use std::{fmt, path::Path};

pub use exit::Exit;

use tether_core::{ids::RunKey, journal::Outcome, spec::MAX_SPEC_BYTES, store::StoreError};

use tether_fleet::{
    config::{ConfigError, Sources},
    context::{BuildError, OpenError},
    Config, Ctx,
};

use crate::args::{Cli, Command};

/// A failure with its exit code; the message goes to stderr.
#[derive(Debug)]
pub struct CliError {
    pub code: Exit,
    pub message: String,
}

impl CliError {
    /// Bad input or usage: exit 2.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: Exit::BadInput,
            message: message.into(),
        }
    }
    /// No run with that key (or no such generation): exit 6.
    pub fn not_found(message: impl Into<String>) -> Self {
        CliError {
            code: Exit::NotFound,
            message: message.into(),
        }
    }
    /// The state store failed: bad input if it cannot be opened (wrong location, not a
    /// tether store), else exit 4 (resumable). A busy (`Locked`) or unreachable store is
    /// transient, never bad input.
    pub fn store(e: StoreError) -> Self {
        let code = match e {
            StoreError::Open { .. } | StoreError::Corrupt { .. } | StoreError::NotFound { .. } => {
                Exit::BadInput
            }
            _ => Exit::Unknown,
        };
        CliError {
            code,
            message: e.to_string(),
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::usage(e.to_string())
    }
}

impl From<OpenError> for CliError {
    fn from(e: OpenError) -> Self {
        CliError::store(e.source)
    }
}

impl From<BuildError> for CliError {
    fn from(e: BuildError) -> Self {
        CliError::usage(e.to_string())
    }
}

/// The library's context for this process: local jobs are supervised by this very binary
/// (`tether __supervise`), and notices go to stderr.
fn context(cli: &Cli) -> Result<Ctx, CliError> {
    let sources = Sources {
        config_file: cli.global.config.clone(),
        state: cli.global.state.clone(),
    };
    let config = Config::load(&sources)?;
    let exe = std::env::current_exe().map_err(|e| {
        CliError::usage(format!(
            "cannot locate the tether binary (needed to start local jobs): {e}"
        ))
    })?;
    let supervisor = vec![exe.display().to_string(), "__supervise".into()];
    Ok(
        Ctx::new(config, supervisor)
            .with_notices(std::sync::Arc::new(|line: &str| diag!("{line}"))),
    )
}

/// Completes on SIGINT or SIGTERM.
pub fn interrupted() -> Result<impl std::future::Future<Output = ()>, CliError> {
    tether_fleet::shutdown_signal()
        .map_err(|e| CliError::usage(format!("cannot watch SIGTERM: {e}")))
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Exit code of an outcome: 0 succeeded, 1 failed, 3 cancelled.
pub fn outcome_code(o: &Outcome) -> Exit {
    Exit::of(o)
}

pub fn parse_key(s: &str) -> Result<RunKey, CliError> {
    RunKey::new(s).map_err(|e| CliError::usage(e.to_string()))
}

/// Reads a spec file: (name for messages, text). Files over [`MAX_SPEC_BYTES`] are refused
/// before anything is read into memory or written to the store.
pub fn read_spec(path: &Path) -> Result<(String, String), CliError> {
    use std::io::Read;
    let name = path.display().to_string();
    let cannot = |e: std::io::Error| {
        CliError::usage(format!("cannot read job spec {name}: {e} (give the path of a TOML job spec, e.g. examples/hello.toml)"))
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut text = String::new();
    // Read one byte past the limit: the file may grow between a stat and the read.
    file.take(MAX_SPEC_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(cannot)?;
    if text.len() as u64 > MAX_SPEC_BYTES {
        return Err(CliError::usage(format!(
            "job spec {name} is larger than {} KiB: a spec describes a job, it does not carry its data; \
             move large content into files the job reads",
            MAX_SPEC_BYTES >> 10
        )));
    }
    Ok((name, text))
}

/// Whether the command was asked for JSON on stdout (then errors are JSON objects there too).
fn wants_json(command: &Command) -> bool {
    use crate::args::LsFormat;
    match command {
        Command::Run(a) => a.json,
        Command::Rerun(a) => a.json,
        Command::Submit(a) => a.json,
        Command::Status(a) | Command::History(a) => a.json,
        Command::Ls(a) => a.json || a.output == Some(LsFormat::Json),
        Command::Wait(a) => a.json,
        Command::Logs(a) => a.json,
        Command::Cancel(a) => a.json,
        _ => false,
    }
}

/// No run with key `key`: exit 6, pointing to `tether ls`.
pub fn no_run(key: &RunKey) -> CliError {
    CliError::not_found(format!("no run with key {key}: see `tether ls`"))
}

pub async fn dispatch(cli: Cli) -> Exit {
    let json = wants_json(&cli.command);
    let result = async {
        match &cli.command {
            Command::Version => return Ok(tools::version()),
            Command::Completions(a) => return Ok(tools::completions(a.shell)),
            Command::Man => return tools::man(),
            _ => {}
        }
        let ctx = context(&cli)?;
        match cli.command {
            Command::Wait(a) => wait::wait(&ctx, a).await,
            Command::Validate(a) => tools::validate(&ctx, a),
            Command::Version | Command::Completions(_) | Command::Man => {
                unreachable!("handled above")
            }
            Command::Run(a) => run::run(&ctx, a).await,
            Command::Rerun(a) => rerun::rerun(&ctx, a).await,
            Command::Submit(a) => submit::submit(&ctx, a).await,
            Command::Worker(a) => worker::worker(&ctx, a).await,
            Command::Serve(a) => serve::serve(ctx, a).await,
            Command::Status(a) => inspect::status(&ctx, a).await,
            Command::Ls(a) => inspect::ls(&ctx, a).await,
            Command::History(a) => inspect::history(&ctx, a).await,
            Command::Logs(a) => logs::logs(&ctx, a).await,
            Command::Cancel(a) => cancel::cancel(&ctx, a).await,
            Command::ForgetHost(a) => forget_host::forget_host(&ctx, a).await,
            Command::Rm(a) => remove::rm(&ctx, a).await,
            Command::Prune(a) => remove::prune(&ctx, a).await,
            Command::Migrate => migrate::migrate(&ctx).await,
        }
    }
    .await;
    match result {
        Ok(code) => code,
        Err(e) => {
            diag!("tether: {} {e}", crate::style::error_label());
            if json {
                // A script reading stdout gets JSON whatever happened.
                let view = tether_fleet::view::ErrorView::new(
                    e.code.error_kind(),
                    &e.message,
                    e.code.code(),
                );
                say!("{}", crate::output::json_line(&view));
            }
            e.code
        }
    }
}
