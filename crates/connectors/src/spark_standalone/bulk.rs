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
//! - A listing is kept only while a caller uses it: at 100,000 drivers it is tens of MiB, and a
//!   worker kept the last one (and a second index of it) between its ticks.
use std::sync::{
    atomic::{AtomicU64, AtomicUsize, Ordering},
    Arc, Weak,
};

use async_trait::async_trait;
use tether_core::{
    connector::{BulkAnswer, BulkError, BulkStatus, JobRef},
    observe::JobStatus,
};

use super::{
    rest::{DriverInfo, MasterState},
    state::DriverState,
    SparkStandalone, KIND,
};

/// One `/json/`, as the bulk answer (judged through its id index).
struct Listed(Arc<Snapshot>);

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

    async fn fetch(&self, _jobs: &[&JobRef]) -> Result<BulkAnswer, BulkError> {
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
        Ok(BulkAnswer::new(Listed(listing)))
    }

    fn judge(&self, answer: &BulkAnswer, job: &JobRef) -> Option<JobStatus> {
        let id = job.external_id.0.as_str();
        if let Some(done) = self.finals.lock().expect("cache lock").get(id) {
            return Some(done.clone());
        }
        let Listed(listing) = answer.get::<Listed>()?;
        let state = &listing.driver(id)?.state;
        // Asked under the lock, nothing copied: every run on the endpoint is judged each tick.
        let (read, ours) = match self.tags.lock().expect("cache lock").get(id) {
            Some(seen) => (true, seen.is(job.submission.tag.as_str())),
            None => (false, false),
        };
        let status = match state {
            // A queued driver has no log to check: ours unless a read showed otherwise, as in
            // `status`.
            DriverState::Submitted if ours || !read => {
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
    /// The places in [`MasterState::drivers`] of every driver it lists, in the order of their
    /// ids (4 bytes a driver: a map of the ids took ~80).
    by_id: Vec<u32>,
    /// Find-by-tag's candidates: drivers of this spec's main class whose launch command was not
    /// read when first asked, newest first.
    pub(super) unread: std::sync::OnceLock<Vec<DriverInfo>>,
}

impl Snapshot {
    fn new(state: MasterState) -> Snapshot {
        let mut by_id: Vec<u32> = (0..state.drivers().count())
            .filter_map(|i| u32::try_from(i).ok())
            .collect();
        by_id.sort_unstable_by(|a, b| id_at(&state, *a).cmp(id_at(&state, *b)));
        Snapshot {
            by_id,
            state,
            unread: std::sync::OnceLock::new(),
        }
    }

    /// The driver with this id, if listed.
    pub(super) fn driver(&self, id: &str) -> Option<&DriverInfo> {
        let at = self
            .by_id
            .binary_search_by(|i| id_at(&self.state, *i).cmp(id))
            .ok()?;
        self.state.driver(self.by_id[at] as usize)
    }
}

fn id_at(state: &MasterState, i: u32) -> &str {
    state.driver(i as usize).map_or("", |d| &d.id)
}

/// A listing, or why the master could not list.
type MasterListing = Result<Arc<Snapshot>, String>;

/// Fresh `/json/` listings shared by concurrent callers.
#[derive(Debug, Default)]
pub(super) struct Listing {
    /// Listings started so far.
    started: AtomicU64,
    /// Callers waiting for [`Listing::last`].
    waiting: AtomicUsize,
    /// The latest listing and its number; held while one is fetched.
    last: tokio::sync::Mutex<Option<(u64, Result<Kept, String>)>>,
}

/// The latest listing, held only while callers wait for it: at 100,000 drivers it is tens of
/// MiB, and between two ticks nobody needs it (a later caller fetches afresh: it must not be
/// older than its call).
#[derive(Debug)]
enum Kept {
    /// Callers are waiting: they share it.
    Strong(Arc<Snapshot>),
    /// Nobody was waiting: shared only while its last user still holds it.
    Weak(Weak<Snapshot>),
}

impl Listing {
    /// A listing fetched after this call began: the one in flight is awaited, not used.
    pub(super) async fn get(&self, rest: &super::Rest) -> MasterListing {
        let want = self.started.load(Ordering::SeqCst) + 1;
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut last = self.last.lock().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        if let Some((n, answer)) = &mut *last {
            if *n >= want {
                let shared = match answer {
                    Err(reason) => return Err(reason.clone()),
                    Ok(Kept::Strong(s)) => Some(s.clone()),
                    Ok(Kept::Weak(w)) => w.upgrade(),
                };
                if let Some(shared) = shared {
                    *answer = Ok(self.kept(&shared));
                    return Ok(shared);
                }
            }
        }
        let n = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = rest
            .master_state()
            .await
            .map(|state| Arc::new(Snapshot::new(state)))
            .map_err(|e| e.to_string());
        *last = Some((
            n,
            answer.as_ref().map(|s| self.kept(s)).map_err(Clone::clone),
        ));
        answer
    }

    /// How to keep `listing`: strongly while callers wait for the lock (a burst of submits
    /// shares one listing), weakly once none does.
    fn kept(&self, listing: &Arc<Snapshot>) -> Kept {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            Kept::Strong(listing.clone())
        } else {
            Kept::Weak(Arc::downgrade(listing))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_finds_every_listed_driver_by_id() {
        let state = MasterState::parse(
            r#"{"status":"ALIVE","activedrivers":[{"id":"driver-b"},{"id":"driver-c"}],
                "completeddrivers":[{"id":"driver-a"},{"id":"driver-d"}]}"#,
        )
        .expect("parses");
        let s = Snapshot::new(state);
        for id in ["driver-a", "driver-b", "driver-c", "driver-d"] {
            assert_eq!(s.driver(id).map(|d| &*d.id), Some(id));
        }
        assert!(s.driver("driver-0").is_none() && s.driver("driver-e").is_none());
    }
}
