//! From a spec file to a connector: an open [`Registry`] of [`ConnectorFactory`]s, one per
//! `[job] kind`.
//!
//! A program embedding tether adds its own backend with one line,
//! `registry.register(MyFactory)`; the built-in kinds are registered the same way.
//!
//! ## Guarantees
//! - A spec is parsed by exactly the factory of its `[job] kind`; an unknown kind is
//!   [`SpecError::UnknownBackend`] naming the kinds this registry knows.
//! - Building does no I/O beyond what the connector's constructor needs (the built-in ones:
//!   reading a spec's CA file): it validates, it never contacts a backend.
//!
//! ## Caveats
//! - Registering a kind twice replaces the earlier factory (so a program may override a
//!   built-in kind); [`Registry::register`] returns the one replaced.
use std::{collections::BTreeMap, fmt, path::PathBuf, sync::Arc};

use tether_core::{
    spec::{peek_kind, Policy, SpecError},
    Connector,
};

/// What every kind may need to build a connector. Settings of one kind only (the local jobs
/// directory, a client pool) belong to that kind's factory.
#[derive(Debug, Clone, Default)]
pub struct BuildContext {
    /// Environment variables a spec's `token_env` may name besides `TETHER_TOKEN_*` (from the
    /// worker's configuration; default none). Any other name is a spec error.
    pub token_env_allow: Vec<String>,
    /// Directory that relative paths of a spec (a local job's program and workdir, a CA file)
    /// are resolved against: the submitter's directory. `None`: this process's current directory.
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

/// Builds the connectors of one `[job] kind`. Each kind parses its own spec type (with
/// `deny_unknown_fields`, so a typo is a line/column error, see
/// [`tether_core::spec::parse_spec`]).
pub trait ConnectorFactory: Send + Sync {
    /// The `[job] kind` this factory builds (`"local"`, `"spark-standalone"`, ...).
    fn kind(&self) -> &str;

    /// Parses `text` (the spec file `file`, whose kind is [`ConnectorFactory::kind`]) and
    /// builds its connector. Validation only: no contact with the backend. Used by commands
    /// acting on an existing run (cancel, logs, a worker resuming it), which must still work
    /// once, say, a local program is gone.
    fn build(&self, file: &str, text: &str, ctx: &BuildContext) -> Result<Built, SpecError>;

    /// [`ConnectorFactory::build`] plus the checks only a new submission needs, on this
    /// machine (the local kind: its program and workdir exist and its arguments fit). Default:
    /// `build`.
    fn build_to_submit(
        &self,
        file: &str,
        text: &str,
        ctx: &BuildContext,
    ) -> Result<Built, SpecError> {
        self.build(file, text, ctx)
    }
}

/// The factories a program knows, by kind. Cheap to clone (factories are shared).
#[derive(Clone, Default)]
pub struct Registry {
    factories: BTreeMap<String, Arc<dyn ConnectorFactory>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds())
            .finish()
    }
}

impl Registry {
    /// A registry that knows no kind.
    pub fn new() -> Self {
        Self::default()
    }

    /// The kinds compiled in (Cargo features) that build from a [`BuildContext`] alone:
    /// `spark-standalone`, `databricks`. The `local` kind needs a jobs directory and a supervisor program,
    /// which only the embedding program can choose: add it with
    /// `.with(local::LocalFactory::new(jobs_dir, supervisor))`.
    pub fn builtin() -> Self {
        #[allow(unused_mut)]
        let mut registry = Self::new();
        #[cfg(feature = "spark-standalone")]
        registry.register(crate::spark_standalone::SparkFactory::default());
        #[cfg(feature = "databricks")]
        registry.register(crate::databricks::DatabricksFactory::default());
        #[cfg(feature = "spark-yarn")]
        registry.register(crate::spark_yarn::YarnFactory::default());
        #[cfg(feature = "spark-k8s")]
        registry.register(crate::spark_k8s::K8sFactory);
        #[cfg(feature = "livy")]
        registry.register(crate::livy::LivyFactory::default());
        registry
    }

    /// Adds `factory` for its kind; returns the factory it replaces, if any.
    pub fn register(
        &mut self,
        factory: impl ConnectorFactory + 'static,
    ) -> Option<Arc<dyn ConnectorFactory>> {
        self.factories
            .insert(factory.kind().to_string(), Arc::new(factory))
    }

