//! Command-line arguments.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The exit codes, shown by `--help` (the README has the same table).
macro_rules! exit_codes {
    () => {
        "\
Exit codes:
  0    succeeded (or the command did what was asked; a successful cancel is 0)
  1    the job failed
  2    bad input or usage (nothing was written)
  3    the run was cancelled (run, rerun, wait)
  4    status unknown, store busy or job on another host: the run stays resumable
  5    lease lost: another owner drives the run
  6    not found: no run with that key (or no such generation)
  7    wait --timeout ran out with the run still going
  8    logs: the job's log could not be read (the run is not affected)
  130  interrupted (SIGINT, SIGTERM or SIGHUP): the job was left running\n\n"
    };
}

/// The environment variables every command reads, and where the spec reference is.
macro_rules! env_vars {
    () => {
        "\
Environment:
  TETHER_STATE      the state store (as --state)
  TETHER_CONFIG     the config file (as --config)
  TETHER_JOBS_DIR   where local jobs keep their files
  TETHER_LEASE_TTL  lease time-to-live (e.g. 15s)
  TETHER_LOG        diagnostics filter (e.g. info, tether_fleet=debug)
  TETHER_TOKEN_*    backend tokens, named by a spec's token_env
Job specs: see the README, section \"Job specs\", and examples/*.toml."
    };
}

/// A subcommand's `--help` epilogue: its examples, the exit codes, then the environment
/// variables.
macro_rules! examples {
    ($($line:literal),+ $(,)?) => {
        concat!("Examples:\n", $("  ", $line, "\n",)+ "\n", exit_codes!(), env_vars!())
    };
}

const MAIN_HELP: &str = concat!(
    "Examples:\n  tether run examples/hello.toml\n  tether submit nightly.toml --key nightly-2026-12-01 && tether wait nightly-2026-12-01\n  tether ls --status running -o wide\n  tether status nightly-2026-12-01 --json\n\n",
    exit_codes!(),
    env_vars!(),
);

