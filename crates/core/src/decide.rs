//! The resume decision: a pure function over (journal, observed backend status, policy,
//! clocks, now).
//!
//! | journal | backend says | clocks | decision |
//! |---|---|---|---|
//! | empty | - | | submit generation 1 |
//! | intent, no id | (not asked) | | look the tag up |
//! | intent, no id | job with this tag found | | adopt it: record its id, poll |
//! | intent, no id | no job with this tag | | submit the same generation again (same tag) |
//! | intent, no id | connector cannot search | | policy: fail (default) or submit again |
//! | intent, no id | connector submits idempotently | | submit again with the same tag |
//! | id | (not asked) | | ask for the status |
//! | id | active (queued or running) | | (re)connect and poll |
//! | id | succeeded | | finish with its result |
//! | id | failed, OOM | | gen+1 in the recovery shape, if the budget allows, else fail |
//! | id | failed, other | | gen+1 if the budget allows, else fail |
//! | id | not found / identity mismatch | | lost: gen+1 (policy can say fail) |
//! | any | unknown (status, look-up, cancel) | unknown for < `status_timeout` | ask again with backoff (growing with the outage) |
//! | any | unknown (status, look-up, cancel) | unknown for >= `status_timeout` | give up (exit 4, resumable) |
//! | intent | unknown (submission failed) | failing for >= `status_timeout` | give up; a look-up in between does not restart this clock |
//! | any | definite status or look-up | | `unknown_since` cleared |
//! | id | any | | `submit_failing_since` cleared (a submission got its id) |
//! | any | a submit with a delay | backoff not served | back off (wait `delay`), mark it served |
//! | any | a submit with a delay | backoff served | submit, clear the mark |
//! | finished | - | | return the recorded outcome without calling the backend |
//!
//! With a cancel request: nothing submitted → cancelled; an active job → cancel it;
//! a job that ended meanwhile → its real outcome (succeeded) or cancelled.
//!
//! ## Time
//! `decide` reads no clock: the driver passes `now`, a monotonic time since its drive started,
//! and keeps the [`Clocks`] that `decide` returns for the next call.
//!
//! ## Guarantees
//! - No row resubmits on an unknown answer.
//! - A resubmission never exceeds `max_submissions` generations; retrying the same generation
//!   after an absent lookup reuses its tag and does not count against the budget.
//! - A backoff is waited out once per pending submission: after it, the same decision submits.
use std::time::Duration;

use crate::{
    history::HistoryKind,
    ids::{ExternalId, Generation, Tag},
    journal::{Journal, Outcome, Phase, Shape, Submission},
    observe::{ActiveState, Asked, FailureClass, JobStatus, Lookup, Observed},
    spec::{IntentPolicy, LostPolicy, Policy},
};

/// Why a submission is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitReason {
    /// Nothing was submitted before.
    Fresh,
    /// An intent was recorded but the backend has no job with its tag.
    IntentNotFound,
    /// An intent was recorded and the connector cannot search; the policy allows resubmitting.
    IntentUnverifiable,
    /// An intent was recorded and the backend submits idempotently: the same tag again returns
    /// the job the intent may have started, never a second one.
    IntentIdempotent,
    /// The previous generation failed.
    AfterFailure(FailureClass),
    /// The previous generation's job was lost.
    AfterLost,
}

/// What the engine does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Record an intent and submit this submission (waiting `delay` first).
    Submit {
        /// What to submit.
        submission: Submission,
        /// Which row of the table led here (fresh, retry after a failure, …).
        reason: SubmitReason,
        /// Wait before submitting (backoff after a failure).
        delay: Duration,
    },
    /// Wait `after` before the submission (backoff after a failure or loss), then decide again:
    /// a cancel may arrive meanwhile. The next decision submits without waiting again.
    Backoff {
        /// What will be submitted.
        submission: Submission,
        /// Which row of the table led here (fresh, retry after a failure, …).
        reason: SubmitReason,
        /// How long to wait.
        after: Duration,
    },
    /// Search the backend for the job carrying the intent's tag.
    LookUp {
        /// The tag to search.
        tag: Tag,
    },
    /// A job with our tag exists: record its id, then poll.
    Adopt {
        /// Its id.
        external_id: ExternalId,
    },
    /// Ask for the status of the recorded job.
    Observe,
    /// The job is active: wait `poll_interval`, then ask again.
    Poll {
        /// Queued or running.
        state: ActiveState,
        /// The backend's words.
        detail: String,
    },
    /// The backend could not answer: wait, then ask again. Never resubmits.
    AskAgain {
        /// How long to wait.
        after: Duration,
        /// Why the status is unknown.
        reason: String,
    },
    /// The status stayed unknown beyond `status_timeout`: stop, leave the run resumable.
    GiveUp {
        /// What was asked, the last unknown answer, and for how long none was definite.
        reason: String,
    },
    /// Kill the recorded job (a cancel was requested), then keep observing.
    Cancel {
        /// The job to kill.
        external_id: ExternalId,
    },
    /// Record this outcome and end the run.
    Finish(Outcome),
    /// The journal already holds the outcome: return it, do not call the backend.
    Return(Outcome),
}

