//! `GET /api/v1/runs/{key}/logs`: the job's log through the fleet library's reader
//! ([`tether_fleet::logs::logs`]), as a chunked `text/plain` body, or as server-sent events
//! when following (`?follow=true` or `Accept: text/event-stream`).
//!
//! SSE events: `log` (data: the text read, lines as `data:` lines; `id`: the cursor just
//! after it), `error` (data: the API's error JSON), and `end` once the run finished and its
//! last output was sent.
//!
//! Resuming: `?cursor=C` (or, on a reconnecting `EventSource`, its `Last-Event-ID` header)
//! starts after the piece whose cursor is `C`. Without `follow`, `?cursor=` (empty: the
//! latest job's start) answers one page (≤ 1 MiB) and its next cursor in the
//! `Tether-Log-Cursor` header: asking again with it reads on (an empty page: nothing new yet).
//!
//! ## Guarantees
//! - Bounded memory per reader: at most [`QUEUE`] pages (≤ 1 MiB each) wait for a slow client;
//!   the reader waits (asynchronously) while the queue is full.
//! - Each reader is a task: a follower holds no thread while it waits for output.
//! - A client that goes away stops its reader (at the next page, or within 0.5 s while idle).
//! - A resumed read neither loses nor repeats a byte: cursors are the connector's own.
//!
//! ## Caveats
//! - SSE carries text: bytes that are not UTF-8 are replaced (U+FFFD) and carriage returns are
//!   dropped (SSE cannot carry them). The chunked body carries the bytes as they are.
use std::{convert::Infallible, time::Duration};

use axum::{
    body::{Body, Bytes},
    extract::{Path, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use serde::Deserialize;
use tether_fleet::logs::{LogPosition, LogSink, LogsError, LogsOptions};
use tokio::sync::mpsc;
use tokio_stream::{wrappers::ReceiverStream, StreamExt};

use crate::{api::key, error::ApiError, AppState};

/// Pages waiting for the client, at most.
const QUEUE: usize = 4;

/// Query of the logs route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// `stdout` (default) or `stderr`.
    #[serde(default)]
    stream: Option<String>,
    /// A generation's job (default: the latest, following newer ones).
    #[serde(default)]
    generation: Option<u32>,
    /// Keep reading until the run is finished (as server-sent events).
    #[serde(default)]
    follow: Option<bool>,
    /// Go on after this cursor (an event's `id`, a page's `Tether-Log-Cursor`).
    #[serde(default)]
    cursor: Option<String>,
}

/// The header of a page's next cursor.
pub const CURSOR_HEADER: &str = "tether-log-cursor";

enum Msg {
    Data(Vec<u8>, LogPosition),
    Failed(ApiError),
}

/// Queues each piece for the client, waiting while the queue is full.
struct Queue(mpsc::Sender<Msg>);

impl LogSink for Queue {
    async fn write(&mut self, data: &[u8], at: &LogPosition) -> bool {
        self.0
            .send(Msg::Data(data.to_vec(), at.clone()))
            .await
            .is_ok()
    }
}

/// Keeps the first piece only (a page), then stops the read.
#[derive(Default)]
struct Page(Option<(Vec<u8>, LogPosition)>);

impl LogSink for Page {
    async fn write(&mut self, data: &[u8], at: &LogPosition) -> bool {
        self.0 = Some((data.to_vec(), at.clone()));
        false
    }
}

fn error_of(e: &LogsError) -> ApiError {
    match e {
        LogsError::NoRun(k) => ApiError::not_found(format!("no run with key {k}")),
        LogsError::NoGeneration { .. } => ApiError::not_found(e.to_string()),
        LogsError::Open(e) => ApiError::from(e),
        LogsError::Store(e) => ApiError::store(e),
        LogsError::Build(e) => ApiError::from(e),
        LogsError::NotSubmitted(_) | LogsError::NoLogs(_) => ApiError::conflict(e.to_string()),
        _ => ApiError::new(StatusCode::BAD_GATEWAY, "backend_error", e.to_string()),
    }
}

pub(crate) async fn logs(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    query: Result<Query<LogsQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = key(&raw)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut options = LogsOptions::new();
    options.stderr = match q.stream.as_deref() {
        None | Some("stdout") => false,
        Some("stderr") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "stream={other:?}: write stdout or stderr"
            )))
        }
    };
    if q.generation == Some(0) {
        return Err(ApiError::bad_request("generation numbers start at 1"));
    }
    options.generation = q.generation;
    let sse = q.follow.unwrap_or(false)
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream"));
    options.follow = sse;
    // A reconnecting EventSource sends the id of the last event it got.
    let last_event = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let paged = !sse && q.cursor.is_some();
    options.resume = match q.cursor.as_deref().filter(|c| !c.is_empty()).or(last_event) {
        Some(c) => Some(
            c.parse::<LogPosition>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        ),
        None => None,
    };
    // An unknown run is a 404 before any stream starts (an event stream answers 200 at once).
    crate::api::load(&state, &key).await?;
    if paged {
        return page(&state, &key, &options).await;
    }
    let (tx, mut rx) = mpsc::channel::<Msg>(QUEUE);
    let ctx = state.ctx.clone();
    tokio::spawn(async move {
        let done = tx.clone();
        let mut out = Queue(tx);
        let result = tokio::select! {
            r = tether_fleet::logs::logs(&ctx, &key, &options, &mut out) => Some(r),
            // The client went away while the reader waits for new output.
            _ = done.closed() => None,
        };
        if let Some(Err(e)) = result {
            let _ = done.send(Msg::Failed(error_of(&e))).await;
        }
    });
    if sse {
        let events = ReceiverStream::new(rx)
            .map(|msg| {
                Ok::<_, Infallible>(match msg {
                    Msg::Data(data, at) => Event::default()
                        .event("log")
                        .id(at.to_string())
                        .data(String::from_utf8_lossy(&data).replace('\r', "")),
                    Msg::Failed(e) => Event::default()
                        .event("error")
                        .data(serde_json::to_string(&ErrorEvent::of(&e)).unwrap_or_default()),
                })
            })
            .chain(tokio_stream::once(Ok(Event::default()
                .event("end")
                .data(""))));
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response());
    }
    // Chunked: the first answer decides the status (an error before any byte is a JSON error).
    let first = match rx.recv().await {
        None => {
            return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "").into_response())
        }
        Some(Msg::Failed(e)) => return Err(e),
        Some(Msg::Data(d, _)) => d,
    };
    let rest = ReceiverStream::new(rx).filter_map(|msg| match msg {
        Msg::Data(d, _) => Some(Ok::<_, Infallible>(Bytes::from(d))),
        // After the first byte the status is sent: an error ends the body early.
        Msg::Failed(_) => None,
    });
    let body = tokio_stream::once(Ok(Bytes::from(first))).chain(rest);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(body),
    )
        .into_response())
}

