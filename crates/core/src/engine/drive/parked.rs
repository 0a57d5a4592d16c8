//! A run between two polls, kept without a task ([`Parked`]), and how far a parking drive went
//! ([`Stepped`]).
use std::time::Instant;

use super::State;
use crate::{
    connector::JobRef,
    engine::Finish,
    ids::Generation,
    journal::Phase,
    observe::{JobStatus, Observed},
};

/// A run between two polls, held without a task: its drive's state and when its next status
/// is due. Resume it ([`Engine::resume`]) with the engine and lease it was driven with.
pub struct Parked {
    pub(super) state: Box<State>,
    pub(super) due: Instant,
}

impl Parked {
    /// When the run's next status is due.
    pub fn due(&self) -> Instant {
        self.due
    }
    /// Whether it must be resumed before it is due: its lease was lost, or a cancel was
    /// requested that its drive has not seen yet.
    pub fn interrupted(&self) -> bool {
        let signals = &self.state.signals;
        signals.is_lost() || (signals.cancel_requested() && !self.state.journal.cancel_requested)
    }
    /// The job whose status it waits for.
    pub fn job(&self) -> Option<JobRef> {
        match &self.state.journal.phase {
            Phase::Submitted {
                submission,
                external_id,
            } => Some(JobRef {
                external_id: external_id.clone(),
                submission: submission.clone(),
            }),
            _ => None,
        }
    }
    /// Gives it the status it waits for (asked by its owner since it was due): resumed, it
    /// decides on that instead of asking again.
    pub fn set_status(&mut self, status: JobStatus) {
        self.state.observed = Observed::status(status);
    }
    /// The generation it polls.
    pub fn generation(&self) -> Option<Generation> {
        match &self.state.journal.phase {
            Phase::Intent { submission } | Phase::Submitted { submission, .. } => {
                Some(submission.generation)
            }
            _ => None,
        }
    }
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parked")
            .field("key", &self.state.journal.key)
            .field("generation", &self.generation())
            .field("due", &self.due)
            .finish()
    }
}

/// How far a parking drive went ([`Engine::drive_parking`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Stepped {
    /// The drive ended.
    Finished(Finish),
    /// The run waits for its next status with nothing else to do: keep it, resume it when due.
    Parked(Parked),
}