/// Run long jobs on external compute crash-safely: a killed `tether run` picks its job up
/// where it stands, never launches it twice, and reshapes it after an out-of-memory failure.
#[derive(Debug, Parser)]
#[command(name = "tether", version, propagate_version = true, after_help = MAIN_HELP)]
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
    #[command(after_help = concat!(
        "Examples:\n  tether run examples/hello.toml\n  tether run job.toml --key nightly-2026-12-01 --json\n\n",
        exit_codes!(),
        env_vars!()
    ))]
    Run(RunArgs),
    /// Run a finished key again as a fresh instance (the earlier one stays in its history).
    #[command(after_help = examples!("tether rerun nightly", "tether rerun nightly fixed-job.toml --json"))]
    Rerun(RerunArgs),
    /// Enqueue a run for the workers (idempotent on the key); prints the key.
    #[command(after_help = examples!("tether submit job.toml --key nightly-2026-12-01", "tether submit job.toml --key \"$AIRFLOW_RUN_ID\" && tether wait \"$AIRFLOW_RUN_ID\""))]
    Submit(SubmitArgs),
    /// Claim queued or orphaned runs and drive them to the end.
    #[command(after_help = examples!("tether worker --concurrency 64", "tether worker --kinds spark-standalone --exit-when-idle"))]
    Worker(WorkerArgs),
    /// Serve the HTTP API (runs, logs, submit, cancel, rerun) over the state store.
    #[command(after_help = examples!("tether serve", "TETHER_SERVE_TOKEN_READ=... tether serve --listen 0.0.0.0:8686 --tls-cert cert.pem --tls-key key.pem"))]
    Serve(ServeArgs),
    /// Show one run.
    #[command(after_help = examples!("tether status nightly", "tether status nightly --json | jq .state"))]
    Status(KeyArgs),
    /// List runs, most recent first.
    #[command(after_help = examples!("tether ls", "tether ls --status failed --since 1d -o wide", "tether ls --kind spark-standalone --limit 10 -o json", "tether ls -o name | xargs -n1 tether status"))]
    Ls(LsArgs),
    /// Print a run's job logs.
    #[command(after_help = examples!("tether logs nightly", "tether logs nightly -f --stderr", "tether logs nightly --generation 1"))]
    Logs(LogsArgs),
    /// Show a run's history of decisions.
    #[command(after_help = examples!("tether history nightly", "tether history nightly --json"))]
    History(KeyArgs),
    /// Kill a run's external job (reaches its owner, or acts itself if no owner is alive).
    #[command(after_help = examples!("tether cancel nightly", "tether cancel nightly --no-wait", "tether cancel nightly --json | jq .state"))]
    Cancel(CancelArgs),
    /// Block until a run ends (driven by a worker or another `tether run`); its outcome is the
    /// exit code. What an orchestrator task calls after `tether submit`.
    #[command(after_help = examples!("tether submit job.toml --key nightly && tether wait nightly --timeout 2h"))]
    Wait(WaitArgs),
    /// Parse and check a job spec without running it (exit 0 valid, 2 not).
    #[command(after_help = examples!("tether validate examples/hello.toml"))]
    Validate(ValidateArgs),
    /// Print tether's version.
    #[command(after_help = examples!("tether version", "tether --version"))]
    Version,
    /// Print a shell completion script.
    #[command(after_help = examples!("tether completions bash > ~/.local/share/bash-completion/completions/tether", "tether completions zsh > ~/.zfunc/_tether", "tether completions fish > ~/.config/fish/completions/tether.fish"))]
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout.
    #[command(after_help = examples!("tether man > tether.1 && man ./tether.1"))]
    Man,
    /// Create the state store or bring its schema up to this tether's (read commands never
    /// do); prints the schema version before and after.
    #[command(after_help = examples!("tether migrate", "tether --state postgres://tether@db/tether migrate"))]
    Migrate,
    /// Remove a finished run: its record, submissions, history and (local) job files.
    /// Refuses a run that has not finished.
    #[command(after_help = examples!("tether rm nightly-2026-11-01"))]
    Rm(RmArgs),
    /// Remove finished runs not changed for a while, with their history and job files. Dry
    /// run by default: prints what it would remove; `--yes` removes.
    #[command(after_help = examples!("tether prune --older-than 30d", "tether prune --older-than 30d --yes"))]
    Prune(PruneArgs),
    /// Declare a host gone for good: its local jobs count as lost and any host may rerun them.
    #[command(after_help = examples!("tether forget-host old-box-7 --yes"))]
    ForgetHost(ForgetHostArgs),
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// The run key.
    pub key: String,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Runs finished and unchanged for at least this long (e.g. 30d, 12h).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "AGE")]
    pub older_than: std::time::Duration,
    /// Only print what would be removed (the default without --yes).
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
    /// Remove them.
    #[arg(long)]
    pub yes: bool,
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
    /// Serve Prometheus metrics at `http://ADDR/metrics` (e.g. `127.0.0.1:9464`; port 0 picks
    /// a free one, logged at start). Off by default.
    #[arg(long, env = "TETHER_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// How often to look for claimable runs without a wake-up (PostgreSQL wakes the worker
    /// at once for new and released runs; runs of dead owners are found by this poll).
    #[arg(long, env = "TETHER_CLAIM_INTERVAL", value_name = "DURATION", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub claim_interval: std::time::Duration,
    /// Export the worker's tracing spans with OpenTelemetry (OTLP over HTTP) to this collector,
    /// e.g. `http://127.0.0.1:4318` (`/v1/traces` is added). Without it the standard
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is used when set; otherwise nothing is exported.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Log format: `text` (timestamp, level, event) or `json` (one object per line).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: crate::logging::LogFormat,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Without a token configured only a loopback address is accepted.
    #[arg(long, default_value = "127.0.0.1:8686")]
    pub listen: std::net::SocketAddr,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Serve an open API (no token) on a non-loopback address: anyone who reaches it can
    /// submit and cancel runs.
    #[arg(long)]
    pub insecure_no_auth: bool,
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
pub struct LsArgs {
    /// JSON on stdout (same as `-o json`).
    #[arg(long)]
    pub json: bool,
    /// Output format: the table, a wide table, JSON, or the keys only.
    #[arg(short, long, value_enum)]
    pub output: Option<LsFormat>,
    /// Only runs in this state (queued, running, succeeded, failed, cancelled; several
    /// separated by commas). Named `--status` because `--state` is the state store, for every
    /// command.
    #[arg(long = "status", id = "status_filter", value_name = "STATE")]
    pub status: Option<String>,
    /// Only runs of this backend kind (e.g. local, spark-standalone; several separated by
    /// commas).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only runs held by this owner id (a worker or `tether run`), exactly as `tether ls -o
    /// wide` shows it (several separated by commas).
    #[arg(long, value_name = "OWNER")]
    pub owner: Option<String>,
    /// Only runs changed within this long (e.g. 1h, 7d).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub since: Option<std::time::Duration>,
    /// At most this many runs (the most recent); when there are more, stderr says how to
    /// get the next page.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Continue a listing after this cursor (printed by an earlier `ls --limit N`).
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
}

/// `tether ls -o …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum LsFormat {
    /// Adds kind, spec and times to the table.
    Wide,
    /// The JSON views (with their submissions).
    Json,
    /// Keys only, one a line.
    Name,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The run key.
    pub key: String,
    /// Give up after this long (exit 7), e.g. 30m, 2h; default: wait as long as it takes.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Print the final run view as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The job spec (TOML).
    pub spec: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
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
    /// JSON lines on stdout, one per log line (schema `log_line` in docs/json.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The run key.
    pub key: String,
    /// Only record the request; do not wait for the job to be killed.
    #[arg(long)]
    pub no_wait: bool,
    /// Print the run after the cancel as JSON (docs/json.md) on stdout.
    #[arg(long)]
    pub json: bool,
}
