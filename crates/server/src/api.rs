//! The `/api/v1` handlers: each calls the fleet library and answers its view (the JSON of
//! `docs/json-schema/tether-v1.schema.json`) or an [`ApiError`].
use std::{sync::Arc, time::Duration};

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::{Deserialize, Serialize};
use tether_core::{
    engine::Quiet,
    ids::RunKey,
    store::{RunCursor, RunQuery, RunState},
    Store,
};
use tether_fleet::{
    cancel::{CancelError, Cancelled},
    drive::RerunError,
    submit::{SubmitError, SubmitSpec, Submitted},
    view::{history_views, RunView, SubmissionView, SCHEMA_VERSION},
};
use tether_store::Access;

use crate::{error::ApiError, AppState};

/// The `/api/v1` routes that need auth.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/runs", post(submit).get(list))
        .route("/runs/{key}", get(run))
        .route("/runs/{key}/generations", get(generations))
        .route("/runs/{key}/history", get(history))
        .route("/runs/{key}/logs", get(crate::logs::logs))
        .route("/runs/{key}/cancel", post(cancel))
        .route("/runs/{key}/rerun", post(rerun))
        .route("/fleet", get(fleet))
}

#[derive(Serialize)]
struct Status {
    schema_version: u32,
    status: &'static str,
}

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Json<impl Serialize> {
    Json(Status {
        schema_version: SCHEMA_VERSION,
        status: "ok",
    })
}

/// `GET /readyz`: the store opens for reading within 5 s and its schema is current (an older
/// one asks for `tether migrate`; a newer one for a newer tether).
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut options = state.ctx.open_options();
    options.sqlite.busy_timeout = Duration::from_secs(2);
    let open = tether_store::open_with(&state.ctx.config.state, Access::ReadExisting, &options);
    match tokio::time::timeout(Duration::from_secs(5), open).await {
        Ok(Ok(_)) => Json(Status {
            schema_version: SCHEMA_VERSION,
            status: "ready",
        })
        .into_response(),
        Ok(Err(e)) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("not ready: {e}"),
        )
        .into_response(),
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "not ready: the state store did not answer within 5 s",
        )
        .into_response(),
    }
}

/// The key of a path, or 400.
pub(crate) fn key(raw: &str) -> Result<RunKey, ApiError> {
    RunKey::new(raw).map_err(|e| ApiError::bad_request(e.to_string()))
}

pub(crate) async fn store(state: &AppState) -> Result<Arc<dyn Store>, ApiError> {
    state
        .ctx
        .store_existing()
        .await
        .map_err(|e| ApiError::from(&e))
}

/// The run `key` and its submissions, or 404.
pub(crate) async fn load(
    state: &AppState,
    key: &RunKey,
) -> Result<
    (
        tether_core::store::RunRecord,
        Vec<tether_core::store::SubmissionRecord>,
    ),
    ApiError,
> {
    let store = store(state).await?;
    let run = store
        .get_run(key)
        .await
        .map_err(|e| ApiError::store(&e))?
        .ok_or_else(|| ApiError::not_found(format!("no run with key {key}")))?;
    let subs = store
        .submissions(key)
        .await
        .map_err(|e| ApiError::store(&e))?;
    Ok((run, subs))
}

async fn run(State(state): State<AppState>, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let key = key(&raw)?;
    let (run, subs) = load(&state, &key).await?;
    Ok(Json(RunView::new(&run, &subs)).into_response())
}

async fn generations(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let key = key(&raw)?;
    let (_, subs) = load(&state, &key).await?;
    let views: Vec<SubmissionView> = subs.iter().map(SubmissionView::new).collect();
    Ok(Json(views).into_response())
}

async fn history(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let key = key(&raw)?;
    let (_, subs) = load(&state, &key).await?;
    let store = store(&state).await?;
    let entries = store.history(&key).await.map_err(|e| ApiError::store(&e))?;
    Ok(Json(history_views(&entries, &subs)).into_response())
}

