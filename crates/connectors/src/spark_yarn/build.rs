//! From a spec to a [`SparkYarn`]: the Hadoop configuration (Kerberos refused, the RM address),
//! the recovery plan, and an HTTP client shared by every spec naming the same RM.
use std::{path::PathBuf, sync::Arc, time::Duration};

use tether_core::spec::SpecError;

use super::{hadoop, rm::Rm, spec::YarnJob, SparkYarn};
use crate::{
    http::{web_url, Auth, Client, ClientConfig, Retry},
    pool::{ClientPool, Endpoint},
    registry::{BuildContext, Built, ConnectorFactory},
    spark::{
        recovery::recovery_plan,
        spec::{resolve_paths, Opened},
    },
};

/// The factory of the `spark-yarn` kind.
#[derive(Debug, Clone, Default)]
pub struct YarnFactory {
    clients: ClientPool<reqwest::Client>,
}

impl ConnectorFactory for YarnFactory {
    fn kind(&self) -> &str {
        super::KIND
    }

    fn build(&self, file: &str, text: &str, ctx: &BuildContext) -> Result<Built, SpecError> {
        let opened = Opened::<YarnJob>::open(file, text)?;
        let spec = &opened.spec;
        let err = |field: &str, message: String| opened.err(field, message);
        let mut job = spec.job.clone();
        let base = ctx.base_dir();
        let conf_dir = job
            .hadoop_conf_dir
            .clone()
            .or_else(|| env_dir("HADOOP_CONF_DIR"))
            .or_else(|| env_dir("YARN_CONF_DIR"))
            .map(|d| if d.is_relative() { base.join(d) } else { d });
        resolve_paths(&base, [job.spark_home.as_mut()]);
        if let Some(dir) = &conf_dir {
            hadoop::check_auth(dir).map_err(|e| err("job.hadoop_conf_dir", e.to_string()))?;
        }
        let rm_url = match (&job.rm_url, &conf_dir) {
            (Some(u), _) => u.clone(),
            (None, Some(dir)) => {
                hadoop::rm_url(dir).map_err(|e| err("job.rm_url", e.to_string()))?
            }
            (None, None) => {
                return Err(err(
                    "job.rm_url",
                    "no ResourceManager address: set rm_url, or hadoop_conf_dir (or HADOOP_CONF_DIR) to a \
                     directory whose yarn-site.xml names it"
                        .into(),
                ))
            }
        };
        let parsed = web_url(&rm_url).map_err(|p| {
            err(
                "job.rm_url",
                format!(
                    "{} {p}: write e.g. \"http://rm:8088\"",
                    crate::http::shown(&rm_url)
                ),
            )
        })?;
        let timeout = job.request_timeout.0;
        let endpoint = Endpoint::of(&parsed, None, timeout);
        let http = self
            .clients
            .get_or_try_make(endpoint, || ClientConfig::new(timeout).build())
            .map_err(|m| err("job", m))?;
        let client = Client::from_reqwest(http, timeout, Auth::None, Retry::default());
        let recovery = opened.recovery();
        let plan = recovery
            .enabled
            .then(|| recovery_plan(&job.conf, &recovery));
        job.rm_url = Some(rm_url.clone());
        let connector = SparkYarn {
            rm: Rm::new(client, &rm_url),
            conf_dir,
            recovery: plan,
            job,
        };
        Ok(Built {
            connector: Arc::new(connector),
            policy: spec.policy(Duration::from_secs(2), recovery.enabled),
            durable: spec.durable,
        })
    }
}

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}
