//! `tether worker`: the library's worker (`tether_fleet::worker`), its log through `tracing`.
use std::sync::Arc;

use tether_core::{engine::Observer, ids::RunKey};
use tether_fleet::worker::{WorkerEnd, WorkerError, WorkerHooks, WorkerOptions};

use super::{interrupted, CliError, Exit};
use crate::args::WorkerArgs;
use tether_fleet::{Ctx, Metrics};

pub async fn worker(ctx: &Ctx, args: WorkerArgs) -> Result<Exit, CliError> {
    let mut options = WorkerOptions::new(args.concurrency, args.local_slots);
    options.kinds = args.kinds;
    options.exit_when_idle = args.exit_when_idle;
    options.claim_interval = args.claim_interval;
    if let Some(addr) = args.metrics_listen {
        serve_metrics(addr, options.metrics.clone()).await?;
    }
    let hooks = WorkerHooks {
        observer: Arc::new(WorkerLog),
        // Every notice of the worker is also a tracing event: printing both doubled each line.
        notices: Arc::new(|_: &str| {}),
    };
    match tether_fleet::worker::worker(ctx, options, hooks, interrupted()?).await {
        Ok(WorkerEnd::Stopped) => Ok(Exit::Interrupted),
        Ok(_) => Ok(Exit::Succeeded),
        Err(WorkerError::Open(e)) => Err(e.into()),
        Err(e) => Err(CliError::usage(e.to_string())),
    }
}

/// Serves `GET /metrics` on `addr` until the process exits. Bound before the worker starts, so a
/// taken port is an error at start, not a silent absence of metrics.
async fn serve_metrics(addr: std::net::SocketAddr, metrics: Metrics) -> Result<(), CliError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        CliError::usage(format!(
            "--metrics-listen {addr}: cannot listen there: {e} (pick a free port, or 0 for any)"
        ))
    })?;
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(%bound, "serving metrics at http://{bound}/metrics");
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render().await,
                )
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics endpoint stopped");
        }
    });
    Ok(())
}

/// The worker's log is the library's `tracing` events (see `crate::logging`): this observer
/// only keeps the crash-test hook, so no decision is printed twice.
struct WorkerLog;

impl Observer for WorkerLog {
    fn checkpoint(&self, key: &RunKey, point: tether_core::engine::Checkpoint) {
        crate::fault::maybe_crash(key, point);
    }
}
