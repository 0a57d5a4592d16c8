//! Settings, layered: defaults, then the TOML config file, then environment, then flags.
//!
//! ```toml
//! # ~/.config/tether/config.toml
//! state = "postgres://tether@db.internal/tether"   # or a path / sqlite://PATH
//! jobs_dir = "/var/lib/tether/jobs"                # local jobs' logs and status files
//! lease_ttl = "9s"                                 # renewed every ttl/3
//! token_env_allow = ["SPARK_REST_TOKEN"]           # besides TETHER_TOKEN_*, for `token_env`
//! liveness = true                                  # take a dead owner's runs at once
//! ```
//! `liveness = false` (or `TETHER_LIVENESS=off`): owners hold no liveness signal and a dead
//! owner's runs wait for lease expiry, as before. Needed behind a transaction-mode pooler
//! (pgbouncer `pool_mode = transaction`), where session advisory locks mean nothing.
//! A spec's `token_env` may only name `TETHER_TOKEN_*` or a variable listed here: a spec in
//! the store must not be able to read a worker's other variables (its database password) and
//! send them to a URL of its choosing.
//! Environment: `TETHER_STATE`, `TETHER_CONFIG`, `TETHER_JOBS_DIR`, `TETHER_LEASE_TTL`,
//! `TETHER_LIVENESS` (`on`/`off`).
use std::{path::PathBuf, time::Duration};

use serde::Deserialize;
use tether_core::{engine::LeaseSettings, units::HumanDuration};

/// Why the settings could not be loaded. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error, kept as the source.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML of the documented shape.
    #[error("config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The underlying error, kept as the source.
        #[source]
        source: toml::de::Error,
    },
    /// The state location is none of the accepted forms.
    #[error(transparent)]
    Location(#[from] tether_store::LocationError),
    /// A setting is out of range or malformed.
    #[error("{0}")]
    Invalid(String),
}

/// Where settings come from besides the environment: what a front end (command line flags,
/// a server's own settings) gives explicitly.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The config file to read; without it, `$XDG_CONFIG_HOME/tether/config.toml` if it exists.
    pub config_file: Option<PathBuf>,
    /// The state store location, over the config file's (a `--state` flag or `TETHER_STATE`).
    pub state: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    state: Option<String>,
    jobs_dir: Option<PathBuf>,
    lease_ttl: Option<HumanDuration>,
    liveness: Option<bool>,
    #[serde(default)]
    token_env_allow: Vec<String>,
    /// `[serve]`: read by `tether-server` (its own strict parser), kept raw here.
    #[serde(default)]
    serve: toml::Table,
}

/// Effective settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// State store location.
    pub state: String,
    /// Where local jobs keep their files.
    pub jobs_dir: PathBuf,
    /// Lease timing.
    pub leases: LeaseSettings,
    /// Variables a spec's `token_env` may name besides `TETHER_TOKEN_*`.
    pub token_env_allow: Vec<String>,
    /// Owners hold a liveness signal (`Store::hold_liveness`), so their runs are taken over
    /// as soon as they die rather than at lease expiry.
    pub liveness: bool,
    /// The config file's `[serve]` table as written (tokens of `tether serve`), parsed by the
    /// server; empty when absent.
    pub serve: toml::Table,
}

impl Config {
    /// Loads the settings: defaults, then the config file, then the environment
    /// (`TETHER_JOBS_DIR`, `TETHER_LEASE_TTL`), then `sources.state`.
    pub fn load(global: &Sources) -> Result<Config, ConfigError> {
        let file = match &global.config_file {
            Some(path) => read_file(path)?,
            None => match default_config_path() {
                Some(path) if path.exists() => read_file(&path)?,
                _ => FileConfig::default(),
            },
        };
        // `global.state` already merges the flag over TETHER_STATE (clap `env`).
        let state = global
            .state
            .clone()
            .or(file.state)
            .unwrap_or_else(|| tether_store::default_sqlite_path().display().to_string());
        // One parser for the store and the jobs directory; a location that is none of the
        // accepted forms is bad input before anything is created.
        let location = tether_store::Location::parse(&state)?;
        let jobs_dir = match std::env::var_os("TETHER_JOBS_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => file.jobs_dir.unwrap_or_else(|| default_jobs_dir(&location)),
        };
        let mut leases = LeaseSettings::default();
        if let Some(ttl) = file.lease_ttl {
            leases.ttl = ttl.0;
        }
        if let Ok(v) = std::env::var("TETHER_LEASE_TTL") {
            leases.ttl = v
                .parse::<HumanDuration>()
                .map_err(|e| ConfigError::Invalid(format!("TETHER_LEASE_TTL: {e}")))?
                .0;
        }
        if leases.ttl < Duration::from_millis(300) || leases.ttl > Duration::from_secs(3600) {
            return Err(ConfigError::Invalid(format!(
                "lease_ttl {} is out of range (config file or TETHER_LEASE_TTL): write a duration \
                 between 300ms (it is renewed every ttl/3) and 1h (a dead owner's runs wait that long)",
                HumanDuration(leases.ttl)
            )));
        }
        let liveness = match std::env::var("TETHER_LIVENESS") {
            Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
                "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "TETHER_LIVENESS={v:?}: write `on` or `off`"
                    )))
                }
            },
            Err(_) => file.liveness.unwrap_or(true),
        };
        Ok(Config {
            state,
            jobs_dir,
            leases,
            token_env_allow: file.token_env_allow,
            liveness,
            serve: file.serve,
        })
    }
}

fn read_file(path: &std::path::Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.into(),
        source,
    })
}

fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("tether").join("config.toml"))
}

/// Local jobs live next to an SQLite state file; with PostgreSQL, in the user's state dir.
fn default_jobs_dir(location: &tether_store::Location) -> PathBuf {
    if let Some(path) = location.sqlite_path() {
        if let Some(parent) = path.parent() {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            return parent.join(format!("{stem}.jobs"));
        }
    }
    tether_store::default_sqlite_path()
        .parent()
        .map(|p| p.join("jobs"))
        .unwrap_or_else(|| PathBuf::from("tether-jobs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_dir_sits_next_to_the_sqlite_file_in_every_form() {
        for state in ["/abs/s/t.db", "sqlite:/abs/s/t.db", "sqlite:///abs/s/t.db"] {
            let loc = tether_store::Location::parse(state).expect(state);
            assert_eq!(
                default_jobs_dir(&loc),
                PathBuf::from("/abs/s/t.jobs"),
                "{state}"
            );
        }
    }

    #[test]
    fn liveness_is_on_by_default_and_the_config_file_turns_it_off() {
        if std::env::var_os("TETHER_LIVENESS").is_some() {
            return; // the environment decides over the file; nothing to check here
        }
        let dir = tempfile::tempdir().unwrap();
        let load = |text: &str| {
            let file = dir.path().join("config.toml");
            std::fs::write(&file, text).unwrap();
            Config::load(&Sources {
                config_file: Some(file),
                state: Some(dir.path().join("s.db").display().to_string()),
            })
            .unwrap()
            .liveness
        };
        assert!(load(""));
        assert!(!load("liveness = false\n"));
        assert!(load("liveness = true\n"));
    }
}