/// One page from `options.resume` (or the latest job's start) and the cursor after it. An
/// empty page at the end of a generation's log whose run has a newer job points at that one.
async fn page(
    state: &AppState,
    key: &tether_core::ids::RunKey,
    options: &LogsOptions,
) -> Result<Response, ApiError> {
    let mut page = Page::default();
    tether_fleet::logs::logs(&state.ctx, key, options, &mut page)
        .await
        .map_err(|e| error_of(&e))?;
    let (data, next) = match page.0 {
        Some((data, at)) => (data, at),
        None => {
            let subs = crate::api::store(state)
                .await?
                .submissions(key)
                .await
                .map_err(|e| ApiError::store(&e))?;
            let mut jobs = subs
                .iter()
                .filter(|s| s.external_id.is_some())
                .map(|s| s.submission.generation);
            // Resumed: the next generation with a job, from its start, else where we are.
            // Not resumed: the latest job's start (the job `logs` read, empty so far).
            let newer = match &options.resume {
                Some(p) => jobs.find(|g| *g > p.generation),
                None => jobs.next_back(),
            };
            let next = match (newer, &options.resume) {
                (Some(g), _) => LogPosition {
                    generation: g,
                    cursor: tether_core::connector::LogCursor::start(),
                },
                (None, Some(p)) => p.clone(),
                (None, None) => {
                    return Err(ApiError::conflict(format!(
                        "run {key} has no submitted job yet: nothing to show"
                    )))
                }
            };
            (Vec::new(), next)
        }
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                header::HeaderName::from_static(CURSOR_HEADER),
                next.to_string(),
            ),
        ],
        data,
    )
        .into_response())
}

#[derive(serde::Serialize)]
struct ErrorEvent<'a> {
    schema_version: u32,
    error: &'a ApiError,
}

impl<'a> ErrorEvent<'a> {
    fn of(e: &'a ApiError) -> ErrorEvent<'a> {
        ErrorEvent {
            schema_version: tether_fleet::view::SCHEMA_VERSION,
            error: e,
        }
    }
}
