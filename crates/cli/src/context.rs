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
            token_env_allow: Vec::new(),
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

/// `host:pid:nonce`: unique per process, readable in `tether ls`.
pub fn owner_id(role: &str) -> OwnerId {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let nonce = tether_core::ids::fnv1a64(format!("{nanos}{}", std::process::id()).as_bytes())
        & 0x00ff_ffff;
    OwnerId(format!("{role}@{host}:{}:{nonce:06x}", std::process::id()))
}
