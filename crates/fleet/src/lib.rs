//! tether's operations as a library, for every front end: the `tether` command line and the
//! coming HTTP server (`tether serve`).
//!
//! - [`Ctx`]: the settings ([`Config`]), the connector registry, opening the store.
//! - [`worker::worker`]: claim and drive runs until asked to stop.
//! - [`drive::drive`], [`drive::rerun`]: run in the foreground, or follow someone else's run.
//! - [`cancel::cancel`], [`logs::logs`], [`submit::submit`].
//! - [`view`]: the JSON views of runs (`--json`, the server's answers).
//!
//! ## Guarantees
//! - Nothing here prints, exits the process or reads command line arguments: results and typed
//!   errors (one per operation, keeping their source) go back to the caller; lines meant for a
//!   person go through [`context::Notices`]; diagnostics are `tracing` events (see [`trace`]).
pub mod bulk;
pub mod cancel;
pub mod config;
pub mod context;
pub mod drive;
pub mod logs;
pub mod metrics;
pub mod probe;
pub mod submit;
pub mod trace;
pub mod view;
pub mod worker;

pub use config::Config;
pub use context::Ctx;
pub use metrics::Metrics;

/// Completes on SIGINT (Ctrl-C), SIGTERM or SIGHUP: the `stop` of a front end run from a shell or a
/// service manager.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    // A closed terminal (SIGHUP) is handled like SIGTERM: release, leave the job running.
    let mut hup = signal(SignalKind::hangup())?;
    // Registered now, not at the first poll (as `ctrl_c()` does): an interrupt that comes
    // between this call and the first poll is not lost.
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
    })
}
