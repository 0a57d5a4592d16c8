//! Find-by-tag: which driver the master lists carries a tag (read from each candidate's launch
//! command on its worker), and runs the spec's main class and arguments.
use std::time::Duration;

use async_trait::async_trait;
use tether_core::{
    connector::FindByTag,
    ids::{ExternalId, Tag},
    observe::Lookup,
};

use super::{logs::LogReadError, SparkStandalone};

#[async_trait]
impl FindByTag for SparkStandalone {
    async fn find_by_tag(&self, tag: &Tag) -> Lookup {
        match self.find_raw(tag).await {
            Lookup::Unknown { reason } => Lookup::Unknown {
                reason: self.clean(&reason),
            },
            other => other,
        }
    }
}

impl SparkStandalone {
    pub(super) async fn find_raw(&self, tag: &Tag) -> Lookup {
        // A driver is queued (no worker, so no log to read its tag from) for moments only when
        // the cluster has room: wait a little for it rather than answer `unknown` at once.
        for attempt in 0..QUEUED_RETRIES {
            match self.scan_for_tag(tag).await {
                Scan::Decided(lookup) => return lookup,
                Scan::Queued(reason) if attempt + 1 == QUEUED_RETRIES => {
                    return Lookup::Unknown { reason }
                }
                Scan::Queued(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
        Lookup::Unknown {
            reason: "unreachable".into(),
        }
    }
}

/// Attempts of a tag search while a candidate driver is still queued.
const QUEUED_RETRIES: u32 = 5;

enum Scan {
    Decided(Lookup),
    /// Only drivers not launched yet (queued, or on their way to a worker) stand between us
    /// and an answer.
    Queued(String),
}

impl SparkStandalone {
    async fn scan_for_tag(&self, tag: &Tag) -> Scan {
        let known = self.tags.lock().expect("cache lock").known(tag.as_str());
        // Fresh, but shared with the submits and bulk polls asking at the same time.
        let listing = match self.listing.get(&self.rest).await {
            Ok(s) => s,
            Err(reason) => return Scan::Decided(Lookup::Unknown { reason }),
        };
        let state = &listing.state;
        self.logs.remember_workers(state);
        if let Some(id) = known {
            // Submitted through this connector: found if the master still lists it.
            if listing.driver(&id.0).is_some() {
                return Scan::Decided(Lookup::Found { external_id: id });
            }
        }
        // Drivers whose launch command was read already are not ours (or `known` had found
        // them): only the others need a look, worked out once per listing, not per submit.
        let candidates = listing.unread.get_or_init(|| {
            let tags = self.tags.lock().expect("cache lock");
            let mut unread: Vec<_> = state
                .drivers()
                .filter(|d| *d.mainclass == *self.job.main_class && !tags.contains(&d.id))
                .cloned()
                .collect();
            // Newest first: a crash right after the POST leaves our driver among the latest.
            unread.sort_by(|a, b| b.id.cmp(&a.id));
            unread
        });
        let mut unreadable: Option<String> = None;
        let mut queued: Option<String> = None;
        for d in candidates {
            let terminal = d.state.is_terminal();
            let cached = self.tags.lock().expect("cache lock").get(&d.id).cloned();
            let read = match cached {
                Some(t) => Ok(t),
                None if d.worker.is_empty() || &*d.worker == "None" => {
                    Err(LogReadError::NotStarted(d.id.to_string()))
                }
                None => match state.worker_ui(&d.worker) {
                    Some(w) => self.seen_of(&d.id, &w.webuiaddress).await,
                    None => Err(LogReadError::Missing(format!(
                        "worker {} of driver {} is gone",
                        d.worker, d.id
                    ))),
                },
            };
            match read {
                // Our tag on another application (another store's run) is not ours: skipped.
                Ok(seen) if seen.is(tag.as_str()) => {
                    return Scan::Decided(Lookup::Found {
                        external_id: ExternalId(d.id.to_string()),
                    })
                }
                Ok(_) => {}
                // An ended driver whose log is gone, or that never reached a worker (killed while
                // queued), cannot be checked, and stays so forever.
                Err(LogReadError::Missing(_) | LogReadError::NotStarted(_)) if terminal => {}
                // The master calls a driver RUNNING as soon as it sends it to a worker, before
                // the worker has written its log: missing for now, not for good.
                Err(e @ (LogReadError::NotStarted(_) | LogReadError::Missing(_))) => {
                    queued.get_or_insert_with(|| {
                        format!("cannot read the tag of driver {}: {e}", d.id)
                    });
                }
                Err(e) => {
                    unreadable.get_or_insert_with(|| {
                        format!("cannot read the tag of driver {}: {e}", d.id)
                    });
                }
            }
        }
        match (unreadable, queued) {
            (Some(reason), _) => Scan::Decided(Lookup::Unknown { reason }),
            (None, Some(reason)) => Scan::Queued(reason),
            (None, None) => Scan::Decided(Lookup::Absent),
        }
    }
}
