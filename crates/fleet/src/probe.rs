//! Asking the backend about a run nobody drives (`tether status`), read only.
//!
//! ## Guarantees
//! - Read only: no lease is taken, nothing is written to the store and the job is not touched;
//!   the answer is shown, not recorded (the next worker or `tether run` records the outcome).
//! - A host-bound job (local) is asked about only on its own host: elsewhere the answer is
//!   `None` rather than a guess.
use tether_core::{
    connector::JobRef,
    journal::Phase,
    observe::JobStatus,
    store::{RunRecord, SubmissionRecord},
};

use crate::Ctx;

/// The backend's status of `run`'s current job, when nobody drives the run (no live lease), it
/// is not finished and its job has an external id; `None` otherwise or when it cannot be asked.
pub async fn unattended_status(
    ctx: &Ctx,
    run: &RunRecord,
    submissions: &[SubmissionRecord],
) -> Option<JobStatus> {
    if run.lease_alive || !matches!(run.journal.phase, Phase::Submitted { .. }) {
        return None;
    }
    let (generation, _) = run.current();
    let sub = submissions
        .iter()
        .find(|s| Some(s.submission.generation) == generation)?;
    let job = JobRef {
        external_id: sub.external_id.clone()?,
        submission: sub.submission.clone(),
    };
    let built = ctx.connector_for(run).ok()?;
    let connector = match (built.connector.host_bound(), &run.placement) {
        (Some(hb), Some(placement)) => hb.rebind(placement).ok()?,
        _ => built.connector,
    };
    Some(connector.status(&job).await)
}
