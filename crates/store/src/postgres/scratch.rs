//! Throwaway PostgreSQL databases for tests (this crate's and other crates').
//!
//! ```no_run
//! # async fn f() -> Result<(), tether_core::store::StoreError> {
//! use tether_store::postgres::scratch::ScratchDb;
//! let db = ScratchDb::create_from_env().await?; // TETHER_TEST_PG_ADMIN or the local default
//! let store = tether_store::open(db.url()).await?;
//! // ... test ...
//! db.drop_db().await; // or just let it go out of scope
//! # Ok(()) }
//! ```
//!
//! ## Guarantees
//! - Each [`ScratchDb`] is a fresh, uniquely named database (`tether_test_<random>`), so tests
//!   running in parallel never see each other's runs.
//! - It is dropped (with `WITH (FORCE)`, disconnecting leftover sessions) by
//!   [`ScratchDb::drop_db`], or best-effort when the value is dropped, even on panic.
//!
//! ## Caveats
//! - Dropping happens on a helper thread that blocks the dropping thread until done (bounded by
//!   the connect/statement timeouts); a test killed outright leaves the database behind.
//!   `DROP DATABASE ... WITH (FORCE)` needs PostgreSQL 13 or later.
use std::{
    hash::{BuildHasher, Hasher},
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use tether_core::store::StoreError;

use super::pool::map_err;
use crate::redact;

/// The admin URL used when `TETHER_TEST_PG_ADMIN` is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

const TIMEOUT: Duration = Duration::from_secs(20);

/// A throwaway database, dropped when this value is.
#[derive(Debug)]
pub struct ScratchDb {
    admin_url: String,
    name: String,
    url: String,
    dropped: bool,
}

/// A name no other test run will pick: pid, time and a per-process counter through the std
/// random hasher (no extra dependency for 64 random bits).
fn random_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    format!("tether_test_{:016x}", h.finish())
}

/// `url` with its database (path) replaced by `db`, keeping credentials and query.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    // Skip user-info (a password may contain '/'), then cut at the first '/'.
    let host_start = base[scheme_end..]
        .rfind('@')
        .map_or(scheme_end, |i| scheme_end + i + 1);
    let host_end = base[host_start..]
        .find('/')
        .map_or(base.len(), |i| host_start + i);
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn admin(admin_url: &str, op: &'static str) -> Result<tokio_postgres::Client, StoreError> {
    let location = redact(admin_url);
    let target = super::tls::target(admin_url, &location)?;
    super::pool::connect(&target.config, &target.tls, TIMEOUT, op, &location).await
}

async fn bounded<T>(
    op: &'static str,
    fut: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(r) => r.map_err(|e| map_err(op, e)),
        Err(_) => Err(StoreError::Unavailable {
            op,
            message: format!("no answer within {TIMEOUT:?}"),
        }),
    }
}

impl ScratchDb {
    /// Creates a fresh database through `admin_url` (a superuser or `CREATEDB` role).
    pub async fn create(admin_url: &str) -> Result<ScratchDb, StoreError> {
        let client = admin(admin_url, "scratch_create").await?;
        let name = random_name();
        // The name is ours (hex), so quoting it into the statement is safe.
        bounded(
            "scratch_create",
            client.batch_execute(&format!("CREATE DATABASE \"{name}\"")),
        )
        .await?;
        let url = with_database(admin_url, &name);
        Ok(ScratchDb {
            admin_url: admin_url.to_string(),
            name,
            url,
            dropped: false,
        })
    }

    /// [`ScratchDb::create`] with `TETHER_TEST_PG_ADMIN`, else [`DEFAULT_ADMIN_URL`].
    pub async fn create_from_env() -> Result<ScratchDb, StoreError> {
        let url =
            std::env::var("TETHER_TEST_PG_ADMIN").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string());
        Self::create(&url).await
    }

    /// The URL of the scratch database (with the admin URL's credentials).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database now. Best-effort: failures are reported on stderr, not returned.
    pub async fn drop_db(mut self) {
        self.dropped = true;
        if let Err(e) = drop_database(&self.admin_url, &self.name).await {
            eprintln!("tether: could not drop scratch database {}: {e}", self.name);
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    let client = admin(admin_url, "scratch_drop").await?;
    bounded(
        "scratch_drop",
        client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")),
    )
    .await
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop cannot await, and may run inside a runtime (where block_on would panic), so the
        // cleanup gets its own thread and runtime.
        let worker = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match rt {
                Ok(rt) => {
                    if let Err(e) = rt.block_on(drop_database(&admin_url, &name)) {
                        eprintln!("tether: could not drop scratch database {name}: {e}");
                    }
                }
                Err(e) => eprintln!("tether: could not drop scratch database {name}: {e}"),
            }
        });
        let _ = worker.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_the_database_keeping_credentials_and_options() {
        assert_eq!(
            with_database("postgres://u:p/w@h:5432/postgres", "x"),
            "postgres://u:p/w@h:5432/x"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(
            with_database("postgresql://u@h/db?sslmode=disable", "x"),
            "postgresql://u@h/x?sslmode=disable"
        );
        let a = random_name();
        assert!(a.starts_with("tether_test_") && a.len() <= 63 && a != random_name());
    }
}
