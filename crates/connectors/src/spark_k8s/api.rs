//! The Kubernetes API as the connector uses it, through `kube`: the kubeconfig (read when the
//! spec is built, so a bad file or context is a spec error), a client made on first use (kube's
//! credential plugins are async), and the four calls: get a pod, list pods by label, delete a
//! pod, read a pod's log.
//!
//! ## Guarantees
//! - Every failure is a [`KubeError`] that says whether the API server answered definitely
//!   (`404`, `409`, `403`...) or not at all (unreachable, timeout, 5xx): only the latter is
//!   `Unknown` to the engine.
use std::{path::PathBuf, time::Duration};

use k8s_openapi::api::core::v1::Pod;
use kube::{
    api::{DeleteParams, ListParams, LogParams},
    config::{KubeConfigOptions, Kubeconfig},
    Api, Client, Config,
};
use tokio::sync::OnceCell;

/// Where the API server is and how to reach it.
#[derive(Clone)]
pub struct KubeTarget {
    /// The kubeconfig as read (paths in it made absolute by kube).
    pub kubeconfig: Kubeconfig,
    /// The file it came from, handed to spark-submit as `KUBECONFIG`.
    pub path: Option<PathBuf>,
    /// The context used (`None`: the current one).
    pub context: Option<String>,
    /// The API server's URL of that context (`https://api:6443`).
    pub server: String,
}

impl std::fmt::Debug for KubeTarget {
    // The kubeconfig holds credentials: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeTarget")
            .field("path", &self.path)
            .field("context", &self.context)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl KubeTarget {
    /// Reads `path` (else `KUBECONFIG`, else `~/.kube/config`) and finds `context`'s server.
    /// `Err`: the spec field at fault (`job.kubeconfig` or `job.context`) and why.
    pub fn load(
        path: Option<PathBuf>,
        context: Option<String>,
    ) -> Result<KubeTarget, (&'static str, String)> {
        let file = |m: String| ("job.kubeconfig", m);
        let ctx_err = |m: String| ("job.context", m);
        let (kubeconfig, path) = match path {
            Some(p) => (
                Kubeconfig::read_from(&p)
                    .map_err(|e| file(format!("cannot read kubeconfig {}: {e}", p.display())))?,
                Some(p),
            ),
            None => {
                let env = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty());
                let k = Kubeconfig::read().map_err(|e| {
                    file(format!(
                        "cannot read a kubeconfig ({e}): set job.kubeconfig, or KUBECONFIG, or write ~/.kube/config"
                    ))
                })?;
                (k, env.map(PathBuf::from))
            }
        };
        let name = context
            .clone()
            .or_else(|| kubeconfig.current_context.clone())
            .ok_or_else(|| {
                ctx_err("the kubeconfig has no current-context: set job.context".into())
            })?;
        let ctx = kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.context.as_ref())
            .ok_or_else(|| ctx_err(format!("the kubeconfig has no context {name:?}")))?;
        let server = kubeconfig
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .and_then(|c| c.cluster.as_ref()?.server.clone())
            .ok_or_else(|| {
                file(format!(
                    "the kubeconfig's cluster {:?} has no server",
                    ctx.cluster
                ))
            })?;
        Ok(KubeTarget {
            kubeconfig,
            path,
            context,
            server: server.trim_end_matches('/').to_string(),
        })
    }
}

/// An API call that did not give what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KubeError {
    /// The API server answered with this `Status` (definite: 404, 409, 403, 422...).
    #[error("the Kubernetes API server answered {code} {reason}: {message}")]
    Answered {
        /// The HTTP status.
        code: u16,
        /// `NotFound`, `AlreadyExists`, `Forbidden`...
        reason: String,
        /// Its message.
        message: String,
    },
    /// No definite answer: unreachable, timeout, 5xx, an unreadable reply, no client.
    #[error("the Kubernetes API server at {server} did not answer: {reason}")]
    NoAnswer {
        /// The server.
        server: String,
        /// Why.
        reason: String,
    },
}

impl KubeError {
    /// Whether the server said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, KubeError::Answered { code: 404, .. })
    }
}

/// The client of one target, made on first use.
pub struct Kube {
    target: KubeTarget,
    namespace: String,
    timeout: Duration,
    client: OnceCell<Client>,
}

impl std::fmt::Debug for Kube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kube")
            .field("target", &self.target)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Kube {
    /// A client of `target`, for pods in `namespace`, each request bounded by `timeout`.
    pub fn new(target: KubeTarget, namespace: String, timeout: Duration) -> Kube {
        Kube {
            target,
            namespace,
            timeout,
            client: OnceCell::new(),
        }
    }

    /// The target.
    pub fn target(&self) -> &KubeTarget {
        &self.target
    }

    fn no_answer(&self, reason: impl std::fmt::Display) -> KubeError {
        KubeError::NoAnswer {
            server: self.target.server.clone(),
            reason: reason.to_string(),
        }
    }

    fn error(&self, e: kube::Error) -> KubeError {
        match e {
            kube::Error::Api(s) if s.code < 500 && s.code != 429 => KubeError::Answered {
                code: s.code,
                reason: s.reason.clone(),
                message: s.message.clone(),
            },
            other => self.no_answer(other),
        }
    }

    async fn pods(&self) -> Result<Api<Pod>, KubeError> {
        let client = self
            .client
            .get_or_try_init(|| async {
                let options = KubeConfigOptions {
                    context: self.target.context.clone(),
                    ..KubeConfigOptions::default()
                };
                let mut config =
                    Config::from_custom_kubeconfig(self.target.kubeconfig.clone(), &options)
                        .await
                        .map_err(|e| self.no_answer(format!("kubeconfig: {e}")))?;
                config.connect_timeout = Some(self.timeout);
                config.read_timeout = Some(self.timeout);
                config.write_timeout = Some(self.timeout);
                Client::try_from(config).map_err(|e| self.no_answer(e))
            })
            .await?;
        Ok(Api::namespaced(client.clone(), &self.namespace))
    }

    /// Pod `name`.
    pub async fn pod(&self, name: &str) -> Result<Pod, KubeError> {
        let api = self.pods().await?;
        self.bounded(api.get(name)).await
    }

    /// Pods matching label selector `selector`.
    pub async fn pods_with(&self, selector: &str) -> Result<Vec<Pod>, KubeError> {
        let api = self.pods().await?;
        let lp = ListParams::default().labels(selector);
        Ok(self.bounded(api.list(&lp)).await?.items)
    }

    /// Deletes pod `name` (grace period: the pod's own).
    pub async fn delete(&self, name: &str) -> Result<(), KubeError> {
        let api = self.pods().await?;
        self.bounded(api.delete(name, &DeleteParams::background()))
            .await
            .map(|_| ())
    }

    /// Pod `name`'s log (its first container), whole.
    pub async fn log(&self, name: &str) -> Result<String, KubeError> {
        let api = self.pods().await?;
        self.bounded(api.logs(name, &LogParams::default())).await
    }

    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, KubeError> {
        // kube's timeouts cover connect/read/write; this covers the whole call.
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), call).await {
            Ok(r) => r.map_err(|e| self.error(e)),
            Err(_) => Err(self.no_answer(format!("no answer within {:?}", self.timeout))),
        }
    }
}
