//! Opening the store and building connectors for a command.
use std::sync::Arc;

use tether_connectors::registry::{self, BuildContext, Built};
use tether_core::{ids::OwnerId, Store};

use crate::{commands::CliError, config::Config};

/// What most commands need.
pub struct Ctx {
    pub config: Config,
    pub build: BuildContext,
}

impl Ctx {
    pub fn new(config: Config) -> Result<Ctx, CliError> {
        let exe = std::env::current_exe().map_err(|e| {
            CliError::usage(format!(
                "cannot locate the tether binary (needed to start local jobs): {e}"
            ))
        })?;
        let build = BuildContext {
            jobs_dir: config.jobs_dir.clone(),
            supervisor: vec![exe.display().to_string(), "__supervise".into()],
        };
        Ok(Ctx { config, build })
    }

    /// Opens the state store; every failure is bad input (exit 2) with the store's message.
    pub async fn store(&self) -> Result<Arc<dyn Store>, CliError> {
        tether_store::open(&self.config.state)
            .await
            .map_err(|e| CliError::usage(e.to_string()))
    }

    /// Builds the connector of a spec (file name for messages, and its text).
    pub fn connector(&self, file: &str, text: &str) -> Result<Built, CliError> {
        registry::build(file, text, &self.build).map_err(|e| CliError::usage(e.to_string()))
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
