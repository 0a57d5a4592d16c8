//! [`ConnectorCache`]: connectors (and the engines over them) built from specs, shared by every
//! run with the same spec.
//!
//! ## Guarantees
//! - Ten thousand runs of one spec share one connector (one HTTP client and its connections,
//!   one cache of verified drivers) and one engine (bulk observation, metrics) instead of
//!   holding one each.
//! - Bounded: at most [`CAPACITY`] specs are kept; the least recently used is dropped first.
//!   A run driving a dropped connector keeps its own handle on it, so eviction never disturbs
//!   a run; the next run of that spec builds a new one.
use std::num::NonZeroUsize;

use lru::LruCache;
use tether_core::store::RunRecord;

use crate::context::BuildError;

/// What a worker shares between the runs of one spec.
#[derive(Clone)]
pub struct Shared {
    /// The spec's connector (with bulk observation where it has it).
    pub connector: std::sync::Arc<dyn tether_core::Connector>,
    /// The spec's policy.
    pub policy: tether_core::spec::Policy,
    /// The engine over `connector` (with metrics), for the runs that need nothing of their
    /// own (all but local ones, whose slots are held per run).
    pub engine: std::sync::Arc<tether_core::engine::Engine>,
    /// The spec's bulk observer, when its status goes through one: parked runs ask it
    /// without a task.
    pub endpoint: Option<crate::bulk::Endpoint>,
}

/// Specs kept: far more than a worker's distinct specs in flight (`--concurrency` bounds the
/// runs), few enough that a worker fed a million distinct specs over its life stays small.
pub const CAPACITY: NonZeroUsize = match NonZeroUsize::new(256) {
    Some(n) => n,
    None => unreachable!(),
};

/// Connectors (by default [`Shared`] engines) by (base directory, spec text), least recently
/// used dropped first.
pub struct ConnectorCache<T = Shared>(LruCache<String, T>);

impl<T: Clone> Default for ConnectorCache<T> {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl<T: Clone> ConnectorCache<T> {
    /// A cache keeping at most `capacity` specs.
    pub fn with_capacity(capacity: NonZeroUsize) -> Self {
        ConnectorCache(LruCache::new(capacity))
    }

    /// The connector of `record`'s spec, built by `build` if none is cached. A build error is
    /// returned and nothing is cached.
    pub fn get(
        &mut self,
        record: &RunRecord,
        build: impl FnOnce() -> Result<T, BuildError>,
    ) -> Result<T, BuildError> {
        // The same spec text resolves its relative paths against its submitter's directory.
        self.get_by(spec_id(record.base_dir.as_deref(), &record.spec), build)
    }

    fn get_by(
        &mut self,
        id: String,
        build: impl FnOnce() -> Result<T, BuildError>,
    ) -> Result<T, BuildError> {
        if let Some(hit) = self.0.get(&id) {
            return Ok(hit.clone());
        }
        let entry = build()?;
        self.0.put(id, entry.clone());
        Ok(entry)
    }

    /// Specs held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.len()
    }
}

fn spec_id(base_dir: Option<&str>, spec: &str) -> String {
    format!("{}\0{spec}", base_dir.unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use tether_connectors::{local::LocalFactory, registry::Registry};

    #[test]
    fn specs_share_a_connector_and_the_least_recently_used_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let registry = Registry::new().with(LocalFactory::new(tmp.path().join("jobs"), vec![]));
        let builds = std::cell::Cell::new(0);
        let mut cache = ConnectorCache::<Arc<dyn tether_core::Connector>>::with_capacity(
            NonZeroUsize::new(2).unwrap(),
        );
        let mut get = |spec: &str| {
            cache
                .get_by(spec_id(None, spec), || {
                    builds.set(builds.get() + 1);
                    let b = registry
                        .build("t.toml", spec, &Default::default())
                        .map_err(BuildError::from)?;
                    Ok(b.connector)
                })
                .unwrap()
        };
        let spec = |n: u32| format!("[job]\nkind = \"local\"\ncommand = [\"echo\", \"{n}\"]\n");
        let first = get(&spec(1));
        assert!(
            Arc::ptr_eq(&first, &get(&spec(1))),
            "same spec, same connector"
        );
        get(&spec(2));
        get(&spec(1)); // 1 is now the most recently used: 2 goes first.
        get(&spec(3));
        assert_eq!(builds.get(), 3);
        assert!(Arc::ptr_eq(&first, &get(&spec(1))), "kept: recently used");
        assert_eq!(builds.get(), 3);
        get(&spec(2));
        assert_eq!(builds.get(), 4, "2 was dropped and is built again");
        assert_eq!(cache.len(), 2, "bounded");
        assert_eq!(
            first.kind(),
            "local",
            "a dropped connector stays usable by the run holding it"
        );
    }
}
