//! The web UI of `tether serve` and its `/metrics`: server-rendered pages ([`pages`], maud,
//! which escapes every value it interpolates) over the same fleet views as the API, one
//! embedded CSS and one JS file (no build step), and the Prometheus text of the fleet's
//! [`Metrics`](tether_fleet::Metrics).
//!
//! Routes: `GET /` (redirects to `/ui/runs`), `/ui/runs` (`?state=`), `/ui/runs/{key}`,
//! `/ui/fleet`, `/ui/assets/*`, `/metrics`.
//!
//! ## Guarantees
//! - With tokens configured, every page and `/metrics` need a read token, presented as
//!   `Authorization: Bearer`, or as the `tether_token` cookie. A page opened once with
//!   `?token=TOKEN` sets that cookie (HttpOnly, SameSite=Strict, so no script reads it and no
//!   other site's request carries it) and redirects to the same URL without the token, so the
//!   token leaves the address bar and the history. The API accepts the cookie too: the pages'
//!   scripts call it with the cookie; cancel and rerun still need a write token.
//! - Every value shown (keys, messages, owners, history reasons) is escaped by maud.
//! - A job link is only ever an `http(s)` URL ([`tether_connectors::http::web_url`]).
//!
//! ## Caveats
//! - The cookie carries no `Secure` attribute (the server does not know whether a proxy
//!   terminates TLS): serve the UI over HTTPS beyond loopback.
mod link;
mod pages;

use axum::{
    extract::{Path, Query, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
    Router,
};
use serde::Deserialize;
use tether_core::store::{RunQuery, RunState};

use crate::{api, error::ApiError, AppState, Scope};

/// The cookie holding the token of a browser.
pub const COOKIE: &str = "tether_token";

/// The pages (behind the page gate), the assets and `/` (open).
pub fn routes(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/ui/runs", get(runs_page))
        .route("/ui/runs/{key}", get(run_page))
        .route("/ui/fleet", get(fleet_page))
        .layer(middleware::from_fn_with_state(state.clone(), gate));
    let metrics = Router::new()
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state, crate::authorize));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/runs") }))
        .route("/ui", get(|| async { Redirect::to("/ui/runs") }))
        .route("/ui/assets/ui.css", get(css))
        .route("/ui/assets/ui.js", get(js))
        .merge(pages)
        .merge(metrics)
}

/// The token a request presents: `Authorization: Bearer`, else the [`COOKIE`].
pub(crate) fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

/// The page gate: a read token (bearer or cookie), or `?token=` once (sets the cookie).
async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.tokens.any() {
        return next.run(request).await;
    }
    if let Some(query) = request.uri().query() {
        let token = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned());
        if let Some(token) = token {
            if state.tokens.scope_of(token.trim()).is_none() {
                return refused("the token of the address is not one this server knows");
            }
            // The other parameters as they came (already encoded), the token dropped.
            let rest: Vec<&str> = query
                .split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("token="))
                .collect();
            let path = request.uri().path();
            let to = if rest.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", rest.join("&"))
            };
            let cookie = cookie::Cookie::build((COOKIE, token.trim().to_string()))
                .http_only(true)
                .same_site(cookie::SameSite::Strict)
                .path("/")
                .build();
            let mut response = Redirect::to(&to).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            return response;
        }
    }
    match presented_token(request.headers()) {
        None => refused(
            "this server needs a token: open this page once with ?token=TOKEN (a read token), \
             or send `Authorization: Bearer TOKEN`",
        ),
        Some(t) => match state.tokens.scope_of(&t) {
            Some(s) if s >= Scope::Read => next.run(request).await,
            _ => {
                refused("the token is not one this server knows: open this page with ?token=TOKEN")
            }
        },
    }
}

fn refused(why: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Html(pages::refused(why).into_string()),
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/ui.css"))
}

async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/ui.js"),
    )
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A page, or the API's error as a page with its status.
fn page(result: Result<maud::Markup, ApiError>) -> Response {
    match result {
        Ok(markup) => Html(markup.into_string()).into_response(),
        Err(e) => {
            let status = e.status();
            (
                status,
                Html(pages::error(status, e.message()).into_string()),
            )
                .into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
struct RunsQuery {
    #[serde(default)]
    state: Option<String>,
}

/// Rows on the runs page (newest first; the script keeps them current).
const RUNS_SHOWN: usize = 200;

async fn runs_page(
    State(state): State<AppState>,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let filter = match query {
        Ok(Query(q)) => q.state.filter(|s| !s.is_empty()),
        Err(e) => return page(Err(ApiError::bad_request(e.body_text()))),
    };
    page(
        async {
            let states = match &filter {
                None => vec![],
                Some(w) => vec![w.parse::<RunState>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "state={w:?}: write queued, running, succeeded, failed or cancelled"
                    ))
                })?],
            };
            let store = api::store(&state).await?;
            let query = RunQuery::new().states(states).limit(RUNS_SHOWN);
            let list = tether_fleet::view::list(store.as_ref(), &query)
                .await
                .map_err(|e| ApiError::store(&e))?;
            Ok(pages::runs(&list, filter.as_deref()))
        }
        .await,
    )
}

async fn run_page(State(state): State<AppState>, Path(raw): Path<String>) -> Response {
    page(
        async {
            let key = api::key(&raw)?;
            let (run, subs) = api::load(&state, &key).await?;
            let store = api::store(&state).await?;
            let entries = store.history(&key).await.map_err(|e| ApiError::store(&e))?;
            let history = tether_fleet::view::history_views(&entries, &subs);
            let view = tether_fleet::view::RunView::new(&run, &subs);
            let job_link = link::job_link(&run.kind, &run.spec, view.external_id.as_ref());
            Ok(pages::run(&view, &history, job_link.as_deref()))
        }
        .await,
    )
}

async fn fleet_page(State(state): State<AppState>) -> Response {
    page(
        async {
            let workers = api::fleet_view(&state).await?;
            Ok(pages::fleet(&workers))
        }
        .await,
    )
}

/// `GET /metrics`: the fleet's metrics, `tether_runs` read from the store at each scrape.
async fn metrics(State(state): State<AppState>) -> Response {
    match state.ctx.store_existing().await {
        Ok(store) => state.metrics.attach_store(store),
        // The counters still answer; the runs gauge keeps its last reading.
        Err(e) => tracing::warn!(error = %e, "metrics: cannot open the state store"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render().await,
    )
        .into_response()
}
