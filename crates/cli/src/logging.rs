//! Where `tracing` goes: a command's diagnostics (`TETHER_LOG`, `warn` by default), or the
//! log of `tether worker`.
//!
//! ## Guarantees
//! - `tether worker` logs through `tracing` only: each event once, with an RFC 3339 UTC
//!   timestamp and its level, as text or (`--log-format json`) one JSON object per line;
//!   `info` by default, `TETHER_LOG` overrides. The library's notices (the same events in
//!   words, for the other commands) are not printed again.
//! - Levels are coloured only when stderr is a terminal and colour is not turned off
//!   (`NO_COLOR`, `CLICOLOR=0`); JSON and piped logs never carry escape codes.
use clap::ValueEnum;

use crate::args::{Cli, Command};

/// How `tether worker` writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum LogFormat {
    /// `2026-12-01T18:33:00.123456Z  INFO run{key=…}: decided …`
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`, `spans`).
    Json,
}

/// What must live until the process ends (the OTLP exporter, flushed when dropped).
pub struct Guard {
    #[cfg(feature = "otlp")]
    _otlp: Option<crate::otlp::Exporting>,
}

/// Installs the subscriber for this command.
pub fn init(cli: &Cli) -> Guard {
    use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, Layer};
    let (worker, otlp_flag) = match &cli.command {
        Command::Worker(w) => (Some(w.log_format), w.otlp_endpoint.as_deref()),
        Command::Serve(s) => (Some(s.log_format), None),
        _ => (None, None),
    };
    let default = if worker.is_some() { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TETHER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only for a person at a terminal, never with NO_COLOR (nor CLICOLOR=0); a log
    // file keeps plain text even under CLICOLOR_FORCE (logs are grepped, not looked at).
    let ansi = worker != Some(LogFormat::Json)
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
        && crate::style::enabled(crate::style::Stream::Err);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        // Its report of a failed write is an `eprintln!`, which panics on a closed stderr.
        .log_internal_errors(false);
    let fmt = match worker {
        Some(LogFormat::Json) => fmt.json().with_current_span(false).boxed(),
        Some(_) => fmt.boxed(),
        // A command's diagnostics: no timestamps, they interleave with its own lines.
        None => fmt.without_time().boxed(),
    };
    #[cfg(feature = "otlp")]
    let (otlp, exporting) = match worker.and_then(|_| crate::otlp::layer(otlp_flag)) {
        Some((layer, exporting)) => (Some(layer), Some(exporting)),
        None => (None, None),
    };
    #[cfg(not(feature = "otlp"))]
    let otlp: Option<Box<dyn Layer<_> + Send + Sync>> = {
        let _ = otlp_flag;
        None
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otlp)
        .try_init();
    Guard {
        #[cfg(feature = "otlp")]
        _otlp: exporting,
    }
}
