//! The human explanation of each decision, as written to the run's history.
use super::Driver;
use crate::{
    decide::{Decision, SubmitReason},
    journal::{Outcome, Shape},
};

impl Driver<'_> {
    pub(super) fn explain(&self, d: &Decision) -> String {
        let id = self
            .external_id()
            .map(|i| i.to_string())
            .unwrap_or_default();
        match d {
            Decision::Backoff { submission, reason, after } => {
                let next = Decision::Submit {
                    submission: submission.clone(),
                    reason: *reason,
                    delay: *after,
                };
                format!("waiting {}s before {}", after.as_secs(), self.explain(&next))
            }
            Decision::Submit { submission, reason, .. } => {
                let why = match reason {
                    SubmitReason::Fresh => "first submission".to_string(),
                    SubmitReason::IntentNotFound => {
                        "the intent had no recorded id and no job carries its tag: submitting the same generation again".into()
                    }
                    SubmitReason::IntentUnverifiable => {
                        "the intent had no recorded id and the connector cannot search (policy: resubmit)".into()
                    }
                    SubmitReason::IntentIdempotent => {
                        "the intent had no recorded id; the backend submits idempotently, so the same tag again returns its job".into()
                    }
                    SubmitReason::AfterFailure(class) => format!("job {id} failed ({})", class.as_str()),
                    SubmitReason::AfterLost => format!("job {id} was lost"),
                };
                let mut s = format!(
                    "submit generation {} with tag {} ({} shape): {why}",
                    submission.generation,
                    submission.tag,
                    submission.shape.as_str()
                );
                if submission.shape == Shape::Recovery {
                    match self.s.connector.recovery() {
                        Some(r) => s.push_str(&format!("; recovery mode: {}", r.describe())),
                        None => s.push_str("; recovery mode (the connector has no recovery shape of its own)"),
                    }
                }
                s
            }
            Decision::LookUp { tag } => format!("intent without a recorded id: searching the backend for tag {tag}"),
            Decision::Adopt { external_id } => format!("found job {external_id} carrying our tag: adopting it"),
            Decision::Observe => format!("asking the backend about job {id}"),
            Decision::Poll { state, detail } => {
                format!("job {id} is {} ({detail}): polling", state.as_str())
            }
            Decision::AskAgain { after, reason } => format!(
                "status unknown ({reason}): asking again in {}s; never resubmitting on an unknown status",
                after.as_secs_f32().ceil()
            ),
            Decision::GiveUp { reason } => format!("{reason}; the run stays resumable: run it again later"),
            Decision::Cancel { external_id } => format!("cancel requested: killing job {external_id}"),
            Decision::Finish(o) => match o {
                Outcome::Succeeded { .. } => format!("job {id} succeeded"),
                Outcome::Failed { message, .. } => format!("finished: {}: {message}", o.label()),
                Outcome::Cancelled { message } => format!("finished: cancelled: {message}"),
            },
            Decision::Return(o) => format!("outcome already recorded ({})", o.label()),
        }
    }
}