    /// [`Registry::register`], by value: `Registry::builtin().with(MyFactory)`.
    pub fn with(mut self, factory: impl ConnectorFactory + 'static) -> Self {
        self.register(factory);
        self
    }

    /// The kinds this registry builds, sorted.
    pub fn kinds(&self) -> Vec<&str> {
        self.factories.keys().map(String::as_str).collect()
    }

    /// Whether this registry builds `kind`.
    pub fn knows(&self, kind: &str) -> bool {
        self.factories.contains_key(kind)
    }

    fn factory(&self, file: &str, text: &str) -> Result<&dyn ConnectorFactory, SpecError> {
        let (kind, line) = peek_kind(file, text)?;
        match self.factories.get(&kind) {
            Some(f) => Ok(f.as_ref()),
            None => Err(SpecError::UnknownBackend {
                file: file.into(),
                line,
                kind,
                known: self.kinds().join(", "),
            }),
        }
    }

    /// Parses `text` (the spec file `file`) and builds its connector with the factory of its
    /// kind ([`ConnectorFactory::build`]).
    pub fn build(&self, file: &str, text: &str, ctx: &BuildContext) -> Result<Built, SpecError> {
        self.factory(file, text)?.build(file, text, ctx)
    }

    /// [`Registry::build`] with the checks only a new submission needs
    /// ([`ConnectorFactory::build_to_submit`]). Use it where a spec is submitted.
    pub fn build_to_submit(
        &self,
        file: &str,
        text: &str,
        ctx: &BuildContext,
    ) -> Result<Built, SpecError> {
        self.factory(file, text)?.build_to_submit(file, text, ctx)
    }
}

/// [`SpecError::Value`]: `message` about `field` (e.g. `job.url`) of the spec file `file`. For
/// factories, after their own checks.
pub fn value_error(file: &str, field: &str, message: String) -> SpecError {
    SpecError::Value {
        file: file.into(),
        field: field.into(),
        message,
    }
}

/// The kinds compiled into this build (Cargo features), whether or not a registry has them.
pub fn known_kinds() -> Vec<&'static str> {
    [
        ("local", cfg!(feature = "local")),
        ("spark-standalone", cfg!(feature = "spark-standalone")),
        ("databricks", cfg!(feature = "databricks")),
        ("spark-yarn", cfg!(feature = "spark-yarn")),
        ("spark-k8s", cfg!(feature = "spark-k8s")),
        ("livy", cfg!(feature = "livy")),
    ]
    .into_iter()
    .filter_map(|(kind, built_in)| built_in.then_some(kind))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fails(&'static str);

    impl ConnectorFactory for Fails {
        fn kind(&self) -> &str {
            self.0
        }
        fn build(&self, file: &str, _: &str, _: &BuildContext) -> Result<Built, SpecError> {
            Err(SpecError::Value {
                file: file.into(),
                field: "job".into(),
                message: format!("built by {}", self.0),
            })
        }
    }

    fn error(registry: &Registry, kind: &str) -> String {
        let text = format!("[job]\nkind = {kind:?}\n");
        match registry.build("s.toml", &text, &BuildContext::default()) {
            Ok(_) => panic!("{kind} built"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_registered_kind_is_built_by_its_factory_and_others_are_unknown() {
        let mut registry = Registry::new().with(Fails("toy"));
        assert!(error(&registry, "toy").contains("built by toy"));
        let unknown = error(&registry, "yarn");
        assert!(
            unknown.contains("yarn") && unknown.contains("toy"),
            "{unknown}"
        );
        assert!(registry.register(Fails("toy")).is_some(), "replaced");
        assert_eq!(registry.kinds(), vec!["toy"]);
        assert!(registry.knows("toy") && !registry.knows("yarn"));
    }

    #[cfg(feature = "spark-standalone")]
    #[test]
    fn builtin_has_the_compiled_kinds_that_need_no_settings() {
        assert!(Registry::builtin().knows("spark-standalone"));
        assert!(
            !Registry::builtin().knows("local"),
            "local needs its factory's settings"
        );
    }
}
