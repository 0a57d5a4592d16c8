//! `wait_change` is asked for only of a connector that notices changes: every other one would
//! hold a future and a timer per polling run for nothing (issue 15, memory per run).
mod common;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use async_trait::async_trait;
use common::*;
use tether_core::{
    connector::{CancelError, JobRef, SubmitError, SubmitRequest},
    engine::{Engine, LeaseSettings, Quiet, RunSignals},
    ids::ExternalId,
    observe::JobStatus,
    Connector,
};
use tether_testkit::ScriptedConnector;

/// The scripted connector, counting `wait_change` calls, noticing changes or not.
struct Watching {
    inner: Arc<ScriptedConnector>,
    notices: bool,
    waits: AtomicUsize,
}

#[async_trait]
impl Connector for Watching {
    fn kind(&self) -> &str {
        self.inner.kind()
    }
    async fn submit(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        self.inner.submit(req).await
    }
    async fn status(&self, job: &JobRef) -> JobStatus {
        self.inner.status(job).await
    }
    async fn wait_change(&self, _job: &JobRef, _max: Duration) {
        self.waits.fetch_add(1, Ordering::SeqCst);
    }
    fn notices_changes(&self) -> bool {
        self.notices
    }
    async fn cancel(&self, job: &JobRef) -> Result<(), CancelError> {
        self.inner.cancel(job).await
    }
}

async fn waits(notices: bool) -> usize {
    let store = store().await;
    let (lease, record) = acquire(&store, "me").await;
    let c = Arc::new(Watching {
        inner: Arc::new(ScriptedConnector::new(vec![
            active(),
            active(),
            succeeded(),
        ])),
        notices,
        waits: AtomicUsize::new(0),
    });
    let leases = LeaseSettings {
        ttl: TTL,
        follow_interval: Duration::from_millis(10),
    };
    let engine = Engine::new(store.clone(), c.clone(), policy(), leases, Arc::new(Quiet));
    engine
        .drive(&lease, record, RunSignals::new())
        .await
        .expect("drive");
    c.waits.load(Ordering::SeqCst)
}

#[tokio::test]
async fn only_a_connector_that_notices_changes_is_asked_to_wait_for_one() {
    assert_eq!(waits(true).await, 2, "one wait per active poll");
    assert_eq!(waits(false).await, 0, "the engine sleeps on its own");
}
