//! Shared helpers of the store tests: a harness per backend, run builders, lease helpers.
#![allow(dead_code, missing_docs)]

use std::sync::Arc;

use anyhow::Context;
use tether_core::Store;

/// A backend under test: opens any number of independent store instances on one database
/// (each instance stands for a separate process) and cleans the database up afterwards.
pub struct Harness {
    pub backend: &'static str,
    location: String,
    _dir: Option<tempfile::TempDir>,
    #[cfg(feature = "postgres")]
    scratch: Option<tether_store::postgres::scratch::ScratchDb>,
}

impl Harness {
    pub fn sqlite() -> anyhow::Result<Harness> {
        let dir = tempfile::tempdir()?;
        let location = format!(
            "sqlite://{}",
            dir.path().join("state").join("tether.db").display()
        );
        Ok(Harness {
            backend: "sqlite",
            location,
            _dir: Some(dir),
            #[cfg(feature = "postgres")]
            scratch: None,
        })
    }

    #[cfg(feature = "postgres")]
    pub async fn postgres() -> anyhow::Result<Harness> {
        let scratch = tether_store::postgres::scratch::ScratchDb::create_from_env().await?;
        Ok(Harness {
            backend: "postgres",
            location: scratch.url().to_string(),
            _dir: None,
            scratch: Some(scratch),
        })
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// A new, independent store instance (own connection(s)) on the harness's database.
    pub async fn store(&self) -> anyhow::Result<Arc<dyn Store>> {
        tether_store::open(&self.location)
            .await
            .with_context(|| format!("open {}", self.location))
    }

    /// Runs raw SQL on the harness's database, behind the store's back (to damage rows the
    /// way a newer version or a bad disk would).
    pub async fn exec(&self, sql: &str) -> anyhow::Result<()> {
        if let Some(path) = self.location.strip_prefix("sqlite://") {
            let conn = rusqlite::Connection::open(path)?;
            conn.execute_batch(sql)?;
            return Ok(());
        }
        #[cfg(feature = "postgres")]
        {
            let (client, conn) =
                tokio_postgres::connect(&self.location, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            client.batch_execute(sql).await?;
            Ok(())
        }
        #[cfg(not(feature = "postgres"))]
        anyhow::bail!("no raw access to {}", self.location)
    }

    /// Drops the scratch database now (Drop would do it too, blocking a thread).
    pub async fn finish(mut self) {
        #[cfg(feature = "postgres")]
        if let Some(s) = self.scratch.take() {
            s.drop_db().await;
        }
        let _ = &mut self;
    }
}

// The run builders and lease helpers are the conformance suite's (one copy, in the test kit).
pub use tether_testkit::store_conformance::helpers::*;

#[async_trait::async_trait]
impl tether_testkit::store_conformance::StoreHarness for Harness {
    async fn store(&self) -> anyhow::Result<Arc<dyn Store>> {
        Harness::store(self).await
    }
    fn is_stale_generation(
        &self,
        source: &(dyn std::error::Error + Send + Sync + 'static),
    ) -> bool {
        source.is::<tether_store::StaleGeneration>()
    }
    async fn finish(self) {
        Harness::finish(self).await
    }
}

/// Runs each property once on SQLite (`sqlite::*`) and once on PostgreSQL (`postgres::*`):
/// the generic ones of the test kit's suite, then the SQL stores' own `$prop`s.
#[allow(unused_macros)]
macro_rules! conformance {
    ($($prop:ident),* $(,)?) => {
        mod sqlite {
            tether_testkit::store_conformance_tests!(super::Harness::sqlite()?);
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $prop() -> anyhow::Result<()> {
                    super::$prop(super::Harness::sqlite()?).await
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            tether_testkit::store_conformance_tests!(super::Harness::postgres().await?);
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $prop() -> anyhow::Result<()> {
                    super::$prop(super::Harness::postgres().await?).await
                }
            )*
        }
    };
}