/// Query of `GET /api/v1/runs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Comma-separated states (`queued,running,…`).
    #[serde(default)]
    state: Option<String>,
    /// Comma-separated kinds.
    #[serde(default)]
    kind: Option<String>,
    /// Comma-separated owner ids: runs whose lease one of them holds (exact match).
    #[serde(default)]
    owner: Option<String>,
    /// Changed at or after: an RFC 3339 time, or a duration ago (`1h`, `2d`).
    #[serde(default)]
    since: Option<String>,
    /// Runs per page (default 50, at most 500).
    #[serde(default)]
    limit: Option<usize>,
    /// The `next` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

/// Largest page.
const MAX_PAGE: usize = 500;

fn list_query(q: ListQuery) -> Result<RunQuery, ApiError> {
    let words = |s: Option<String>| -> Vec<String> {
        s.unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    let states = words(q.state)
        .iter()
        .map(|w| {
            w.parse::<RunState>().map_err(|_| {
                ApiError::bad_request(format!(
                    "state={w:?}: write queued, running, succeeded, failed or cancelled"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let since_ms = match q.since.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(since_ms(text)?),
    };
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit={limit}: write 1 to {MAX_PAGE}"
        )));
    }
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(c.parse::<RunCursor>().map_err(|e| {
            ApiError::bad_request(format!("{e}: pass the `next` of the previous page"))
        })?),
    };
    Ok(RunQuery::new()
        .states(states)
        .kinds(words(q.kind))
        .owners(words(q.owner))
        .since_ms(since_ms)
        .limit(limit)
        .after(after))
}

/// `since`: an RFC 3339 time or a duration before now, as ms since the Unix epoch.
fn since_ms(text: &str) -> Result<i64, ApiError> {
    let at = match humantime::parse_rfc3339_weak(text) {
        Ok(at) => at,
        Err(_) => {
            let ago = humantime::parse_duration(text).map_err(|_| {
                ApiError::bad_request(format!(
                    "since={text:?}: write an RFC 3339 time (2026-12-01T00:00:00Z) or a \
                     duration ago (90m, 1d)"
                ))
            })?;
            std::time::SystemTime::now()
                .checked_sub(ago)
                .unwrap_or(std::time::UNIX_EPOCH)
        }
    };
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// `GET /api/v1/runs`: one page of runs, most recently changed first (the fleet's list view).
async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let query = list_query(q)?;
    let store = store(&state).await?;
    let page = tether_fleet::view::list(store.as_ref(), &query)
        .await
        .map_err(|e| ApiError::store(&e))?;
    Ok(Json(page).into_response())
}

/// `GET /api/v1/fleet` (JSON schema `fleet`).
#[derive(Serialize)]
struct FleetBody {
    schema_version: u32,
    workers: Vec<tether_fleet::view::WorkerView>,
}

/// `GET /api/v1/fleet`: every registered worker (idle ones too) and every other owner of an
/// unfinished run, with its heartbeat age and the runs it holds (the fleet view).
async fn fleet(State(state): State<AppState>) -> Result<Response, ApiError> {
    let workers = fleet_view(&state).await?;
    Ok(Json(FleetBody {
        schema_version: SCHEMA_VERSION,
        workers,
    })
    .into_response())
}

/// The fleet view with this process's clock (for unregistered owners' ages).
pub(crate) async fn fleet_view(
    state: &AppState,
) -> Result<Vec<tether_fleet::view::WorkerView>, ApiError> {
    let store = store(state).await?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    tether_fleet::view::fleet(store.as_ref(), state.ctx.config.leases.ttl, now_ms)
        .await
        .map_err(|e| ApiError::store(&e))
}

/// `POST /api/v1/runs`: a spec to enqueue.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The spec's TOML text.
    pub spec: String,
    /// Its file name, for messages (default `api.toml`).
    #[serde(default)]
    pub spec_name: Option<String>,
    /// The run key (default: derived from the content).
    #[serde(default)]
    pub key: Option<String>,
    /// The directory relative paths of the spec resolve against.
    #[serde(default)]
    pub base_dir: Option<String>,
}

