//! Shared set-up of the engine tests: a run in a [`MemoryStore`], its lease, an engine.
#![allow(dead_code)] // each test file uses part of it

use std::{sync::Arc, time::Duration};

use tether_core::{
    engine::{Engine, LeaseSettings, Quiet},
    ids::{ExternalId, Generation, RunKey, Tag},
    journal::{Shape, Submission},
    observe::JobStatus,
    spec::Policy,
    store::{HistoryEntry, Lease, RunRecord},
    Store,
};
use tether_testkit::{acquired, scripted_run, MemoryStore, ScriptedConnector};

pub const TTL: Duration = Duration::from_secs(9);

pub fn key() -> RunKey {
    RunKey::new("guarded").unwrap()
}

/// A store holding one fresh run `guarded`.
pub async fn store() -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    store.create_run(&scripted_run(&key())).await.unwrap();
    store
}

/// Takes the run's lease for `owner`.
pub async fn acquire(store: &MemoryStore, owner: &str) -> (Lease, RunRecord) {
    acquired(store, &key(), owner, TTL).await
}

/// Another owner takes the run over once `lease` expired by the store's clock.
pub async fn take_over(store: &MemoryStore) -> Lease {
    store.advance(TTL);
    acquire(store, "usurper").await.0
}

pub fn entry(lease: &Lease, what: &str) -> HistoryEntry {
    HistoryEntry {
        at_ms: 0,
        epoch: lease.epoch,
        generation: None,
        decision: what.into(),
        reason: what.into(),
    }
}

/// Records generation 1 as submitted with id `job-0` under `lease`.
pub async fn submitted(store: &MemoryStore, lease: &Lease) {
    let submission = Submission {
        generation: Generation(1),
        tag: Tag::derive(store.store_id(), &key(), Generation(1)),
        shape: Shape::Normal,
    };
    store
        .record_intent(lease, &submission, None, None, &entry(lease, "submit"))
        .await
        .unwrap();
    store
        .record_submitted(
            lease,
            Generation(1),
            &ExternalId("job-0".into()),
            &entry(lease, "submitted"),
        )
        .await
        .unwrap();
}

/// Short waits, so the tests run in milliseconds (or in paused time).
pub fn policy() -> Policy {
    Policy {
        poll_interval: Duration::from_millis(10),
        backoff: Duration::from_millis(10),
        backoff_max: Duration::from_millis(20),
        ..Policy::default()
    }
}

pub fn engine(store: &Arc<MemoryStore>, connector: &Arc<ScriptedConnector>) -> Engine {
    Engine::new(
        store.clone(),
        connector.clone(),
        policy(),
        LeaseSettings {
            ttl: TTL,
            follow_interval: Duration::from_millis(10),
        },
        Arc::new(Quiet),
    )
}

pub fn succeeded() -> JobStatus {
    JobStatus::Succeeded {
        result: serde_json::json!({"rows": 1}),
    }
}

pub fn active() -> JobStatus {
    JobStatus::running("RUNNING")
}
