//! Bulk status ([`BulkStatus`]): one `GET /ws/v1/cluster/apps?states=NEW,...,RUNNING` lists
//! every application the ResourceManager has not ended, so a worker polling thousands of YARN
//! runs asks once per tick instead of once per application.
//!
//! ## Guarantees
//! - An application in the list is judged as `status` judges it (`state::status_of`): queued
//!   or running, but only when it carries the run's tag; everything else is left to `status`:
//!   applications absent from the list (ended since, or unknown to the RM), and tag mismatches
//!   (`status` words them). An ended application is thus read once, by `status`, which
//!   classifies its failure from the diagnostics.
//! - A failed list is unknown for every run it covers (the fleet's observer), never lost.
//!
//! ## Caveats
//! - The list holds every unfinished application of the cluster, tether's or not (YARN filters
//!   by tag only with the tags named, which would put every run's tag in one URL).
use std::collections::HashMap;

use async_trait::async_trait;
use tether_core::{
    connector::{BulkAnswer, BulkError, BulkStatus, JobRef},
    observe::JobStatus,
};

use super::{state, state::AppReport, SparkYarn, KIND};

/// The states of an application YARN has not ended.
const ACTIVE: &[&str] = &["NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING"];

/// The unfinished applications of one list: id -> report.
struct Listed(HashMap<String, AppReport>);

#[async_trait]
impl BulkStatus for SparkYarn {
    fn endpoint(&self) -> String {
        format!("{KIND} {}", self.rm.base())
    }

    async fn fetch(&self, _jobs: &[&JobRef]) -> Result<BulkAnswer, BulkError> {
        let apps = self
            .rm
            .apps_in_states(ACTIVE)
            .await
            .map_err(|e| BulkError {
                reason: crate::text::clean(&e.to_string(), &[]),
            })?;
        Ok(BulkAnswer::new(Listed(
            apps.into_iter().map(|a| (a.id.clone(), a)).collect(),
        )))
    }

    fn judge(&self, answer: &BulkAnswer, job: &JobRef) -> Option<JobStatus> {
        let Listed(apps) = answer.get::<Listed>()?;
        let app = apps.get(job.external_id.0.as_str())?;
        match state::status_of(
            app,
            job.submission.tag.as_str(),
            self.job.main_class.as_deref(),
        ) {
            st @ JobStatus::Active { .. } => Some(crate::text::clean_status(st, &[])),
            _ => None,
        }
    }
}
