//! Diagnostics through `tracing`: a span per run, events for takeovers and decisions.
//!
//! The front end chooses where they go (the CLI: stderr, filtered by `TETHER_LOG`, `warn` by
//! default). Nothing here prints: lines meant for a person go through the front end's hooks.
//!
//! ## Guarantees
//! - Every run driven by this library runs inside a `run` span carrying `key`, `epoch`,
//!   `owner` and (once known) `generation`, so every event of the engine's store and connector
//!   calls below it can be told apart by run.
//! - Events never carry a spec's text or a token: only keys, ids, epochs, decisions and reasons
//!   (reasons are what the history stores already).
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tether_core::{
    engine::{Checkpoint, Event, Observer},
    ids::{Epoch, Generation, OwnerId, RunKey},
    Decision,
};
use tracing::{field, Span};

/// The span a run is driven in. `generation` is filled in by [`Traced`] as decisions arrive.
pub fn run_span(key: &RunKey, epoch: Epoch, owner: &OwnerId) -> Span {
    tracing::info_span!(
        "run",
        key = %key,
        epoch = epoch.0,
        owner = %owner,
        generation = field::Empty
    )
}

/// An [`Observer`] that turns engine events into tracing events, then hands them on.
pub struct Traced {
    inner: Arc<dyn Observer>,
    /// The generation last recorded in each run's span: recording a field again appends it
    /// (`generation=1 generation=1 …` on every line of the log), so it is recorded on change.
    recorded: Mutex<HashMap<RunKey, Generation>>,
}

impl Traced {
    /// Wraps `inner`, which still sees every event and checkpoint.
    pub fn new(inner: Arc<dyn Observer>) -> Traced {
        Traced {
            inner,
            recorded: Mutex::default(),
        }
    }
}

impl Observer for Traced {
    fn event(&self, key: &RunKey, event: &Event) {
        match event {
            Event::Acquired { epoch } => {
                Span::current().record("epoch", epoch.0);
                tracing::info!(%key, epoch = epoch.0, "lease acquired");
            }
            Event::Following { record } => {
                tracing::debug!(
                    %key,
                    epoch = record.epoch.0,
                    owner = record.owner.as_ref().map(|o| o.0.as_str()),
                    "following the live owner"
                );
            }
            Event::Decided {
                generation,
                external_id,
                decision,
                reason,
            } => {
                let mut recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
                if matches!(**decision, Decision::Finish(_) | Decision::Return(_)) {
                    recorded.remove(key);
                } else if let Some(g) = generation {
                    if recorded.insert(key.clone(), *g) != Some(*g) {
                        Span::current().record("generation", g.0);
                    }
                }
                drop(recorded);
                let id = external_id.as_ref().map(|i| i.0.as_str());
                let g = generation.map(|g| g.0);
                if matches!(
                    **decision,
                    Decision::Poll { .. } | Decision::Observe | Decision::AskAgain { .. }
                ) {
                    tracing::debug!(%key, generation = g, external_id = id, decision = %decision.name(), %reason, "decided");
                } else {
                    tracing::info!(%key, generation = g, external_id = id, decision = %decision.name(), %reason, "decided");
                }
            }
        }
        self.inner.event(key, event);
    }

    fn checkpoint(&self, key: &RunKey, point: Checkpoint) {
        tracing::debug!(%key, checkpoint = point.name(), "checkpoint");
        self.inner.checkpoint(key, point);
    }
}
