//! From a spec to a [`SparkStandalone`]: the token (its variable's rule is
//! [`crate::http::env_var_allowed`]), the CA file, and the HTTP client, shared by every spec
//! naming the same master ([`SparkFactory`]).
use std::{path::PathBuf, sync::Arc, time::Duration};

use tether_core::spec::SpecError;

use super::{rest::Rest, spec::SparkJob, SparkStandalone};
use crate::{
    http::{secret_from_env, ClientConfig, EnvSecretError},
    pool::{ClientPool, Endpoint},
    registry::{BuildContext, Built, ConnectorFactory},
    spark::spec::Opened,
};

/// The factory of the `spark-standalone` kind. Its clients are shared by endpoint: two specs
/// for the same master (same CA, same timeout) use one HTTP client and its connections.
#[derive(Debug, Clone, Default)]
pub struct SparkFactory {
    clients: ClientPool<reqwest::Client>,
}

impl SparkFactory {
    /// A factory taking its clients from `clients` (a pool other HTTP kinds may share).
    pub fn with_pool(clients: ClientPool<reqwest::Client>) -> Self {
        SparkFactory { clients }
    }
}

impl ConnectorFactory for SparkFactory {
    fn kind(&self) -> &str {
        "spark-standalone"
    }

    fn build(&self, file: &str, text: &str, ctx: &BuildContext) -> Result<Built, SpecError> {
        build(file, text, ctx, &self.clients)
    }
}

pub use crate::http::TOKEN_ENV_PREFIX;

/// Builds the connector and policy of a `kind = "spark-standalone"` spec, with a client of its
/// own ([`SparkFactory`] shares them).
pub fn from_spec(file: &str, text: &str, ctx: &BuildContext) -> Result<Built, SpecError> {
    build(file, text, ctx, &ClientPool::default())
}

fn build(
    file: &str,
    text: &str,
    ctx: &BuildContext,
    clients: &ClientPool<reqwest::Client>,
) -> Result<Built, SpecError> {
    let opened = Opened::<SparkJob>::open(file, text)?;
    let spec = &opened.spec;
    let value_err = |field: &str, message: String| opened.err(field, message);
    let token = match &spec.job.token_env {
        None => None,
        Some(var) => match secret_from_env(var, &ctx.token_env_allow) {
            Ok(t) => Some(t),
            Err(EnvSecretError::NotAllowed(_)) => {
                return Err(value_err(
                    "job.token_env",
                    format!(
                        "{var:?} may not be read: token_env must name a variable starting with {TOKEN_ENV_PREFIX} (e.g. \
                         {TOKEN_ENV_PREFIX}SPARK) or one the worker's configuration allows, so that a spec cannot send \
                         the worker's other secrets to a server of its choosing"
                    ),
                ))
            }
            Err(_) => {
                return Err(value_err(
                    "job.token_env",
                    format!(
                        "environment variable {var} is not set (or empty): export it with the master's bearer token \
                         (the spec names the variable, never the token)"
                    ),
                ))
            }
        },
    };
    let mut job = spec.job.clone();
    // Like a local job's paths: relative to the submitter's directory, not the worker's.
    if let Some(path) = job.ca_file.as_mut().filter(|p| p.is_relative()) {
        *path = ctx.base_dir().join(&*path);
    }
    let ca_pem = read_ca(&job).map_err(|e| value_err("job.ca_file", e.to_string()))?;
    let recovery = opened.recovery();
    let enabled = recovery.enabled;
    let timeout = job.request_timeout.0;
    let endpoint = endpoint(&job.master_rest, ca_pem.clone(), timeout)
        .map_err(|m| value_err("job.master_rest", m))?;
    let client = clients
        .get_or_try_make(endpoint, || {
            ClientConfig {
                ca_pem: ca_pem.clone(),
                ..ClientConfig::new(timeout)
            }
            .build()
        })
        .map_err(|m| match (&job.ca_file, &ca_pem) {
            (Some(path), Some(_)) => {
                value_err("job.ca_file", format!("CA file {}: {m}", path.display()))
            }
            _ => value_err("job", m),
        })?;
    let rest = Rest::with_client(
        client,
        &job.master_rest,
        &job.master_ui(),
        token.clone(),
        timeout,
    );
    let connector = SparkStandalone::with_rest(job, &recovery, token, rest);
    Ok(Built {
        connector: Arc::new(connector),
        policy: spec.policy(Duration::from_secs(2), enabled),
        durable: spec.durable,
    })
}

/// The pool key of the master's REST address (already validated by the spec).
fn endpoint(url: &str, ca_pem: Option<Vec<u8>>, timeout: Duration) -> Result<Endpoint, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a URL: {e}"))?;
    Ok(Endpoint::of(&parsed, ca_pem, timeout))
}

/// Why a [`SparkStandalone`] could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NewError {
    /// `ca_file` cannot be read.
    #[error(
        "cannot read CA file {}: {source} (give the PEM file of the CA that signed the master's certificate)",
        path.display()
    )]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// The underlying error, kept as the source.
        #[source]
        source: std::io::Error,
    },
    /// `ca_file` was read but is not usable PEM.
    #[error("CA file {}: {message}", path.display())]
    BadCa {
        /// The file.
        path: PathBuf,
        /// The HTTP client's words.
        message: String,
    },
    /// The HTTP client could not be made.
    #[error("{0}")]
    Client(String),
}

/// The PEM text of `job.ca_file`, if set.
pub(super) fn read_ca(job: &SparkJob) -> Result<Option<Vec<u8>>, NewError> {
    match &job.ca_file {
        None => Ok(None),
        Some(path) => std::fs::read(path)
            .map(Some)
            .map_err(|source| NewError::ReadCa {
                path: path.clone(),
                source,
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::SparkFactory;
    use crate::registry::{BuildContext, ConnectorFactory};

    #[test]
    fn specs_for_one_master_share_one_client() {
        let factory = SparkFactory::default();
        let build = |master: &str, main: &str| {
            let text = format!(
                "[job]\nkind = \"spark-standalone\"\nmaster_rest = \"{master}\"\n\
                 app_resource = \"file:/jobs/etl.jar\"\nmain_class = \"{main}\"\n"
            );
            if let Err(e) = factory.build("s.toml", &text, &BuildContext::default()) {
                panic!("{e}\n{text}")
            }
        };
        build("http://spark-a:6066", "com.example.One");
        build("http://spark-a:6066/", "com.example.Two");
        assert_eq!(factory.clients.len(), 1, "same master: one client");
        build("http://spark-a:7077", "com.example.One");
        build("http://spark-b:6066", "com.example.One");
        assert_eq!(
            factory.clients.len(),
            3,
            "another port or host: another client"
        );
    }
}
