//! Capability: what the backend saw happen inside a running job (an executor killed for
//! memory, a new executor shape), for the run's history (`backend-event` entries).
//!
//! ## Guarantees a connector must give
//! - `events` reports each event once per cursor: called again with the cursor it returned,
//!   it reports only what is new. Called without a cursor, it reports every event it can still
//!   see (the engine then drops those the run's history already has).
//! - `events` never changes the job and never fails the run: an error only skips this round.
//!
//! ## Caveats
//! - Events are what the backend still shows when asked (after each active poll): one that
//!   came and went between two polls (an object deleted meanwhile) may be missed.
use async_trait::async_trait;

use super::JobRef;

/// Where a connector's event reading stopped; opaque to everyone but the connector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventCursor(pub String);

/// One thing the backend saw happen in a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendEvent {
    /// What kind of thing (`executor-oom`, `recovery-executors`): for filters, never shown alone.
    pub kind: String,
    /// The sentence for the history (`executor 1 OOMKilled (exit 137)`), secrets scrubbed.
    pub message: String,
    /// When the backend says it happened (ms since the Unix epoch), if it says.
    pub at_ms: Option<i64>,
}

/// Reading the events failed (the backend unreachable): this round is skipped.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct EventsError {
    /// What failed and where (scrubbed of secrets).
    pub reason: String,
}

/// Capability: the events of a running job (see the module docs).
#[async_trait]
pub trait BackendEvents: Send + Sync {
    /// The events of `job` after `since` (all it can see when `None`), and the new cursor.
    async fn events(
        &self,
        job: &JobRef,
        since: Option<&EventCursor>,
    ) -> Result<(Vec<BackendEvent>, EventCursor), EventsError>;
}
