//! Helpers of the conformance properties (and of the store crate's other tests): run builders,
//! lease helpers. Panics and `anyhow` errors, as test code.
#![allow(missing_docs)]

use std::{sync::Arc, time::Duration};

use anyhow::bail;
use tether_core::{
    ids::{Epoch, ExternalId, Generation, OwnerId, RunKey, Tag},
    journal::{Shape, Submission},
    store::{Acquire, Created, HistoryEntry, Lease, NewRun, RunRecord},
    Store,
};

pub fn key(s: &str) -> RunKey {
    RunKey::new(s).expect("valid test key")
}

pub fn owner(s: &str) -> OwnerId {
    OwnerId(s.to_string())
}

pub fn new_run(k: &str, queued: bool) -> NewRun {
    NewRun {
        key: key(k),
        kind: "local".into(),
        spec: format!("[job]\nkind = \"local\"\ncommand = [\"echo\", \"{k}\"]\n"),
        spec_name: format!("{k}.toml"),
        spec_hash: format!("hash-{k}"),
        queued,
        base_dir: None,
    }
}

pub async fn create(store: &Arc<dyn Store>, k: &str) -> anyhow::Result<RunRecord> {
    match store.create_run(&new_run(k, false)).await? {
        Created::New(r) => Ok(r),
        Created::Existing(_) => bail!("run {k} already existed"),
    }
}

pub const LONG: Duration = Duration::from_secs(600);
/// A lease that expires almost at once (tests sleep `SHORT * 2` to see it expired).
#[allow(dead_code)]
pub const SHORT: Duration = Duration::from_millis(300);

pub async fn acquire(
    store: &Arc<dyn Store>,
    k: &str,
    o: &str,
    ttl: Duration,
) -> anyhow::Result<Lease> {
    match store.acquire(&key(k), &owner(o), ttl).await? {
        Acquire::Acquired(lease, rec) => {
            assert_eq!(
                rec.epoch, lease.epoch,
                "record returned with the lease shows the new epoch"
            );
            assert_eq!(rec.owner.as_ref(), Some(&lease.owner));
            Ok(lease)
        }
        Acquire::Held(r) => bail!(
            "expected to acquire {k}, held by {:?} (epoch {})",
            r.owner,
            r.epoch
        ),
    }
}

pub fn submission(k: &str, g: u32) -> Submission {
    Submission {
        generation: Generation(g),
        tag: Tag::derive(
            &tether_core::ids::StoreId::new("testst0r").unwrap(),
            &key(k),
            Generation(g),
        ),
        shape: Shape::Normal,
    }
}

pub fn entry(epoch: Epoch, g: Option<u32>, decision: &str, reason: &str) -> HistoryEntry {
    HistoryEntry {
        at_ms: 0,
        epoch,
        generation: g.map(Generation),
        decision: decision.into(),
        reason: reason.into(),
    }
}

pub fn ext(s: &str) -> ExternalId {
    ExternalId(s.to_string())
}
