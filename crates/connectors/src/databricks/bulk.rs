//! Bulk status ([`BulkStatus`]): `runs/list?active_only=true` pages through the workspace's
//! active runs (25 a page, Databricks' maximum), so a worker polling thousands of Databricks
//! runs sends one request per 25 active runs per tick instead of one `runs/get` per run (and
//! Databricks rate-limits `runs/get` per workspace).
//!
//! ## Guarantees
//! - A run in the list is judged as `status` judges it, but only when it is queued or running
//!   (`PENDING`, `QUEUED`, `BLOCKED`, `WAITING_FOR_RETRY`, `RUNNING`) and its identity is ours
//!   (the spec's `job_id`, or a name ending with ` [<tag>]`). Everything else is left to
//!   `status`: runs absent from the list (ended: their outcome and output are only in
//!   `runs/get`/`runs/get-output`), `TERMINATING` runs (about to end), identity mismatches.
//! - A failed page fails the whole call: unknown for every run it covers, never lost.
//!
//! ## Caveats
//! - The list holds every active run of the workspace, tether's or not; past [`MAX_PAGES`]
//!   pages the rest is judged per run.
use std::collections::HashMap;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use tether_core::{
    connector::{BulkAnswer, BulkError, BulkStatus, JobRef},
    observe::JobStatus,
};

use super::{state::Mapped, state::RunInfo, Databricks};

/// Runs per page (the most `runs/list` gives).
const LIMIT: u32 = 25;
/// At most this many pages per call.
pub const MAX_PAGES: usize = 400;

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    runs: Vec<RunInfo>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// The active runs of one listing: run id -> run.
struct Listed(HashMap<u64, RunInfo>);

#[async_trait]
impl BulkStatus for Databricks {
    fn endpoint(&self) -> String {
        // The credentials' variable names (never their values): runs are listed only with the
        // same credentials.
        format!(
            "databricks {} token_env={} oauth={}",
            self.host,
            self.job.token_env.as_deref().unwrap_or("-"),
            self.job
                .oauth
                .as_ref()
                .map_or("-", |o| o.client_id_env.as_str()),
        )
    }

    async fn fetch(&self, _jobs: &[&JobRef]) -> Result<BulkAnswer, BulkError> {
        let fail = |reason: String| BulkError {
            reason: self.clean(&reason),
        };
        let mut runs = HashMap::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut path = format!("runs/list?active_only=true&limit={LIMIT}");
            if let Some(t) = &token {
                let t =
                    percent_encoding::utf8_percent_encode(t, percent_encoding::NON_ALPHANUMERIC);
                path.push_str(&format!("&page_token={t}"));
            }
            let (url, answer) = self
                .call(Method::GET, &path, None)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let answer = self
                .http
                .success(&url, answer)
                .map_err(|e| fail(e.to_string()))?;
            let page: Page = serde_json::from_slice(&answer.body)
                .map_err(|e| fail(format!("{url} answered a body that is not a run list: {e}")))?;
            runs.extend(page.runs.into_iter().filter_map(|r| Some((r.run_id?, r))));
            match page
                .next_page_token
                .filter(|t| page.has_more && !t.is_empty())
            {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(BulkAnswer::new(Listed(runs)))
    }

    fn judge(&self, answer: &BulkAnswer, job: &JobRef) -> Option<JobStatus> {
        let Listed(runs) = answer.get::<Listed>()?;
        let run = runs.get(&job.external_id.0.parse::<u64>().ok()?)?;
        self.identity(run, job).ok()?;
        let page = run.run_page_url.clone().unwrap_or_default();
        match run.map("") {
            Mapped::Queued(s) => Some(JobStatus::queued(self.clean(format!("{s} {page}").trim()))),
            Mapped::Running(s) if s == "RUNNING" => {
                Some(JobStatus::running(self.clean(format!("{s} {page}").trim())))
            }
            _ => None,
        }
    }
}
