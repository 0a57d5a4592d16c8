//! The set-up most engine and worker tests start from: a fresh run for the scripted connector,
//! and its lease taken.
use std::time::Duration;

use tether_core::{
    ids::{OwnerId, RunKey},
    store::{Acquire, Lease, NewRun, RunRecord},
    Store,
};

/// A fresh, not queued run `key` for [`crate::ScriptedConnector`] (empty spec).
pub fn scripted_run(key: &RunKey) -> NewRun {
    NewRun {
        key: key.clone(),
        kind: "scripted".into(),
        spec: String::new(),
        spec_name: "-".into(),
        spec_hash: "h".into(),
        queued: false,
        base_dir: None,
    }
}

/// Takes `key`'s lease for `owner`; panics if another owner holds it.
pub async fn acquired(
    store: &dyn Store,
    key: &RunKey,
    owner: &str,
    ttl: Duration,
) -> (Lease, RunRecord) {
    match store
        .acquire(key, &OwnerId(owner.into()), ttl)
        .await
        .expect("acquire")
    {
        Acquire::Acquired(lease, record) => (lease, record),
        other => panic!("{key}: lease not acquired for {owner}: {other:?}"),
    }
}
