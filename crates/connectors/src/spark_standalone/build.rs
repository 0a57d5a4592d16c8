//! From a spec to a [`SparkStandalone`]: the token (its variable's rule is
//! [`crate::http::env_var_allowed`]), the CA file.
use std::{sync::Arc, time::Duration};

use tether_core::spec::{parse_spec, SpecError};

use super::{
    spec::{SparkJob, SparkRecovery},
    SparkStandalone,
};
use crate::{
    http::{secret_from_env, EnvSecretError},
    registry::{BuildContext, Built},
};

pub use crate::http::TOKEN_ENV_PREFIX;

/// Builds the connector and policy of a `kind = "spark-standalone"` spec.
pub fn from_spec(file: &str, text: &str, ctx: &BuildContext) -> Result<Built, SpecError> {
    let spec = parse_spec::<SparkJob, SparkRecovery>(file, text)?;
    let value_err = |field: &str, message: String| SpecError::Value {
        file: file.into(),
        field: field.into(),
        message,
    };
    spec.job
        .validate()
        .map_err(|(field, message)| value_err(&field, message))?;
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
    let ca_pem = read_ca(&job).map_err(|m| value_err("job.ca_file", m))?;
    let recovery = spec.recovery.clone().unwrap_or_default();
    let enabled = recovery.enabled;
    let connector =
        SparkStandalone::with_ca(job, &recovery, token, ca_pem.as_deref()).map_err(|m| {
            value_err(
                if ca_pem.is_some() {
                    "job.ca_file"
                } else {
                    "job"
                },
                m,
            )
        })?;
    Ok(Built {
        connector: Arc::new(connector),
        policy: spec.policy(Duration::from_secs(2), enabled),
        durable: spec.durable,
    })
}

/// The PEM text of `job.ca_file`, if set.
pub(super) fn read_ca(job: &SparkJob) -> Result<Option<Vec<u8>>, String> {
    match &job.ca_file {
        None => Ok(None),
        Some(path) => std::fs::read(path).map(Some).map_err(|e| {
            format!(
                "cannot read CA file {}: {e} (give the PEM file of the CA that signed the master's certificate)",
                path.display()
            )
        }),
    }
}
