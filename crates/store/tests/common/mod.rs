//! Shared helpers of the store tests: a harness per backend, run builders, lease helpers.
#![allow(dead_code, missing_docs)]

use std::{sync::Arc, time::Duration};

use anyhow::{bail, Context};
use tether_core::{
    ids::{Epoch, ExternalId, Generation, OwnerId, RunKey, Tag},
    journal::{Shape, Submission},
    store::{Acquire, Created, HistoryEntry, Lease, NewRun, RunRecord},
    Store,
};

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

/// Runs each property once on SQLite (`sqlite::*`) and once on PostgreSQL (`postgres::*`).
#[allow(unused_macros)]
macro_rules! conformance {
    ($($prop:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $prop() -> anyhow::Result<()> {
                    super::$prop(super::Harness::sqlite()?).await
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $prop() -> anyhow::Result<()> {
                    super::$prop(super::Harness::postgres().await?).await
                }
            )*
        }
    };
}
