//! The backend's events of the running job ([`crate::connector::BackendEvents`]) into the
//! run's history, as `backend-event` entries.
//!
//! ## Guarantees
//! - Read after each active poll and once before the outcome is recorded; written with the
//!   lease (fenced like every history write: a deposed owner writes none).
//! - Each event once per run generation: the connector's cursor covers this process, and the
//!   run's history (read at the first event of a generation) covers earlier owners, so a
//!   takeover or restart does not write an event twice.
//! - Never stops or fails the run: a failed read or history write skips the round (a lost
//!   lease still ends the drive, as everywhere).
use std::collections::HashSet;

use super::Driver;
use crate::{
    connector::EventCursor, engine::EngineError, history::HistoryKind, ids::Generation,
    journal::Phase,
};

/// What this drive already knows of one generation's events.
pub(in crate::engine) struct SeenEvents {
    generation: Generation,
    cursor: Option<EventCursor>,
    /// Messages the history has for this generation (`None`: not read yet).
    written: Option<HashSet<String>>,
}

impl Driver<'_> {
    /// Reads the job's new backend events and appends each one not yet in the history.
    pub(super) async fn record_events(&mut self) -> Result<(), EngineError> {
        let Some(source) = self.s.connector.events() else {
            return Ok(());
        };
        let Phase::Submitted {
            submission,
            external_id,
        } = &self.s.journal.phase
        else {
            return Ok(());
        };
        let generation = submission.generation;
        let job = self.job_ref(external_id.clone());
        if self.s.events.as_ref().map(|s| s.generation) != Some(generation) {
            self.s.events = Some(Box::new(SeenEvents {
                generation,
                cursor: None,
                written: None,
            }));
        }
        let since = self.s.events.as_ref().and_then(|s| s.cursor.clone());
        let Ok((events, cursor)) = source.events(&job, since.as_ref()).await else {
            return Ok(());
        };
        if !events.is_empty() && self.s.events.as_ref().is_some_and(|s| s.written.is_none()) {
            let Ok(history) = self.engine.store.history(&self.lease.key).await else {
                // Without the history the earlier owners' events are unknown: try next round.
                return Ok(());
            };
            let written = history
                .into_iter()
                .filter(|e| e.decision == HistoryKind::BackendEvent)
                .filter(|e| e.generation == Some(generation))
                .map(|e| e.reason)
                .collect();
            if let Some(s) = self.s.events.as_mut() {
                s.written = Some(written);
            }
        }
        for event in events {
            let seen = self.s.events.as_ref().and_then(|s| s.written.as_ref());
            if seen.is_some_and(|w| w.contains(&event.message)) {
                continue;
            }
            let mut entry = self.entry(
                HistoryKind::BackendEvent,
                Some(generation),
                event.message.clone(),
            );
            if let Some(at) = event.at_ms.filter(|at| *at > 0) {
                entry.at_ms = at;
            }
            match self.engine.store.append_history(self.lease, &entry).await {
                Ok(()) => {
                    if let Some(w) = self.s.events.as_mut().and_then(|s| s.written.as_mut()) {
                        w.insert(event.message);
                    }
                }
                Err(e) if e.is_lease_lost() => return Err(self.lost()),
                // Not written: the cursor stays, the event comes again next round.
                Err(_) => return Ok(()),
            }
        }
        if let Some(s) = self.s.events.as_mut() {
            s.cursor = Some(cursor);
        }
        Ok(())
    }
}
