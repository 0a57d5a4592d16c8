//! Opening the store and building connectors for a command.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tether_connectors::{
    local::LocalFactory,
    registry::{BuildContext, Built, Registry},
};
use tether_core::{ids::OwnerId, Store};
use tether_store::{Access, OpenOptions};

use crate::{commands::CliError, config::Config};

/// What most commands need.
pub struct Ctx {
    pub config: Config,
    pub build: BuildContext,
    /// The kinds this binary builds: the built-in ones, local with this config's jobs dir.
    pub registry: Registry,
}

impl Ctx {
    pub fn new(config: Config) -> Result<Ctx, CliError> {
        let exe = std::env::current_exe().map_err(|e| {
            CliError::usage(format!(
                "cannot locate the tether binary (needed to start local jobs): {e}"
            ))
        })?;
        let build = BuildContext {
            token_env_allow: config.token_env_allow.clone(),
            base_dir: None,
        };
        let supervisor = vec![exe.display().to_string(), "__supervise".into()];
        let registry =
            Registry::builtin().with(LocalFactory::new(config.jobs_dir.clone(), supervisor));
        Ok(Ctx {
            config,
            build,
            registry,
        })
    }

    /// Opens the state store for a write command (creating and migrating it if needed).
    pub async fn store(&self) -> Result<Arc<dyn Store>, CliError> {
        self.open(Access::Write).await
    }

    /// Opens an existing store for a read command: creates nothing, migrates nothing.
    pub async fn store_existing(&self) -> Result<Arc<dyn Store>, CliError> {
        self.open(Access::ReadExisting).await
    }

    /// How long a busy or unreachable store is retried before giving up: the lease TTL (a
    /// frozen lock holder's lease runs out by then) but at least a minute.
    fn patience(&self) -> Duration {
        self.config.leases.ttl.max(Duration::from_secs(60))
    }

    /// Opens the store. A busy (SQLite write lock) or unreachable (PostgreSQL) store is
    /// retried with a status line on stderr, and reported as transient (exit 4) if it stays
    /// so: exit 2 is kept for bad input, where nothing was written.
    pub async fn open(&self, access: Access) -> Result<Arc<dyn Store>, CliError> {
        let options = self.open_options();
        let deadline = Instant::now() + self.patience();
        let mut told = false;
        loop {
            match tether_store::open_with(&self.config.state, access, &options).await {
                Ok(store) => return Ok(store),
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    if !told {
                        told = true;
                        diag!("tether: state store busy or unreachable ({e}), retrying…");
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(CliError::store(e)),
            }
        }
    }

    /// Store options: SQLite operations that find the write lock taken say so on stderr and
    /// keep trying for [`Ctx::patience`].
    pub fn open_options(&self) -> OpenOptions {
        let mut options = OpenOptions::default();
        options.sqlite.busy_timeout = self.patience();
        options.sqlite.on_busy = Some(Arc::new(|line: &str| diag!("tether: {line}")));
        options
    }

    /// Builds the connector of a spec being submitted, with the checks only a new submission
    /// needs (a local program and workdir exist here).
    pub fn connector_to_submit(&self, file: &str, text: &str) -> Result<Built, CliError> {
        self.registry
            .build_to_submit(file, text, &self.build)
            .map_err(|e| CliError::usage(e.to_string()))
    }

    /// Builds the connector of a spec (file name for messages, and its text).
    pub fn connector(&self, file: &str, text: &str) -> Result<Built, CliError> {
        self.registry
            .build(file, text, &self.build)
            .map_err(|e| CliError::usage(e.to_string()))
    }

    /// Builds the connector of a stored run, resolving its spec's relative paths against the
    /// directory it was submitted from (not this process's).
    pub fn connector_for(&self, run: &tether_core::store::RunRecord) -> Result<Built, CliError> {
        let mut build = self.build.clone();
        if let Some(dir) = &run.base_dir {
            build.base_dir = Some(dir.into());
        }
        self.registry
            .build(&run.spec_name, &run.spec, &build)
            .map_err(|e| CliError::usage(e.to_string()))
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
