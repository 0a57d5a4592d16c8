//! Bulk status ([`BulkStatus`]): `GET /batches?from=&size=` pages through every batch Livy
//! tracks, so a worker polling thousands of Livy runs sends a few requests per tick (one per
//! [`BULK_PAGE`] batches) instead of one per batch.
//!
//! ## Guarantees
//! - A batch in the list is judged as `status` judges it, but only when it is active
//!   (`not_started`, `starting`, `recovering` → queued; `running`, `busy`, `idle`,
//!   `shutting_down` → running) and named with the run's tag. Everything else is left to
//!   `status`: batches absent from the list (ended and forgotten, or Livy restarted — `status`
//!   then asks YARN, see [`super::yarn`]), ended batches (classified from their log), batches
//!   under another name (a reused id), runs adopted on YARN (`yarn:` ids).
//! - A failed page fails the whole call: unknown for every run it covers, never lost.
//!
//! ## Caveats
//! - A batch deleted between two pages shifts the next page: a batch may then be missed, and
//!   falls back to its own `status` (never a wrong answer, one request more).
use std::collections::HashMap;

use async_trait::async_trait;
use tether_core::{
    connector::{BulkAnswer, BulkError, BulkStatus, JobRef},
    observe::JobStatus,
};

use super::{yarn::adopted, Batch, Livy, KIND};
use crate::text;

/// Batches asked per page of a bulk call.
pub const BULK_PAGE: u64 = 200;
/// At most this many pages per call (a Livy tracking more is judged per run beyond it).
const MAX_PAGES: u64 = 500;

/// The batches of one listing: id -> batch.
struct Listed(HashMap<String, Batch>);

#[async_trait]
impl BulkStatus for Livy {
    fn endpoint(&self) -> String {
        // The credentials' variable names (never their values): a spec without credentials
        // must not read the answer fetched with them.
        format!(
            "{KIND} {} token_env={} user={}",
            self.api.batches_url(),
            self.job.token_env.as_deref().unwrap_or("-"),
            self.job.user.as_deref().unwrap_or("-"),
        )
    }

    async fn fetch(&self, _jobs: &[&JobRef]) -> Result<BulkAnswer, BulkError> {
        let mut batches = HashMap::new();
        let mut from = 0;
        for _ in 0..MAX_PAGES {
            let page = self.api.list(from, BULK_PAGE).await.map_err(|e| {
                let s = self.secrets();
                let s: Vec<&str> = s.iter().map(String::as_str).collect();
                BulkError {
                    reason: text::clean(&e.to_string(), &s),
                }
            })?;
            let n = page.sessions.len() as u64;
            batches.extend(page.sessions.into_iter().map(|b| (b.id.clone(), b)));
            from += n;
            if n == 0 || from >= page.total {
                break;
            }
        }
        Ok(BulkAnswer::new(Listed(batches)))
    }

    fn judge(&self, answer: &BulkAnswer, job: &JobRef) -> Option<JobStatus> {
        let id = job.external_id.0.as_str();
        if adopted(id).is_some() {
            return None;
        }
        let Listed(batches) = answer.get::<Listed>()?;
        let b = batches.get(id)?;
        if b.name.as_deref() != Some(job.submission.tag.as_str()) {
            return None;
        }
        let st = Self::active_state(b)?;
        let s = self.secrets();
        let s: Vec<&str> = s.iter().map(String::as_str).collect();
        Some(text::clean_status(st, &s))
    }
}
