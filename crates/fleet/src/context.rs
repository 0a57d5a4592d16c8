//! The context of every operation: the settings, the connector registry, opening the store.
//!
//! ## Guarantees
//! - A busy (SQLite write lock) or unreachable (PostgreSQL) store is retried for the lease TTL
//!   (at least a minute) before [`OpenError`] is returned; the front end is told once through
//!   [`Ctx::notices`] so a person waiting sees why.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tether_connectors::{
    local::LocalFactory,
    registry::{BuildContext, Built, Registry},
};
use tether_core::{ids::OwnerId, spec::SpecError, store::StoreError, Store};
use tether_store::{Access, OpenOptions};

use crate::config::Config;

/// A line for the person waiting (a busy store being retried): the CLI prints it on stderr,
/// a server may log it. Never carries a secret (store locations are redacted).
pub type Notices = Arc<dyn Fn(&str) + Send + Sync>;

/// The state store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct OpenError {
    /// Why (a transient error here means the store stayed busy or unreachable too long).
    #[from]
    pub source: StoreError,
}

/// A spec could not be turned into a connector here.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct BuildError {
    /// The underlying error, kept as the source.
    #[from]
    pub source: SpecError,
}

/// What every operation needs.
pub struct Ctx {
    /// The settings.
    pub config: Config,
    /// What connectors are built with.
    pub build: BuildContext,
    /// The kinds this binary builds: the built-in ones, local with this config's jobs dir.
    pub registry: Registry,
    /// Where lines for the person waiting go.
    pub notices: Notices,
}

impl Ctx {
    /// A context whose local jobs are supervised by `supervisor` (a command line: the `tether`
    /// binary and `__supervise`; it must outlive this process, so it is a program, not a task).
    /// Notices are dropped until [`Ctx::with_notices`].
    pub fn new(config: Config, supervisor: Vec<String>) -> Ctx {
        let build = BuildContext {
            token_env_allow: config.token_env_allow.clone(),
            base_dir: None,
        };
        let registry =
            Registry::builtin().with(LocalFactory::new(config.jobs_dir.clone(), supervisor));
        Ctx {
            config,
            build,
            registry,
            notices: Arc::new(|_| {}),
        }
    }

    /// Sends lines for the person waiting to `notices`.
    pub fn with_notices(mut self, notices: Notices) -> Ctx {
        self.notices = notices;
        self
    }

    /// Opens the state store for a write command (creating and migrating it if needed).
    pub async fn store(&self) -> Result<Arc<dyn Store>, OpenError> {
        self.open(Access::Write).await
    }

    /// Opens an existing store for a read command: creates nothing, migrates nothing.
    pub async fn store_existing(&self) -> Result<Arc<dyn Store>, OpenError> {
        self.open(Access::ReadExisting).await
    }

    /// How long a busy or unreachable store is retried before giving up: the lease TTL (a
    /// frozen lock holder's lease runs out by then) but at least a minute.
    fn patience(&self) -> Duration {
        self.config.leases.ttl.max(Duration::from_secs(60))
    }

    /// Opens the store. A busy (SQLite write lock) or unreachable (PostgreSQL) store is
    /// retried with a notice, and returned as the transient error if it stays so.
    pub async fn open(&self, access: Access) -> Result<Arc<dyn Store>, OpenError> {
        let options = self.open_options();
        let deadline = Instant::now() + self.patience();
        let mut told = false;
        loop {
            match tether_store::open_with(&self.config.state, access, &options).await {
                Ok(store) => return Ok(store),
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    if !told {
                        told = true;
                        tracing::warn!(error = %e, "state store busy or unreachable, retrying");
                        (self.notices)(&format!(
                            "tether: state store busy or unreachable ({e}), retrying…"
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Holds `owner`'s liveness signal if the settings ask for it (see
    /// [`Store::hold_liveness`]); keep the result alive while `owner` drives runs. A store
    /// that cannot give one leaves the lease alone to decide: said once, never fatal.
    pub async fn hold_liveness(
        &self,
        store: &dyn Store,
        owner: &OwnerId,
    ) -> Option<tether_core::store::Liveness> {
        if !self.config.liveness {
            return None;
        }
        match store.hold_liveness(owner).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(%owner, error = %e, "no liveness signal: takeover waits for lease expiry");
                (self.notices)(&format!(
                    "tether: cannot hold a liveness signal ({e}); if this process dies, its runs                      are taken over only when their lease expires"
                ));
                None
            }
        }
    }

    /// Store options: SQLite operations that find the write lock taken say so through the
    /// notices and keep trying for the lease TTL (at least a minute).
    pub fn open_options(&self) -> OpenOptions {
        let mut options = OpenOptions::default();
        options.sqlite.busy_timeout = self.patience();
        let notices = self.notices.clone();
        options.sqlite.on_busy = Some(Arc::new(move |line: &str| {
            notices(&format!("tether: {line}"))
        }));
        options
    }

    /// Builds the connector of a spec being submitted, with the checks only a new submission
    /// needs (a local program and workdir exist here).
    pub fn connector_to_submit(&self, file: &str, text: &str) -> Result<Built, BuildError> {
        Ok(self.registry.build_to_submit(file, text, &self.build)?)
    }

    /// Builds the connector of a spec (file name for messages, and its text).
    pub fn connector(&self, file: &str, text: &str) -> Result<Built, BuildError> {
        Ok(self.registry.build(file, text, &self.build)?)
    }

    /// Builds the connector of a stored run, resolving its spec's relative paths against the
    /// directory it was submitted from (not this process's).
    pub fn connector_for(&self, run: &tether_core::store::RunRecord) -> Result<Built, BuildError> {
        let mut build = self.build.clone();
        if let Some(dir) = &run.base_dir {
            build.base_dir = Some(dir.into());
        }
        Ok(self.registry.build(&run.spec_name, &run.spec, &build)?)
    }
}

/// `role@host:pid:nonce`: unique per process, readable in `tether ls`. The nonce is 64 random
/// bits from the OS, so two processes (on hosts with the same name and a reused pid, or
/// started in the same nanosecond) never share an owner id and so never each other's lease.
pub fn owner_id(role: &str) -> OwnerId {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let nonce = random_u64();
    OwnerId(format!("{role}@{host}:{}:{nonce:016x}", std::process::id()))
}

/// 64 random bits. Without an OS random source (never seen on Linux) the time and pid are
/// mixed instead: still unique per process in practice, which is all an owner id needs.
fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        tether_core::ids::fnv1a64(format!("{nanos}{}", std::process::id()).as_bytes())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn owner_ids_carry_64_random_bits() {
        let a = super::owner_id("run");
        let b = super::owner_id("run");
        assert_ne!(a, b);
        let nonce = a.0.rsplit(':').next().unwrap();
        assert_eq!(nonce.len(), 16, "{a}");
        assert!(u64::from_str_radix(nonce, 16).is_ok(), "{a}");
    }
}
