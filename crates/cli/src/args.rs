//! Command-line arguments.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run long jobs on external compute crash-safely: a killed `tether run` picks its job up
/// where it stands, never launches it twice, and reshapes it after an out-of-memory failure.
#[derive(Debug, Parser)]
#[command(name = "tether", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// State store: a path, sqlite://PATH or sqlite:PATH (default ~/.local/state/tether/tether.db), or postgres://USER@HOST/DB[?sslmode=verify-full]
    #[arg(long, global = true, env = "TETHER_STATE")]
    pub state: Option<String>,
    /// Config file (TOML; default $XDG_CONFIG_HOME/tether/config.toml if it exists).
    #[arg(long, global = true, env = "TETHER_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job spec durably to the end (or resume it), showing progress on stderr.
    Run(RunArgs),
    /// Run a finished key again as a fresh instance (the earlier one stays in its history).
    Rerun(RerunArgs),
    /// Enqueue a run for the workers (idempotent on the key); prints the key.
    Submit(SubmitArgs),
    /// Claim queued or orphaned runs and drive them to the end.
    Worker(WorkerArgs),
    /// Show one run.
    Status(KeyArgs),
    /// List runs.
    Ls(JsonArgs),
    /// Print a run's job logs.
    Logs(LogsArgs),
    /// Show a run's history of decisions.
    History(KeyArgs),
    /// Kill a run's external job (reaches its owner, or acts itself if no owner is alive).
    Cancel(CancelArgs),
    /// Create the state store or bring its schema up to this tether's (read commands never
    /// do); prints the schema version before and after.
    Migrate,
    /// Declare a host gone for good: its local jobs count as lost and any host may rerun them.
    ForgetHost(ForgetHostArgs),
}

#[derive(Debug, Args)]
pub struct ForgetHostArgs {
    /// The host name, as `tether status` shows it ("waiting for a worker on host X").
    pub host: String,
    /// Say yes: the jobs of that host are declared lost, and a new generation may start
    /// elsewhere while they still run if the host is in fact alive.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job spec (TOML); `-` reads it from stdin.
    pub spec: PathBuf,
    /// Run key; default: derived from the spec file's absolute path (and printed).
    #[arg(long)]
    pub key: Option<String>,
    /// Print the final run record as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// On Ctrl-C/SIGTERM, cancel the external job instead of leaving it running.
    #[arg(long)]
    pub cancel_on_exit: bool,
    #[command(flatten)]
    pub show: ShowArgs,
}

/// What `tether run` shows while it waits.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Stream the job's stdout and stderr while it runs.
    #[arg(short = 'f', long = "logs")]
    pub logs: bool,
    /// When stderr is not a terminal: print a line at least this often (e.g. `30s`, `5m`).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub heartbeat: std::time::Duration,
    /// Print every decision and its reason (also in `tether history`).
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    /// The key of a finished run (succeeded, failed or cancelled).
    pub key: String,
    /// A job spec to run instead of the stored one (default: the stored spec).
    pub spec: Option<PathBuf>,
    /// Print the final run record as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// On Ctrl-C/SIGTERM, cancel the external job instead of leaving it running.
    #[arg(long)]
    pub cancel_on_exit: bool,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The job spec (TOML); `-` reads it from stdin.
    pub spec: PathBuf,
    /// Run key; default: derived from the spec file's absolute path.
    #[arg(long)]
    pub key: Option<String>,
    /// Print the run record as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Runs driven at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Local jobs running at once on this worker (a run in recovery mode takes all of them).
    #[arg(long, default_value_t = 4)]
    pub local_slots: usize,
    /// Exit once no run is left to claim (for batch use and tests).
    #[arg(long)]
    pub exit_when_idle: bool,
    /// Only claim runs of these kinds (comma-separated, e.g. `spark-standalone`); default: every
    /// kind this binary can build (runs of other kinds are never claimed).
    /// Leave `local` out on workers that must not run commands from the specs in the store.
    #[arg(long, value_delimiter = ',')]
    pub kinds: Option<Vec<String>>,
    /// Log format: `text` (timestamp, level, event) or `json` (one object per line).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: crate::logging::LogFormat,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The run key.
    pub key: String,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct JsonArgs {
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The run key.
    pub key: String,
    /// Keep following the log until the run ends.
    #[arg(short, long)]
    pub follow: bool,
    /// Show stderr instead of stdout.
    #[arg(long)]
    pub stderr: bool,
    /// Generation to show (default: the latest).
    #[arg(long)]
    pub generation: Option<u32>,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The run key.
    pub key: String,
    /// Only record the request; do not wait for the job to be killed.
    #[arg(long)]
    pub no_wait: bool,
}
