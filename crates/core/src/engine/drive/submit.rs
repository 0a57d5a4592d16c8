//! Intent, submit, id record and the outcome record: the writes around the one create.
use std::{sync::Arc, time::Duration};

use super::Driver;
use crate::{
    connector::{Fenced, SubmitError, SubmitRequest},
    decide::{Decision, SubmitReason},
    engine::{fence::LeaseFence, Checkpoint, EngineError, Finish},
    history::HistoryKind,
    ids::ExternalId,
    journal::{Journal, Outcome, Phase, Submission},
    observe::{Asked, FailureClass, JobStatus, Observed},
    store::{HistoryEntry, RunRecord},
};

impl Driver<'_> {
    /// Intent, submit, id record. Returns a finish when the backend rejected the job.
    pub(super) async fn submit(
        &mut self,
        submission: Submission,
        why: SubmitReason,
        reason: String,
    ) -> Result<Option<Finish>, EngineError> {
        let name = Decision::Submit {
            submission: submission.clone(),
            reason: why,
            delay: Duration::ZERO,
        }
        .kind();
        let entry = self.entry(name.clone(), Some(submission.generation), reason);
        // Why the previous generation ended, stored on it with the intent of this one.
        let previous = match (&self.s.observed, &why) {
            (
                Observed::Status(JobStatus::Failed { class, message }),
                SubmitReason::AfterFailure(_),
            ) => Some(Outcome::Failed {
                class: *class,
                message: message.clone(),
            }),
            (Observed::Status(JobStatus::NotFound { detail }), SubmitReason::AfterLost) => {
                Some(Outcome::Failed {
                    class: FailureClass::Lost,
                    message: format!("the backend lost the job: {detail}"),
                })
            }
            (_, SubmitReason::AfterLost) => Some(Outcome::Failed {
                class: FailureClass::Lost,
                message: "the backend lost the job".into(),
            }),
            _ => None,
        };
        // The intent is the fenced write right before acting: a frozen ex-owner stops here.
        let placement = self.s.placement.as_deref().filter(|_| !self.s.placed);
        self.write("the intent", || {
            self.engine.store.record_intent(
                self.lease,
                &submission,
                previous.as_ref(),
                placement,
                &entry,
            )
        })
        .await?;
        self.s.placed |= placement.is_some();
        self.s.last_noted = Some(name);
        self.s.journal.phase = Phase::Intent {
            submission: submission.clone(),
        };
        self.engine
            .observer
            .checkpoint(&self.lease.key, Checkpoint::AfterIntent);
        // The connector confirms the lease through this fence right before it creates the job,
        // after any look-up or wait of its own: the intent above may be seconds old by then.
        let fence = Arc::new(LeaseFence {
            store: self.engine.store.clone(),
            lease: self.lease.clone(),
            ttl: self.engine.leases.ttl,
            signals: self.s.signals.clone(),
        });
        let request = SubmitRequest::new(self.lease.key.clone(), submission.clone(), fence);
        match self.s.connector.submit(&request).await {
            Ok(external_id) => {
                self.engine
                    .observer
                    .checkpoint(&self.lease.key, Checkpoint::AfterSubmit);
                let entry = self.entry(
                    HistoryKind::Submitted,
                    Some(submission.generation),
                    format!(
                        "backend accepted generation {} as job {external_id}",
                        submission.generation
                    ),
                );
                self.record_id(
                    "the job id",
                    HistoryKind::Submitted,
                    submission,
                    external_id,
                    entry,
                )
                .await?;
                self.engine
                    .observer
                    .checkpoint(&self.lease.key, Checkpoint::AfterSubmitted);
                Ok(None)
            }
            Err(SubmitError::Rejected { message }) => {
                let outcome = Outcome::Failed {
                    class: FailureClass::Rejected,
                    message,
                };
                let entry = self.entry(
                    HistoryKind::Finish,
                    Some(submission.generation),
                    format!("finished: {}", outcome.label()),
                );
                self.finish(outcome, entry).await.map(Some)
            }
            Err(SubmitError::Fenced(Fenced::LeaseLost)) => Err(self.lost()),
            Err(SubmitError::Lost { message }) => {
                self.s.observed = Observed::Status(JobStatus::NotFound { detail: message });
                Ok(None)
            }
            // The job may or may not exist: the next round looks it up by tag, never blindly resubmits.
            Err(e) => {
                self.s.observed = Observed::Unknown {
                    asked: Asked::Submit,
                    reason: e.to_string(),
                };
                Ok(None)
            }
        }
    }

    /// Records the outcome. A write retried after an outage may find that its first attempt
    /// did commit (the run is finished and the lease cleared): that is success, not a lost lease.
    pub(super) async fn finish(
        &mut self,
        outcome: Outcome,
        entry: HistoryEntry,
    ) -> Result<Finish, EngineError> {
        match self
            .write("the outcome", || {
                self.engine
                    .store
                    .record_finished(self.lease, &outcome, &entry)
            })
            .await
        {
            Ok(()) => Ok(Finish::Outcome(outcome)),
            Err(EngineError::LeaseLost { key, epoch }) => {
                match self.engine.store.get_run(&key).await {
                    Ok(Some(RunRecord {
                        journal:
                            Journal {
                                phase: Phase::Finished { outcome: recorded },
                                ..
                            },
                        epoch: e,
                        ..
                    })) if e == epoch => Ok(Finish::Outcome(recorded)),
                    _ => Err(EngineError::LeaseLost { key, epoch }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Records the backend id of the intended submission (fenced) and moves the journal on:
    /// after a submit, and when a look-up found the job by its tag (adopt).
    pub(super) async fn record_id(
        &mut self,
        what: &'static str,
        name: HistoryKind,
        submission: Submission,
        external_id: ExternalId,
        entry: HistoryEntry,
    ) -> Result<(), EngineError> {
        self.write(what, || {
            self.engine.store.record_submitted(
                self.lease,
                submission.generation,
                &external_id,
                &entry,
            )
        })
        .await?;
        self.s.last_noted = Some(name);
        self.s.journal.phase = Phase::Submitted {
            submission,
            external_id,
        };
        self.s.observed = Observed::Nothing;
        Ok(())
    }
}
