//! Listing runs, page by page, for `tether ls` and the HTTP server: the one place both call,
//! so the two never disagree on filters, order or paging.
//!
//! ## Guarantees
//! - [`list`] reads one page with one store statement ([`Store::list_summaries`]): no spec
//!   body, no submissions, whatever the number of runs.
//! - `next` is the opaque cursor of the following page (`RunCursor`'s text), `null` on the
//!   last; passing it back (parsed with `str::parse::<RunCursor>`) continues where the page
//!   ended, unaffected by runs created meanwhile.
//!
//! ## Caveats
//! - [`list_with_submissions`] (what `ls -o json` prints, the documented `list` shape) adds
//!   one submissions read per listed run: bound it with a limit on large stores.
use serde::Serialize;
use tether_core::{
    ids::{ExternalId, OwnerId, RunKey},
    placement::Placement,
    store::{RunCursor, RunQuery, RunSummary, StoreError},
    Store,
};

use super::{iso_time, RunView, SCHEMA_VERSION};

/// One run in a listing: what [`RunView`] says, under the same field names, without the
/// submissions and the times derived from them (`started_at`, `ended_at`, `duration_ms`).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummaryView {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The run key.
    pub key: RunKey,
    /// The backend kind.
    pub kind: String,
    /// The spec's file name as given at submission.
    pub spec_name: String,
    /// `queued`, `running`, `succeeded`, `failed`, `cancelled`.
    pub state: &'static str,
    /// When `state` is `failed`: why (`oom`, `killed`, `lost`, …), else `null`.
    pub failure_class: Option<&'static str>,
    /// The outcome's explanation once failed or cancelled, else `null`.
    pub message: Option<String>,
    /// Whether a cancel was requested.
    pub cancel_requested: bool,
    /// The current (or else the last) generation.
    pub generation: Option<u32>,
    /// The current (or else the last) job's external id.
    pub external_id: Option<ExternalId>,
    /// The fencing epoch.
    pub epoch: i64,
    /// Who holds (or last held) the lease.
    pub owner: Option<OwnerId>,
    /// Whether that lease is still alive.
    pub lease_alive: bool,
    /// When the lease expires, ms since the Unix epoch (store clock); `null` without a lease.
    pub lease_expires_at_ms: Option<i64>,
    /// The same, ISO 8601 UTC.
    pub lease_expires_at: Option<String>,
    /// Enqueued for workers (`tether submit`).
    pub queued: bool,
    /// The host a host-bound job lives on.
    pub placement: Option<Placement>,
    /// Creation time, ms since the Unix epoch.
    pub created_at_ms: i64,
    /// Creation time, ISO 8601 UTC.
    pub created_at: String,
    /// Last change, ms since the Unix epoch (listings are ordered by it).
    pub updated_at_ms: i64,
    /// Last change, ISO 8601 UTC.
    pub updated_at: String,
}

impl RunSummaryView {
    /// The view of one listed run: [`RunView::from_summary`]'s fields (one derivation of
    /// state, outcome and times for both views), without the submissions and what derives
    /// from them, plus the lease expiry.
    pub fn new(run: &RunSummary) -> RunSummaryView {
        let v = RunView::from_summary(run, &[]);
        RunSummaryView {
            schema_version: v.schema_version,
            key: v.key,
            kind: v.kind,
            spec_name: v.spec_name,
            state: v.state,
            failure_class: v.failure_class,
            message: v.message,
            cancel_requested: v.cancel_requested,
            generation: v.generation,
            external_id: v.external_id,
            epoch: v.epoch,
            owner: v.owner,
            lease_alive: v.lease_alive,
            lease_expires_at_ms: run.lease_expires_at_ms,
            lease_expires_at: run.lease_expires_at_ms.map(iso_time),
            queued: v.queued,
            placement: v.placement,
            created_at_ms: v.created_at_ms,
            created_at: v.created_at,
            updated_at_ms: v.updated_at_ms,
            updated_at: v.updated_at,
        }
    }
}

/// One page of a listing (JSON schema `page`).
#[derive(Debug, Clone, Serialize)]
pub struct RunListView {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The runs, most recently changed first.
    pub runs: Vec<RunSummaryView>,
    /// The cursor of the next page, `null` on the last one.
    pub next: Option<String>,
    /// The same cursor, parsed (not serialised: `next` is its text).
    #[serde(skip)]
    pub next_cursor: Option<RunCursor>,
}

/// One page of the runs `query` admits, newest first (one store statement).
pub async fn list(store: &dyn Store, query: &RunQuery) -> Result<RunListView, StoreError> {
    let page = store.list_summaries(query).await?;
    Ok(RunListView {
        schema_version: SCHEMA_VERSION,
        runs: page.runs.iter().map(RunSummaryView::new).collect(),
        next: page.next.as_ref().map(ToString::to_string),
        next_cursor: page.next,
    })
}

/// The same page as [`list`], each run as a full [`RunView`] with its submissions (one more
/// read per run), and the next page's cursor.
pub async fn list_with_submissions(
    store: &dyn Store,
    query: &RunQuery,
) -> Result<(Vec<RunView>, Option<RunCursor>), StoreError> {
    let page = store.list_summaries(query).await?;
    let mut views = Vec::with_capacity(page.runs.len());
    for run in &page.runs {
        let subs = store.submissions(&run.key).await?;
        views.push(RunView::from_summary(run, &subs));
    }
    Ok((views, page.next))
}
