//! From a spec to a [`Databricks`] connector: credentials from allowed variables, the CA file,
//! and an HTTP client shared by every spec naming the same workspace ([`DatabricksFactory`]).
use std::{sync::Arc, time::Duration};

use tether_core::spec::{parse_spec, SpecError};

use super::{
    spec::{DatabricksJob, DatabricksRecovery},
    Databricks,
};
use crate::{
    http::{
        secret_from_env, Auth, Client, EnvSecretError, OAuth2, Retry, Secret, TOKEN_ENV_PREFIX,
    },
    pool::{ClientPool, Endpoint},
    registry::{BuildContext, Built, ConnectorFactory},
};

/// The factory of the `databricks` kind.
#[derive(Debug, Clone, Default)]
pub struct DatabricksFactory {
    clients: ClientPool<reqwest::Client>,
}

impl DatabricksFactory {
    /// A factory taking its clients from `clients` (a pool other HTTP kinds may share).
    pub fn with_pool(clients: ClientPool<reqwest::Client>) -> Self {
        DatabricksFactory { clients }
    }
}

/// Retries of requests to the workspace (all idempotent, the submit through its token): a few,
/// within 10 s, so a status call never stalls the engine's own loop for long.
pub const RETRY: Retry = Retry {
    attempts: 4,
    base: Duration::from_millis(250),
    max_delay: Duration::from_secs(4),
    max_total: Duration::from_secs(10),
};

impl ConnectorFactory for DatabricksFactory {
    fn kind(&self) -> &str {
        "databricks"
    }

    fn build(&self, file: &str, text: &str, ctx: &BuildContext) -> Result<Built, SpecError> {
        let spec = parse_spec::<DatabricksJob, DatabricksRecovery>(file, text)?;
        let err = |field: &str, message: String| SpecError::Value {
            file: file.into(),
            field: field.into(),
            message,
        };
        spec.job.validate().map_err(|(field, m)| err(field, m))?;
        let job = spec.job.clone();
        let read = |field: &str, var: &str, what: &str| -> Result<Secret, SpecError> {
            secret_from_env(var, &ctx.token_env_allow).map_err(|e| match e {
                EnvSecretError::NotAllowed(_) => err(field, format!(
                    "{var:?} may not be read: name a variable starting with {TOKEN_ENV_PREFIX} (e.g. {TOKEN_ENV_PREFIX}DATABRICKS) \
                     or one the worker's configuration allows")),
                _ => err(field, format!("environment variable {var} is not set (or empty): export it with {what} (the spec names the variable, never the value)")),
            })
        };
        let host = job.host.trim_end_matches('/').to_string();
        let auth = match (&job.token_env, &job.oauth) {
            (Some(var), _) => Auth::Bearer(read(
                "job.token_env",
                var,
                "a Databricks personal access token",
            )?),
            (None, Some(o)) => {
                let id = read(
                    "job.oauth.client_id_env",
                    &o.client_id_env,
                    "the service principal's client id",
                )?;
                let secret = read(
                    "job.oauth.client_secret_env",
                    &o.client_secret_env,
                    "the service principal's OAuth secret",
                )?;
                let oauth = OAuth2::new(
                    &format!("{host}/oidc/v1/token"),
                    id.expose().to_string(),
                    secret,
                    Some("all-apis".into()),
                )
                .map_err(|m| err("job.host", m))?;
                Auth::OAuth2(Arc::new(oauth))
            }
            (None, None) => unreachable!("validate() requires token_env or [job.oauth]"),
        };
        let ca_pem = match &job.ca_file {
            None => None,
            Some(p) => {
                // Relative to the submitter's directory, like every path of a spec.
                let path = ctx.base_dir().join(p);
                Some(std::fs::read(&path).map_err(|e| err("job.ca_file", format!(
                    "cannot read CA file {}: {e} (give the PEM file of the CA that signed the workspace's certificate)", path.display())))?)
            }
        };
        let timeout = job.request_timeout.0;
        let url = reqwest::Url::parse(&host).map_err(|e| err("job.host", e.to_string()))?;
        let endpoint = Endpoint::of(&url, ca_pem.clone(), timeout);
        let http = self
            .clients
            .get_or_try_make(endpoint, || {
                crate::http::ClientConfig {
                    ca_pem: ca_pem.clone(),
                    ..crate::http::ClientConfig::new(timeout)
                }
                .build()
            })
            .map_err(|m| {
                err(
                    if ca_pem.is_some() {
                        "job.ca_file"
                    } else {
                        "job"
                    },
                    m,
                )
            })?;
        let recovery = spec.recovery.clone().unwrap_or_default();
        let recovery_on = recovery.enabled && job.has_new_cluster() && recovery.changes_something();
        let client = Client::from_reqwest(http, timeout, auth, RETRY);
        let connector = Databricks::new(job, recovery_on.then_some(recovery), client);
        Ok(Built {
            connector: Arc::new(connector),
            policy: spec.policy(Duration::from_secs(10), recovery_on),
            durable: spec.durable,
        })
    }
}
