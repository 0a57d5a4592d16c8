//! The store conformance suite (`tether_testkit::store_conformance`) on [`MemoryStore`]: the
//! in-memory store must keep the promises the SQL stores keep, or the engine tests that use it
//! prove nothing.
use std::sync::Arc;

use tether_core::Store;
use tether_testkit::{store_conformance::StoreHarness, MemoryStore};

/// One shared in-memory store: every "instance" is a handle on the same state, as every
/// instance of a SQL store is a connection to the same database.
struct Memory(Arc<MemoryStore>);

#[async_trait::async_trait]
impl StoreHarness for Memory {
    async fn store(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(self.0.clone())
    }
    fn is_stale_generation(
        &self,
        source: &(dyn std::error::Error + Send + Sync + 'static),
    ) -> bool {
        // MemoryStore says it in words (it has no error type of its own for it).
        source
            .to_string()
            .contains("is not at an intent of generation")
    }
}

tether_testkit::store_conformance_tests!(Memory(Arc::new(MemoryStore::new())));