impl Decision {
    /// The kind of its history entry.
    pub fn kind(&self) -> HistoryKind {
        match self {
            Decision::Submit {
                reason: SubmitReason::Fresh,
                ..
            } => HistoryKind::Submit,
            Decision::Submit {
                reason:
                    SubmitReason::IntentNotFound
                    | SubmitReason::IntentUnverifiable
                    | SubmitReason::IntentIdempotent,
                ..
            } => HistoryKind::ResubmitSameGeneration,
            Decision::Submit { .. } => HistoryKind::Resubmit,
            Decision::Backoff { .. } => HistoryKind::Backoff,
            Decision::LookUp { .. } => HistoryKind::LookUpTag,
            Decision::Adopt { .. } => HistoryKind::Adopt,
            Decision::Observe => HistoryKind::Observe,
            Decision::Poll { .. } => HistoryKind::Poll,
            Decision::AskAgain { .. } => HistoryKind::AskAgain,
            Decision::GiveUp { .. } => HistoryKind::GiveUpUnknown,
            Decision::Cancel { .. } => HistoryKind::Cancel,
            Decision::Finish(_) => HistoryKind::Finish,
            Decision::Return(_) => HistoryKind::ReturnRecorded,
        }
    }
    /// Same as [`Decision::kind`] (prints as its text), for existing callers.
    pub fn name(&self) -> HistoryKind {
        self.kind()
    }
}

/// The driver's clocks and marks that decisions depend on. `decide` takes them and returns the
/// next ones; the driver only stores them. Times are monotonic durations since the drive began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clocks {
    /// Since when status, look-up and cancel calls have had no definite answer.
    pub unknown_since: Option<Duration>,
    /// Since when submissions fail without a definite answer. Kept apart from `unknown_since`:
    /// the tag look-ups in between answer definitely ("absent") and must not restart the clock,
    /// or a backend that refuses connections to submit but answers look-ups loops forever.
    pub submit_failing_since: Option<Duration>,
    /// The backoff of the pending submission has been waited out.
    pub delay_served: bool,
}

/// Decides the next step. Pure: same inputs, same answer; no clock, no I/O. `now` is the
/// driver's monotonic time (since its drive began); the returned clocks go into the next call.
pub fn decide(
    journal: &Journal,
    observed: &Observed,
    policy: &Policy,
    clocks: Clocks,
    now: Duration,
) -> (Decision, Clocks) {
    let mut next = clocks;
    if matches!(journal.phase, Phase::Submitted { .. }) {
        next.submit_failing_since = None;
    }
    if observed.unknown().is_none() && matches!(observed, Observed::Status(_) | Observed::Lookup(_))
    {
        next.unknown_since = None;
    }
    let decision = match (&journal.phase, observed.unknown()) {
        (Phase::Finished { .. }, _) | (_, None) => settle(journal, observed, policy),
        // An unknown answer is handled the same way whatever the (unfinished) journal says.
        (_, Some((asked, reason))) => {
            let since = match asked {
                Asked::Submit => &mut next.submit_failing_since,
                _ => &mut next.unknown_since,
            };
            let unknown_for = now.saturating_sub(*since.get_or_insert(now));
            unknown(asked, reason, unknown_for, policy)
        }
    };
    let decision = match decision {
        Decision::Submit {
            submission,
            reason,
            delay,
        } if !delay.is_zero() && !clocks.delay_served => {
            next.delay_served = true;
            Decision::Backoff {
                submission,
                reason,
                after: delay,
            }
        }
        submit @ Decision::Submit { .. } => {
            next.delay_served = false;
            submit
        }
        other => other,
    };
    (decision, next)
}

