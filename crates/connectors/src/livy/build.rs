//! From a spec to a [`Livy`] connector: credentials from allowed variables, the CA file, and an
//! HTTP client shared by every spec naming the same Livy ([`LivyFactory`]).
use std::{sync::Arc, time::Duration};

use tether_core::spec::{parse_spec, SpecError};

use super::{spec::LivyJob, Api, Livy, KIND};
use crate::spark_yarn::{hadoop, rm::Rm};
use crate::{
    http::{
        secret_from_env, web_url, Auth, Client, ClientConfig, EnvSecretError, Retry,
        TOKEN_ENV_PREFIX,
    },
    pool::{ClientPool, Endpoint},
    registry::{value_error, BuildContext, Built, ConnectorFactory},
    spark::recovery::SparkRecovery,
};

/// The factory of the `livy` kind; its HTTP clients are shared by endpoint, from the pool it
/// holds (`LivyFactory(pool)`: a pool other HTTP kinds may share).
#[derive(Debug, Clone, Default)]
pub struct LivyFactory(pub ClientPool<reqwest::Client>);

impl ConnectorFactory for LivyFactory {
    fn kind(&self) -> &str {
        KIND
    }

    fn build(&self, file: &str, text: &str, ctx: &BuildContext) -> Result<Built, SpecError> {
        let spec = parse_spec::<LivyJob, SparkRecovery>(file, text)?;
        let value_err = |field: &str, message: String| value_error(file, field, message);
        spec.job
            .validate()
            .map_err(|e| value_err(e.field(), e.to_string()))?;
        let secret = |field: &str, var: &str| {
            secret_from_env(var, &ctx.token_env_allow).map_err(|e| match e {
                EnvSecretError::NotAllowed(_) => value_err(
                    field,
                    format!(
                        "{var:?} may not be read: name a variable starting with {TOKEN_ENV_PREFIX} (e.g. \
                         {TOKEN_ENV_PREFIX}LIVY) or one the worker's configuration allows"
                    ),
                ),
                _ => value_err(
                    field,
                    format!("environment variable {var} is not set (or empty): export the credential in it"),
                ),
            })
        };
        let auth = match (&spec.job.token_env, &spec.job.user, &spec.job.password_env) {
            (Some(var), _, _) => Auth::Bearer(secret("job.token_env", var)?),
            (None, Some(user), Some(var)) => Auth::Basic {
                user: user.clone(),
                password: secret("job.password_env", var)?,
            },
            _ => Auth::None,
        };
        let mut job = spec.job.clone();
        if let Some(path) = job.ca_file.as_mut().filter(|p| p.is_relative()) {
            *path = ctx.base_dir().join(&*path);
        }
        let ca_pem = match &job.ca_file {
            None => None,
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                value_err(
                    "job.ca_file",
                    format!("cannot read CA file {}: {e} (give the PEM file of the CA that signed Livy's certificate)", path.display()),
                )
            })?),
        };
        let timeout = job.request_timeout.0;
        let parsed =
            reqwest::Url::parse(&job.url).map_err(|e| value_err("job.url", e.to_string()))?;
        let endpoint = Endpoint::of(&parsed, ca_pem.clone(), timeout);
        let http = self
            .0
            .get_or_try_make(endpoint, || {
                ClientConfig {
                    ca_pem: ca_pem.clone(),
                    ..ClientConfig::new(timeout)
                }
                .build()
            })
            .map_err(|m| {
                value_err(
                    if ca_pem.is_some() {
                        "job.ca_file"
                    } else {
                        "job"
                    },
                    m,
                )
            })?;
        let client = Client::from_reqwest(http, timeout, auth, Retry::default());
        let api = Api::new(client, &job.url);
        let rm = self.rm(&mut job, ctx, file)?;
        let recovery = spec.recovery.clone().unwrap_or_default();
        let enabled = recovery.enabled;
        let plan = enabled.then(|| job.recovery_plan(&recovery));
        Ok(Built {
            connector: Arc::new(Livy::new(job, api, plan).with_rm(rm)),
            policy: spec.policy(Duration::from_secs(2), enabled),
            durable: spec.durable,
        })
    }
}

impl LivyFactory {
    /// The ResourceManager Livy submits to: `rm_url`, else the `yarn-site.xml` of
    /// `hadoop_conf_dir` (an error if it names none), else of `HADOOP_CONF_DIR`/`YARN_CONF_DIR`
    /// (ignored if it names none: Livy may run Spark locally), else none.
    fn rm(
        &self,
        job: &mut LivyJob,
        ctx: &BuildContext,
        file: &str,
    ) -> Result<Option<Rm>, SpecError> {
        if let Some(dir) = job.hadoop_conf_dir.as_mut().filter(|p| p.is_relative()) {
            *dir = ctx.base_dir().join(&*dir);
        }
        let url = match (&job.rm_url, &job.hadoop_conf_dir) {
            (Some(u), _) => Some(u.clone()),
            (None, Some(dir)) => Some(
                hadoop::rm_url(dir)
                    .map_err(|e| value_error(file, "job.hadoop_conf_dir", e.to_string()))?,
            ),
            (None, None) => ["HADOOP_CONF_DIR", "YARN_CONF_DIR"]
                .iter()
                .filter_map(|v| std::env::var_os(v).filter(|d| !d.is_empty()))
                .find_map(|d| hadoop::rm_url(std::path::Path::new(&d)).ok()),
        };
        let Some(url) = url else { return Ok(None) };
        let parsed = web_url(&url).map_err(|p| {
            value_error(
                file,
                "job.rm_url",
                format!(
                    "{} {p}: write e.g. \"http://rm:8088\"",
                    crate::http::shown(&url)
                ),
            )
        })?;
        let timeout = job.request_timeout.0;
        let http = self
            .0
            .get_or_try_make(Endpoint::of(&parsed, None, timeout), || {
                ClientConfig::new(timeout).build()
            })
            .map_err(|m| value_error(file, "job.rm_url", m))?;
        let client = Client::from_reqwest(http, timeout, Auth::None, Retry::default());
        job.rm_url = Some(url.clone());
        Ok(Some(Rm::new(client, &url)))
    }
}
