//! `GET /api/v1/runs/{key}/logs`: the job's log through the fleet library's reader
//! ([`tether_fleet::logs::logs`]), as a chunked `text/plain` body, or as server-sent events
//! when following (`?follow=true` or `Accept: text/event-stream`).
//!
//! SSE events: `log` (data: the text read, lines as `data:` lines), `error` (data: the API's
//! error JSON), and `end` once the run finished and its last output was sent.
//!
//! ## Guarantees
//! - Bounded memory per reader: at most [`QUEUE`] pages (≤ 1 MiB each) wait for a slow client;
//!   the reader waits while the queue is full.
//! - A client that goes away stops its reader (at the next page, or within 0.5 s while idle).
//!
//! ## Caveats
//! - The fleet reader's future is not `Send` (it takes a `&mut dyn FnMut`), so each reader runs
//!   on a thread of tokio's blocking pool (at most 512 at once, shared with file I/O).
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
use tether_fleet::logs::{LogsError, LogsOptions};
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
}

enum Msg {
    Data(Vec<u8>),
    Failed(ApiError),
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
    // An unknown run is a 404 before any stream starts (an event stream answers 200 at once).
    crate::api::load(&state, &key).await?;
    let (tx, mut rx) = mpsc::channel::<Msg>(QUEUE);
    let ctx = state.ctx.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let done = tx.clone();
        let mut out = |data: &[u8]| send(&tx, Msg::Data(data.to_vec()));
        let read = tether_fleet::logs::logs(&ctx, &key, &options, &mut out);
        let result = handle.block_on(async {
            tokio::select! {
                r = read => Some(r),
                // The client went away while the reader waits for new output.
                _ = done.closed() => None,
            }
        });
        if let Some(Err(e)) = result {
            let _ = send(&done, Msg::Failed(error_of(&e)));
        }
    });
    if sse {
        let events = ReceiverStream::new(rx)
            .map(|msg| {
                Ok::<_, Infallible>(match msg {
                    Msg::Data(data) => Event::default()
                        .event("log")
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
        Some(Msg::Data(d)) => d,
    };
    let rest = ReceiverStream::new(rx).filter_map(|msg| match msg {
        Msg::Data(d) => Some(Ok::<_, Infallible>(Bytes::from(d))),
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

/// Queues `msg`, waiting (this is a blocking-pool thread) while the queue is full; false once
/// the client is gone.
fn send(tx: &mpsc::Sender<Msg>, mut msg: Msg) -> bool {
    loop {
        match tx.try_send(msg) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
            Err(mpsc::error::TrySendError::Full(back)) => {
                msg = back;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
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