/// The table's rows for a definite answer (or none yet), and for a finished journal.
fn settle(journal: &Journal, observed: &Observed, policy: &Policy) -> Decision {
    match (&journal.phase, observed) {
        (Phase::Finished { outcome }, _) => Decision::Return(outcome.clone()),

        (Phase::Empty, _) if journal.cancel_requested => {
            cancelled("cancelled before anything was submitted")
        }
        (Phase::Empty, _) => {
            // A rerun continues the numbering: new generation, new tag, never the old job.
            let generation = journal
                .after_generation
                .map_or(Generation::FIRST, Generation::next);
            Decision::Submit {
                submission: Submission {
                    generation,
                    tag: Tag::derive(&journal.store, &journal.key, generation),
                    shape: Shape::Normal,
                },
                reason: SubmitReason::Fresh,
                delay: Duration::ZERO,
            }
        }

        (Phase::Intent { .. }, Observed::Lookup(Lookup::Found { external_id })) => {
            Decision::Adopt {
                external_id: external_id.clone(),
            }
        }
        (Phase::Intent { .. }, Observed::Lookup(Lookup::Absent)) if journal.cancel_requested => {
            cancelled("cancelled; the intended job was never started")
        }
        (Phase::Intent { submission }, Observed::Lookup(Lookup::Absent)) => Decision::Submit {
            submission: submission.clone(),
            reason: SubmitReason::IntentNotFound,
            delay: Duration::ZERO,
        },
        // Even with a cancel request: submitting again yields the id of the job the intent may
        // have started (or a job that is then cancelled), never a second one.
        (Phase::Intent { submission }, Observed::Lookup(Lookup::Idempotent)) => Decision::Submit {
            submission: submission.clone(),
            reason: SubmitReason::IntentIdempotent,
            delay: Duration::ZERO,
        },
        (Phase::Intent { .. }, Observed::Lookup(Lookup::Unsupported))
            if journal.cancel_requested =>
        {
            cancelled("cancelled; the connector cannot tell whether the intended job started")
        }
        (Phase::Intent { submission }, Observed::Lookup(Lookup::Unsupported)) => {
            match policy.on_unverifiable_intent {
                IntentPolicy::Resubmit => Decision::Submit {
                    submission: submission.clone(),
                    reason: SubmitReason::IntentUnverifiable,
                    delay: Duration::ZERO,
                },
                IntentPolicy::Fail => Decision::Finish(unverifiable(submission)),
            }
        }
        // The submit itself answered that the job of this intent existed and is gone (a
        // Databricks idempotency token whose run was deleted): lost, as for a recorded id.
        (Phase::Intent { .. }, Observed::Status(JobStatus::NotFound { .. }))
            if journal.cancel_requested =>
        {
            cancelled("cancelled; the intended job is gone from the backend")
        }
        (Phase::Intent { submission }, Observed::Status(JobStatus::NotFound { detail })) => lost(
            journal,
            submission,
            format!(
                "the job of generation {} is gone: {detail}",
                submission.generation
            ),
            policy,
        ),
        // Not asked yet (or a status answer, or an unknown one, which `decide` handled).
        (Phase::Intent { submission }, _) => Decision::LookUp {
            tag: submission.tag.clone(),
        },

        (Phase::Submitted { external_id, .. }, Observed::Status(JobStatus::Active { .. }))
            if journal.cancel_requested =>
        {
            Decision::Cancel {
                external_id: external_id.clone(),
            }
        }
        (Phase::Submitted { .. }, Observed::Status(JobStatus::Active { state, detail })) => {
            Decision::Poll {
                state: *state,
                detail: detail.clone(),
            }
        }
        (Phase::Submitted { .. }, Observed::Status(JobStatus::Succeeded { result })) => {
            Decision::Finish(Outcome::Succeeded {
                result: result.clone(),
            })
        }
        (
            Phase::Submitted { .. },
            Observed::Status(
                JobStatus::Failed { .. } | JobStatus::NotFound { .. } | JobStatus::Mismatch { .. },
            ),
        ) if journal.cancel_requested => cancelled("cancelled by request"),
        (
            Phase::Submitted { submission, .. },
            Observed::Status(JobStatus::Failed { class, message }),
        ) => {
            let shape = if *class == FailureClass::Oom && policy.recovery {
                Shape::Recovery
            } else {
                submission.shape
            };
            next_generation(
                journal,
                submission,
                shape,
                SubmitReason::AfterFailure(*class),
                policy,
                || Outcome::Failed {
                    class: *class,
                    message: message.clone(),
                },
            )
        }
        (
            Phase::Submitted {
                submission,
                external_id,
            },
            Observed::Status(status @ (JobStatus::NotFound { .. } | JobStatus::Mismatch { .. })),
        ) => {
            let message = match status {
                JobStatus::Mismatch { found } => {
                    format!(
                        "job {external_id} is no longer ours (it carries {found}, not {})",
                        submission.tag
                    )
                }
                _ => format!("the backend no longer knows job {external_id}"),
            };
            lost(journal, submission, message, policy)
        }
        // Not asked yet (or a look-up answer, or an unknown one, which `decide` handled).
        (Phase::Submitted { .. }, _) => Decision::Observe,
    }
}

