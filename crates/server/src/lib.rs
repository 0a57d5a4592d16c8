//! `tether serve`: an HTTP API over the fleet library (`tether-fleet`), for dashboards and
//! scripts. A front end like the CLI: every answer is built by the fleet library's operations
//! and views, never by a second copy of their logic.
//!
//! Routes (the OpenAPI document at `/api/v1/openapi.json` describes them; a test checks it
//! against the router):
//! - `GET /healthz` (the process answers), `GET /readyz` (store reachable, schema current);
//! - `GET /api/v1/runs/{key}`, `…/generations`, `…/history`, `…/logs` (chunked; SSE with
//!   `?follow=true` or `Accept: text/event-stream`);
//! - `POST /api/v1/runs` (submit a spec), `POST /api/v1/runs/{key}/cancel`, `…/rerun`.
//!
//! ## Guarantees
//! - Stateless: every request reads the store; any number of servers may run beside workers.
//! - Auth ([`auth`]): with tokens configured, every `/api/v1` route but the OpenAPI document
//!   needs one (`read` for GET, `write` for POST); without, the server binds loopback only
//!   unless told `insecure_no_auth`. Tokens are never logged. CORS is off (no CORS headers).
//! - Errors are JSON ([`error::ApiError`]): `{"schema_version":1,"error":{"code","message"}}`.
//! - Graceful shutdown: when `stop` completes, no new connection is accepted and requests in
//!   flight get [`ServeOptions::grace`] to finish (log followers are ended by then).
//!
//! ## Caveats
//! - A request that POSTs a spec with relative paths resolves them against `base_dir` of the
//!   request, else against the worker's own directory: the server has no submitter directory.
//! - Write scope means running commands on workers that allow the `local` kind (as write access
//!   to the store does): give such tokens only to whom may do that.
pub mod api;
pub mod auth;
pub mod error;
mod logs;
pub mod openapi;
pub mod ui;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    extract::{Request, State},
    http::Method,
    middleware::{self, Next},
    response::Response,
    Router,
};
use tether_fleet::Ctx;

pub use auth::{Scope, Tokens};
use error::ApiError;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The fleet context (config, registry, opening the store).
    pub ctx: Arc<Ctx>,
    /// The configured tokens.
    pub tokens: Arc<Tokens>,
    /// What `/metrics` serves.
    pub metrics: tether_fleet::Metrics,
}

/// How to serve.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// PEM certificate chain and key files: HTTPS when given.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Allow an open API (no token) on a non-loopback address.
    pub insecure_no_auth: bool,
    /// How long requests in flight may take to finish after `stop`.
    pub grace: Duration,
}

impl ServeOptions {
    /// Plain HTTP on `listen`, 10 s grace.
    pub fn new(listen: SocketAddr) -> ServeOptions {
        ServeOptions {
            listen,
            tls: None,
            insecure_no_auth: false,
            grace: Duration::from_secs(10),
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listen address is refused (open API beyond loopback).
    #[error("{0}")]
    Refused(String),
    /// The token settings are unusable.
    #[error(transparent)]
    Auth(#[from] auth::AuthConfigError),
    /// The certificate or key could not be loaded.
    #[error("TLS certificate {cert} / key {key}: {source}")]
    Tls {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Binding or serving failed.
    #[error("cannot serve on {addr}: {source}")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The application: every route, auth, no CORS.
pub fn app(state: AppState) -> Router {
    let api = api::routes()
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .route("/openapi.json", axum::routing::get(openapi::document));
    Router::new()
        .route("/healthz", axum::routing::get(api::healthz))
        .route("/readyz", axum::routing::get(api::readyz))
        .nest("/api/v1", api)
        .merge(ui::routes(state.clone()))
        .fallback(|| async { ApiError::not_found("no such route: see /api/v1/openapi.json") })
        // Specs are small; a larger body is refused before it is read.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1 << 20))
        .with_state(state)
}

/// Checks the bearer token against the scope the method needs.
pub(crate) async fn authorize(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !state.tokens.any() {
        return next.run(request).await;
    }
    let needed = if matches!(*request.method(), Method::GET | Method::HEAD) {
        Scope::Read
    } else {
        Scope::Write
    };
    // The pages' scripts present the UI's cookie instead of a header.
    let presented = ui::presented_token(request.headers());
    let Some(token) = presented else {
        return axum::response::IntoResponse::into_response(ApiError::unauthorized(
            "this server needs a bearer token: send `Authorization: Bearer TOKEN`",
        ));
    };
    match state.tokens.scope_of(&token) {
        Some(scope) if scope >= needed => next.run(request).await,
        Some(_) => axum::response::IntoResponse::into_response(ApiError::forbidden(
            "this token has the read scope; submit, cancel and rerun need a write token",
        )),
        None => axum::response::IntoResponse::into_response(ApiError::unauthorized(
            "the bearer token is not one this server knows",
        )),
    }
}

/// Serves `ctx` as `options` say until `stop` completes. `bound` is told the address actually
/// bound (port 0 picks a free one) once the server accepts connections.
pub async fn serve(
    ctx: Ctx,
    options: ServeOptions,
    stop: impl Future<Output = ()> + Send + 'static,
    bound: impl FnOnce(SocketAddr) + Send,
) -> Result<(), ServeError> {
    let tokens = Tokens::load(&ctx.config.serve)?;
    auth::check_listen(options.listen, &tokens, options.insecure_no_auth)
        .map_err(ServeError::Refused)?;
    let app = app(AppState {
        ctx: Arc::new(ctx),
        tokens: Arc::new(tokens),
        metrics: tether_fleet::Metrics::new(),
    });
    let addr = options.listen;
    let io = |source| ServeError::Io { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(io)?;
    listener.set_nonblocking(true).map_err(io)?;
    let local = listener.local_addr().map_err(io)?;
    let handle = axum_server::Handle::new();
    let grace = options.grace;
    let h = handle.clone();
    tokio::spawn(async move {
        stop.await;
        tracing::info!("stopping: no new connections, {grace:?} for requests in flight");
        h.graceful_shutdown(Some(grace));
    });
    bound(local);
    tracing::info!(addr = %local, tls = options.tls.is_some(), "serving");
    let service = app.into_make_service();
    match &options.tls {
        Some((cert, key)) => {
            let config = tls_config(cert, key).await?;
            axum_server::from_tcp_rustls(listener, config)
                .handle(handle)
                .serve(service)
                .await
                .map_err(io)
        }
        None => axum_server::from_tcp(listener)
            .handle(handle)
            .serve(service)
            .await
            .map_err(io),
    }
}

async fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<axum_server::tls_rustls::RustlsConfig, ServeError> {
    let fail = |source| ServeError::Tls {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        source,
    };
    // The ring provider, as everywhere in tether (no aws-lc to build).
    let _ = rustls::crypto::ring::default_provider().install_default();
    axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(fail)
}
