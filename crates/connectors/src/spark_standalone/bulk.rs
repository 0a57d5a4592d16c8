//! Bulk status ([`BulkStatus`]): one `GET /json/` of the master lists every driver it keeps,
//! so a worker polling thousands of drivers asks once per tick instead of once per driver; and
//! the same list, fetched fresh but shared by concurrent callers ([`Listing`]), serves
//! find-by-tag, so a burst of submits reads it once instead of once per submit.
//!
//! ## Guarantees
//! - A driver is judged from the list exactly as `status` judges it from the REST answer:
//!   `SUBMITTED` queued, `RUNNING`/`RELAUNCHING` running, `UNKNOWN` or a state this version
//!   does not know unknown; but only when its identity is settled (its tag is cached and ours,
//!   or it is queued and has no log to check yet). Everything else is left to `status`:
//!   drivers absent from the list (never listed, forgotten), ended drivers (their failure is
//!   classified from the log and their cause is only in the REST answer), drivers whose tag
//!   is not read yet or is not ours (`status` words the mismatch).
//! - A master that is not `ALIVE` (standby, recovering) fails the bulk call: unknown for all.
//! - A listing is never older than the request for it: callers arriving while a `/json/` is in
//!   flight wait for it and then share the next one.
use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use tether_core::{
    connector::{BulkAnswer, BulkError, BulkStatus, JobRef},
    observe::JobStatus,
};

use super::{rest::MasterState, state::DriverState, SparkStandalone, KIND};

/// The drivers of one `/json/`: id -> state.
struct Listed(HashMap<String, DriverState>);

#[async_trait]
impl BulkStatus for SparkStandalone {
    fn endpoint(&self) -> String {
        // The token variable's name (never its value): a spec without the token must not
        // fetch for one that needs it.
        format!(
            "{KIND} {} token_env={}",
            self.rest.ui_url(),
            self.job.token_env.as_deref().unwrap_or("-")
        )
    }

    async fn fetch(&self, _jobs: &[JobRef]) -> Result<BulkAnswer, BulkError> {
        let listing = self
            .listing
            .get(&self.rest)
            .await
            .map_err(|reason| BulkError {
                reason: self.clean(&reason),
            })?;
        let state = &listing.state;
        if state.status != "ALIVE" {
            return Err(BulkError {
                reason: self.clean(&format!(
                    "the master at {} is {}, not ALIVE (standby or recovering): ask again later",
                    self.rest.ui_url(),
                    state.status
                )),
            });
        }
        self.logs.remember_workers(state);
        Ok(BulkAnswer::new(Listed(
            state
                .drivers()
                .map(|d| (d.id.clone(), d.state.clone()))
                .collect(),
        )))
    }

    fn judge(&self, answer: &BulkAnswer, job: &JobRef) -> Option<JobStatus> {
        let id = job.external_id.0.as_str();
        if let Some(done) = self.finals.lock().expect("cache lock").get(id) {
            return Some(done.clone());
        }
        let Listed(drivers) = answer.get::<Listed>()?;
        let state = drivers.get(id)?;
        let seen = self.tags.lock().expect("cache lock").get(id).cloned();
        let ours = match &seen {
            Some(seen) => seen.is(job.submission.tag.as_str()),
            None => false,
        };
        let status = match state {
            // A queued driver has no log to check: ours unless a read showed otherwise, as in
            // `status`.
            DriverState::Submitted if ours || seen.is_none() => {
                JobStatus::queued("SUBMITTED (queued for a worker)")
            }
            DriverState::Running | DriverState::Relaunching if ours => {
                JobStatus::running(state.to_string())
            }
            DriverState::Unknown => JobStatus::Unknown {
                reason: format!("driver {id} is UNKNOWN to the master (it is recovering)"),
            },
            DriverState::Other(other) => JobStatus::Unknown {
                reason: format!("driver {id} has an unexpected state {other:?}"),
            },
            _ => return None,
        };
        Some(self.clean_status(status))
    }
}

/// One `/json/` and what is worked out from it once for every caller sharing it.
#[derive(Debug)]
pub(super) struct Snapshot {
    /// The master's answer.
    pub(super) state: MasterState,
    /// Every driver id it lists.
    pub(super) ids: std::collections::HashSet<String>,
    /// Find-by-tag's candidates: drivers of this spec's main class whose launch command was not
    /// read when first asked, newest first.
    pub(super) unread: std::sync::OnceLock<Vec<super::rest::DriverInfo>>,
}

/// A listing, or why the master could not list.
type MasterListing = Result<Arc<Snapshot>, String>;

/// Fresh `/json/` listings shared by concurrent callers.
#[derive(Debug, Default)]
pub(super) struct Listing {
    /// Listings started so far.
    started: std::sync::atomic::AtomicU64,
    /// The latest listing and its number; held while one is fetched.
    last: tokio::sync::Mutex<Option<(u64, MasterListing)>>,
}

impl Listing {
    /// A listing fetched after this call began: the one in flight is awaited, not used.
    pub(super) async fn get(&self, rest: &super::Rest) -> MasterListing {
        use std::sync::atomic::Ordering;
        let want = self.started.load(Ordering::SeqCst) + 1;
        let mut last = self.last.lock().await;
        if let Some((n, answer)) = &*last {
            if *n >= want {
                return answer.clone();
            }
        }
        let n = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = rest
            .master_state()
            .await
            .map(|state| {
                Arc::new(Snapshot {
                    ids: state.drivers().map(|d| d.id.clone()).collect(),
                    state,
                    unread: std::sync::OnceLock::new(),
                })
            })
            .map_err(|e| e.to_string());
        *last = Some((n, answer.clone()));
        answer
    }
}
