//! From a spec file to a connector: picks the module by `[job] kind`.
use std::{path::PathBuf, sync::Arc};

use tether_core::{
    spec::{peek_kind, Policy, SpecError},
    Connector,
};

/// Where connectors may keep their files and how they start helpers.
#[derive(Debug, Clone, Default)]
pub struct BuildContext {
    /// Directory for local jobs' supervisor state and logs (one subdirectory per tag).
    pub jobs_dir: PathBuf,
    /// Program and leading arguments that start the local supervisor
    /// (the `tether` binary with its hidden `__supervise` subcommand).
    pub supervisor: Vec<String>,
    /// Environment variables a spec's `token_env` may name besides `TETHER_TOKEN_*` (from the
    /// worker's configuration; default none). Any other name is a spec error.
    pub token_env_allow: Vec<String>,
    /// Directory that relative paths of a spec (a local job's program and workdir) are
    /// resolved against: the submitter's directory. `None`: this process's current directory.
    pub base_dir: Option<PathBuf>,
}

impl BuildContext {
    /// [`BuildContext::base_dir`], or this process's current directory (`/` if unknown).
    pub fn base_dir(&self) -> PathBuf {
        self.base_dir
            .clone()
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"))
    }
}

/// A connector ready to drive a run, with the policy of its spec.
pub struct Built {
    /// The connector.
    pub connector: Arc<dyn Connector>,
    /// Retry policy from the spec, with the connector's defaults filled in.
    pub policy: Policy,
    /// `durable` from the spec.
    pub durable: bool,
}

/// The kinds this build knows.
pub fn known_kinds() -> Vec<&'static str> {
    [
        ("local", cfg!(feature = "local")),
        ("spark-standalone", cfg!(feature = "spark-standalone")),
    ]
    .into_iter()
    .filter_map(|(kind, built_in)| built_in.then_some(kind))
    .collect()
}

/// Parses `text` (the spec file `file`) and builds its connector. Does no I/O beyond what the
/// connector's constructor needs (none for the built-in ones): validation only.
pub fn build(file: &str, text: &str, ctx: &BuildContext) -> Result<Built, SpecError> {
    let (kind, line) = peek_kind(file, text)?;
    match kind.as_str() {
        #[cfg(feature = "local")]
        "local" => crate::local::from_spec(file, text, ctx),
        #[cfg(feature = "spark-standalone")]
        "spark-standalone" => crate::spark_standalone::from_spec(file, text, ctx),
        _ => Err(SpecError::UnknownBackend {
            file: file.into(),
            line,
            kind,
            known: known_kinds().join(", "),
        }),
    }
}

/// [`build`], then the checks only a new submission needs, on this machine: for a local spec,
/// that its program and workdir exist and its arguments fit ([`crate::local::LocalSpec::check_startable`]).
/// Use it where a spec is submitted; commands acting on an existing run (cancel, logs, a
/// worker resuming it) use [`build`], so that they still work once the program is gone.
pub fn build_to_submit(file: &str, text: &str, ctx: &BuildContext) -> Result<Built, SpecError> {
    let built = build(file, text, ctx)?;
    #[cfg(feature = "local")]
    if built.connector.kind() == "local" {
        crate::local::check_spec(file, text, ctx)?;
    }
    Ok(built)
}