/// A lost job: the next generation if the policy and budget allow, else the run fails as lost.
fn lost(journal: &Journal, submission: &Submission, message: String, policy: &Policy) -> Decision {
    match policy.on_lost {
        LostPolicy::Fail => Decision::Finish(Outcome::Failed {
            class: FailureClass::Lost,
            message,
        }),
        LostPolicy::Resubmit => next_generation(
            journal,
            submission,
            submission.shape,
            SubmitReason::AfterLost,
            policy,
            || Outcome::Failed {
                class: FailureClass::Lost,
                message: message.clone(),
            },
        ),
    }
}

fn unknown(asked: Asked, reason: &str, unknown_for: Duration, policy: &Policy) -> Decision {
    if unknown_for >= policy.status_timeout {
        return Decision::GiveUp {
            reason: format!(
                "{} unanswered for {}s (status_timeout {}s): {reason}",
                asked.as_str(),
                unknown_for.as_secs(),
                policy.status_timeout.as_secs()
            ),
        };
    }
    // Grows with the length of the outage, bounded by backoff and backoff_max: no counter needed.
    let after = (unknown_for / 2).clamp(policy.backoff, policy.backoff_max.max(policy.backoff));
    Decision::AskAgain {
        after,
        reason: reason.to_string(),
    }
}

fn cancelled(message: &str) -> Decision {
    Decision::Finish(Outcome::Cancelled {
        message: message.into(),
    })
}

/// Why a run fails when an intent has no id and the connector cannot search by tag.
fn unverifiable(submission: &Submission) -> Outcome {
    Outcome::Failed {
        class: FailureClass::Unverifiable,
        message: format!(
            "a previous owner crashed between recording the intent and the job id of \
             generation {}, and this connector cannot search by tag {}: check the backend by \
             hand, then rerun with a new key (or set on_unverifiable_intent = \"resubmit\")",
            submission.generation, submission.tag
        ),
    }
}

fn next_generation(
    journal: &Journal,
    current: &Submission,
    shape: Shape,
    reason: SubmitReason,
    policy: &Policy,
    exhausted: impl FnOnce() -> Outcome,
) -> Decision {
    // The budget is per instance: a rerun starts counting after the earlier instances.
    let used = current.generation.0 - journal.after_generation.map_or(0, |g| g.0);
    if used >= policy.max_submissions {
        return Decision::Finish(exhausted());
    }
    let generation = current.generation.next();
    // Later submissions wait longer: backoff * 2^(submission-2), bounded.
    let factor = 1u32 << (used.saturating_sub(1)).min(16);
    let delay = policy
        .backoff
        .saturating_mul(factor)
        .min(policy.backoff_max.max(policy.backoff));
    Decision::Submit {
        submission: Submission {
            generation,
            tag: Tag::derive(&journal.store, &journal.key, generation),
            shape,
        },
        reason,
        delay,
    }
}

#[cfg(test)]
mod tests;