async fn submit(
    State(state): State<AppState>,
    body: Result<Json<SubmitRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut spec = SubmitSpec::new(req.spec_name.unwrap_or_else(|| "api.toml".into()), req.spec);
    spec.key = req.key.as_deref().map(key).transpose()?;
    if let Some(dir) = req.base_dir {
        if !std::path::Path::new(&dir).is_absolute() {
            return Err(ApiError::bad_request(format!(
                "base_dir {dir:?} must be an absolute path"
            )));
        }
        spec.base_dir = Some(dir);
    }
    match tether_fleet::submit::submit(&state.ctx, spec).await {
        Ok(Submitted::New(r)) => {
            Ok((StatusCode::CREATED, Json(RunView::new(&r, &[]))).into_response())
        }
        Ok(Submitted::Existing(r)) => {
            let subs = store(&state)
                .await?
                .submissions(&r.key)
                .await
                .map_err(|e| ApiError::store(&e))?;
            Ok(Json(RunView::new(&r, &subs)).into_response())
        }
        Ok(_) => Err(ApiError::conflict("unexpected answer of the submission")),
        Err(SubmitError::Build(e)) => Err(ApiError::from(&e)),
        Err(e @ SubmitError::NotDurable) => Err(ApiError::bad_request(e.to_string())),
        Err(e @ SubmitError::OtherSpec(_)) => Err(ApiError::conflict(e.to_string())),
        Err(SubmitError::Open(e)) => Err(ApiError::from(&e)),
        Err(SubmitError::Store(e)) => Err(ApiError::store(&e)),
        Err(e) => Err(ApiError::bad_request(e.to_string())),
    }
}

/// The answer of a cancel.
#[derive(Serialize)]
struct CancelView {
    schema_version: u32,
    /// `requested` (the owner, or the next one, kills the job) or `already_finished`.
    cancel: &'static str,
    /// The run after the request.
    run: RunView,
}

async fn cancel(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let key = key(&raw)?;
    // Never waits: whoever drives the run (a worker, or the next one) kills the job.
    let cancelled = tether_fleet::cancel::cancel(&state.ctx, &key, false, Arc::new(Quiet))
        .await
        .map_err(|e| match e {
            CancelError::NoRun(k) => ApiError::not_found(format!("no run with key {k}")),
            CancelError::Open(e) => ApiError::from(&e),
            CancelError::Store(e) => ApiError::store(&e),
            CancelError::Build(e) => ApiError::from(&e),
            other => ApiError::conflict(other.to_string()),
        })?;
    let word = match cancelled {
        Cancelled::AlreadyFinished(_) => "already_finished",
        _ => "requested",
    };
    let (run, subs) = load(&state, &key).await?;
    Ok(Json(CancelView {
        schema_version: SCHEMA_VERSION,
        cancel: word,
        run: RunView::new(&run, &subs),
    })
    .into_response())
}

/// `POST /api/v1/runs/{key}/rerun`: optionally a new spec.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RerunRequest {
    /// A new spec text replacing the stored one.
    #[serde(default)]
    pub spec: Option<String>,
    /// Its file name (default `api.toml`).
    #[serde(default)]
    pub spec_name: Option<String>,
}

async fn rerun(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    body: Result<Option<Json<RerunRequest>>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let key = key(&raw)?;
    let body = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let req = body.map(|Json(r)| r).unwrap_or_default();
    let spec = req
        .spec
        .map(|text| (req.spec_name.unwrap_or_else(|| "api.toml".into()), text));
    // The fresh instance is left for the workers: the server drives nothing itself.
    let fresh = tether_fleet::drive::rerun(&state.ctx, &key, spec)
        .await
        .map_err(|e| match e {
            RerunError::Build(e) => ApiError::from(&e),
            e @ RerunError::NotDurable(_) => ApiError::bad_request(e.to_string()),
            RerunError::Open(e) => ApiError::from(&e),
            RerunError::Store(e) => ApiError::store(&e),
            e @ RerunError::NoRun(_) => ApiError::not_found(e.to_string()),
            other => ApiError::conflict(other.to_string()),
        })?;
    let subs = fresh
        .store
        .submissions(&key)
        .await
        .map_err(|e| ApiError::store(&e))?;
    Ok(Json(RunView::new(&fresh.run, &subs)).into_response())
}
