//! Backend events into the run's history (`backend-event`): read after each active poll and
//! before the outcome, each one once per generation, also when an earlier owner already wrote
//! some (a takeover restarts the connector's cursor).
mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use common::*;
use tether_core::{
    connector::{
        BackendEvent, BackendEvents, CancelError, EventCursor, EventsError, JobRef, SubmitError,
        SubmitRequest,
    },
    engine::{Engine, Finish, LeaseSettings, Quiet},
    history::HistoryKind,
    ids::{ExternalId, Generation, OwnerId},
    journal::Outcome,
    observe::JobStatus,
    store::HistoryEntry,
    Connector, Store,
};
use tether_testkit::ScriptedConnector;

/// The scripted connector plus events: everything in `seen` after the cursor (an index).
struct Evented {
    inner: Arc<ScriptedConnector>,
    seen: Mutex<Vec<String>>,
    asked: Mutex<Vec<Option<String>>>,
}

#[async_trait]
impl Connector for Evented {
    fn kind(&self) -> &str {
        self.inner.kind()
    }
    async fn submit(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        self.inner.submit(req).await
    }
    async fn status(&self, job: &JobRef) -> JobStatus {
        // One more event appears with every status call past the first.
        let s = self.inner.status(job).await;
        let mut seen = self.seen.lock().unwrap();
        let n = seen.len();
        seen.push(format!("executor {n} OOMKilled (exit 137)"));
        s
    }
    async fn cancel(&self, job: &JobRef) -> Result<(), CancelError> {
        self.inner.cancel(job).await
    }
    fn events(&self) -> Option<&dyn BackendEvents> {
        Some(self)
    }
}

#[async_trait]
impl BackendEvents for Evented {
    async fn events(
        &self,
        _job: &JobRef,
        since: Option<&EventCursor>,
    ) -> Result<(Vec<BackendEvent>, EventCursor), EventsError> {
        self.asked.lock().unwrap().push(since.map(|c| c.0.clone()));
        let seen = self.seen.lock().unwrap();
        let from: usize = since.and_then(|c| c.0.parse().ok()).unwrap_or(0);
        let events = seen[from.min(seen.len())..]
            .iter()
            .map(|m| BackendEvent {
                kind: "executor-oom".into(),
                message: m.clone(),
                at_ms: None,
            })
            .collect();
        Ok((events, EventCursor(seen.len().to_string())))
    }
}

#[tokio::test]
async fn each_event_is_written_once_even_after_a_takeover() {
    let store = store().await;
    // An earlier owner submitted and wrote the first event, then died.
    let (lease, _) = acquire(&store, "earlier").await;
    submitted(&store, &lease).await;
    let first = "executor 0 OOMKilled (exit 137)";
    store
        .append_history(
            &lease,
            &HistoryEntry {
                at_ms: 0,
                epoch: lease.epoch,
                generation: Some(Generation(1)),
                decision: HistoryKind::BackendEvent,
                reason: first.into(),
            },
        )
        .await
        .unwrap();
    store.advance(TTL);
    let scripted = Arc::new(ScriptedConnector::new(vec![
        active(),
        active(),
        active(),
        succeeded(),
    ]));
    let c = Arc::new(Evented {
        inner: scripted,
        seen: Mutex::new(vec![]),
        asked: Mutex::new(vec![]),
    });
    let engine = Engine::new(
        store.clone(),
        c.clone(),
        policy(),
        LeaseSettings {
            ttl: TTL,
            follow_interval: Duration::from_millis(10),
        },
        Arc::new(Quiet),
    );
    let finish = tokio::time::timeout(
        Duration::from_secs(10),
        engine.run(&key(), &OwnerId("new".into())),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        matches!(finish, Finish::Outcome(Outcome::Succeeded { .. })),
        "{finish:?}"
    );
    let history = store.history(&key()).await.unwrap();
    let events: Vec<&str> = history
        .iter()
        .filter(|e| e.decision == HistoryKind::BackendEvent)
        .map(|e| e.reason.as_str())
        .collect();
    let want: Vec<String> = (0..4)
        .map(|n| format!("executor {n} OOMKilled (exit 137)"))
        .collect();
    assert_eq!(events, want, "each once, in order");
    assert!(history
        .iter()
        .filter(|e| e.decision == HistoryKind::BackendEvent)
        .all(|e| e.generation == Some(Generation(1))));
    // The first read had no cursor (a new owner), later ones the connector's own.
    let asked = c.asked.lock().unwrap().clone();
    assert_eq!(asked[0], None);
    assert!(asked[1..].iter().all(Option::is_some), "{asked:?}");
}
