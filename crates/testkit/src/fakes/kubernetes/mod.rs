//! A **fake** Kubernetes API server: the core/v1 subset that Spark's `spark-submit` (fabric8
//! client) and tether's `spark-k8s` connector (`kube`) use, over HTTPS with a CA made for the
//! test ([`TestCa`]) and a bearer token. It is not Kubernetes: nothing schedules or runs pods.
//! **The test plays the kubelet** (and, where needed, Spark's driver creating executor pods):
//! [`FakeKubernetes::set_running`], [`FakeKubernetes::succeed`], [`FakeKubernetes::fail`],
//! [`FakeKubernetes::annotate`], [`FakeKubernetes::append_log`], [`FakeKubernetes::create`];
//! or, with [`FakeKubernetes::fate`], an "auto-kubelet" moves each pod by a [`Fate`] chosen from
//! the pod itself (see [`kubelet`]).
//!
//! It follows the API's documented behaviour for what it serves:
//! - Pods, configmaps and services under `/api/v1/namespaces/{ns}/{plural}`, and network
//!   policies under `/apis/networking.k8s.io/v1/...` (Spark 4.3 applies one): `POST` creates,
//!   with name uniqueness: a second create of a name answers `409` with a `Status` object whose
//!   `reason` is `AlreadyExists`; each object gets `uid`, `creationTimestamp` and a
//!   `resourceVersion` that grows with every change; a new pod is `Pending`.
//! - `GET` of one object (or of a pod's `/status` subresource); `404` `Status` `NotFound`.
//! - `GET` of a collection (also across namespaces, `/api/v1/pods`) with `labelSelector` (`=`,
//!   `==`, `!=`, exists, `!`, `in`, `notin`) and `fieldSelector=metadata.name=`; `watch=true`
//!   sends one `ADDED` event per matching object, newline-delimited, and ends the watch.
//! - `PATCH` as server-side apply (`application/apply-patch+yaml`, with a JSON body: creates or
//!   replaces the applied fields) or as a JSON merge patch.
//! - `DELETE` with a grace period (`gracePeriodSeconds` in the query or `DeleteOptions` body,
//!   pods default to 30 s): `0` removes at once; otherwise the pod gets `deletionTimestamp` and
//!   goes when the period has passed or the test calls [`FakeKubernetes::finish_deletions`].
//!   Removing an object removes every object whose `ownerReferences` name its uid (the garbage
//!   collector's background propagation), recursively: the driver pod takes its configmap,
//!   service and executor pods with it.
//! - `GET .../pods/{name}/log` with `timestamps`, `tailLines`, `sinceTime` (`follow` is
//!   accepted: the log so far is sent and the stream ends); `400` while the pod is `Pending`.
//! - Every request needs `Authorization: Bearer <token>` (when a token is set), else `401`.
//! - Faults: [`FakeKubernetes::outage`] (`503` or a dropped connection for every request), and
//!   [`crate::http::FakeServer::stop`] for a refused connection.
//!
//! Any other request is answered `404` and reported **loudly** (stderr, and
//! [`FakeKubernetes::unknown_requests`]): the tests that run the real `spark-submit` against
//! this fake assert that list is empty, so a change in what Spark sends breaks a test.
//!
//! ## Caveats
//! - No admission, no validation beyond `metadata.name`, no scheduling, no namespaces as
//!   objects (any namespace exists), no `resourceVersion` preconditions, no long-lived watches,
//!   no `follow` streaming; server-side apply does not track field managers.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::SystemTime,
};

use serde_json::Value;

use crate::http::{FakeServer, Request, TestCa};

pub mod kubelet;
mod routes;
mod store;
#[cfg(test)]
mod tests;

pub use kubelet::Fate;
pub use store::{rfc3339, Kind, Selector};

type FateFn = Arc<dyn Fn(&Value) -> Fate + Send + Sync>;

/// A fault every request gets while it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outage {
    /// `503 ServiceUnavailable`.
    Unavailable,
    /// The connection is closed without an answer.
    Drop,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) objects: store::Objects,
    pub(crate) logs: HashMap<(String, String), Vec<(SystemTime, String)>>,
    pub(crate) token: Option<String>,
    pub(crate) outage: Option<Outage>,
    pub(crate) unknown: Vec<String>,
    pub(crate) requests: u64,
    pub(crate) fate: Option<FateFn>,
    /// The fate of each pod created while [`FakeKubernetes::fate`] was set, by (ns, name).
    pub(crate) fates: HashMap<(String, String), Fate>,
}

impl State {
    /// Records a newly created pod's fate.
    pub(crate) fn created(&mut self, kind: Kind, ns: &str, obj: &Value) {
        if kind != Kind::Pod {
            return;
        }
        if let (Some(f), Some(name)) = (&self.fate, obj["metadata"]["name"].as_str()) {
            let fate = f(obj);
            self.fates.insert((ns.to_string(), name.to_string()), fate);
        }
    }

    fn fate_of(&self, ns: &str, name: &str) -> Option<Fate> {
        self.fates
            .get(&(ns.to_string(), name.to_string()))
            .filter(|f| **f != Fate::Driven)
            .cloned()
    }

    /// One auto-kubelet step of pod `name` (read by a client).
    pub(crate) fn step(&mut self, ns: &str, name: &str) {
        let Some(fate) = self.fate_of(ns, name) else {
            return;
        };
        let mut log = None;
        self.objects.update(Kind::Pod, ns, name, |o| {
            if o["metadata"]["deletionTimestamp"].is_null() {
                log = kubelet::step(o, &fate);
            }
        });
        if let Some(text) = log.filter(|t| !t.is_empty()) {
            let now = SystemTime::now();
            let entry = self.logs.entry((ns.into(), name.into())).or_default();
            entry.extend(text.lines().map(|l| (now, l.to_string())));
        }
    }

    /// A fated pod being deleted gracefully stops (`Failed`, exit 143) until it goes.
    pub(crate) fn deleting(&mut self, ns: &str, name: &str) {
        if self.fate_of(ns, name).is_some() {
            self.objects.update(Kind::Pod, ns, name, kubelet::deleted);
        }
    }
}

/// The running fake API server; dropping it stops it.
pub struct FakeKubernetes {
    /// The server underneath (recorded requests, [`FakeServer::stop`]).
    pub server: FakeServer,
    /// The CA whose PEM a client must trust.
    pub ca: TestCa,
    state: Arc<Mutex<State>>,
}

impl FakeKubernetes {
    /// Starts an API server on a loopback port over HTTPS, requiring `Bearer <token>` if given.
    pub async fn start(token: Option<&str>) -> std::io::Result<FakeKubernetes> {
        let ca = TestCa::new(false);
        let state = Arc::new(Mutex::new(State {
            token: token.map(str::to_string),
            ..State::default()
        }));
        let st = state.clone();
        let server = FakeServer::builder()
            .tls(&ca)
            .fallback(move |r: &Request| routes::route(r, &st))
            .start()
            .await?;
        Ok(FakeKubernetes { server, ca, state })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// Writes a kubeconfig naming this server (its CA in `ca.pem` beside it, bearer `token`,
    /// default namespace `ns`) into `dir`, as `kubectl config` writes one; returns its path.
    pub fn write_kubeconfig(
        &self,
        dir: &std::path::Path,
        ns: &str,
        token: &str,
    ) -> std::io::Result<std::path::PathBuf> {
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, &self.ca.ca_pem)?;
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n    certificate-authority: {ca}\n\
             users:\n- name: tester\n  user:\n    token: {token}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\n    namespace: {ns}\n",
            url = self.url(),
            ca = ca.display()
        );
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// Every request from now on gets `outage` (`None` ends it).
    pub fn outage(&self, outage: Option<Outage>) {
        lock(&self.state).outage = outage;
    }

    /// Requests the fake did not serve (`METHOD target`), in order.
    pub fn unknown_requests(&self) -> Vec<String> {
        lock(&self.state).unknown.clone()
    }

    /// Decides each new pod's [`Fate`] from the pod as created (its args, labels, env).
    pub fn fate(&self, f: impl Fn(&Value) -> Fate + Send + Sync + 'static) {
        lock(&self.state).fate = Some(Arc::new(f));
    }

    /// How many pods were ever created (a refused second create counts nothing).
    pub fn pods_created(&self) -> u64 {
        lock(&self.state).objects.pods_created
    }

    /// A copy of object `name` of `kind` in `ns`.
    pub fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        lock(&self.state).objects.get(kind, ns, name).cloned()
    }

    /// A copy of pod `name`.
    pub fn pod(&self, ns: &str, name: &str) -> Option<Value> {
        self.get(Kind::Pod, ns, name)
    }

    /// Objects of `kind` in `ns` matching label selector `selector` (`""`: all).
    pub fn list(&self, kind: Kind, ns: &str, selector: &str) -> Vec<Value> {
        let sel = Selector::parse(selector).expect("a valid label selector");
        lock(&self.state).objects.list(kind, Some(ns), &sel)
    }

    /// Creates `obj` as a client would (the test playing the driver creating executor pods).
    /// `Err` carries the `Status` of a refused create.
    pub fn create(&self, kind: Kind, ns: &str, obj: Value) -> Result<Value, Value> {
        let mut s = lock(&self.state);
        match s.objects.create(kind, ns, obj) {
            (201, o) => {
                s.created(kind, ns, &o);
                Ok(o)
            }
            (_, status) => Err(status),
        }
    }

    /// Removes pod `name` at once, with what it owns (evicted, or deleted by someone else).
    pub fn remove_pod(&self, ns: &str, name: &str) {
        let key = (Kind::Pod, ns.to_string(), name.to_string());
        lock(&self.state).objects.remove(&key);
    }

    /// Ends every graceful deletion in progress now.
    pub fn finish_deletions(&self) {
        lock(&self.state).objects.finish_deletions();
    }

    /// Sets annotation `key` of pod `name` (Spark 4 writes `spark.exit-exception`).
    pub fn annotate(&self, ns: &str, name: &str, key: &str, value: &str) {
        lock(&self.state).objects.update(Kind::Pod, ns, name, |o| {
            o["metadata"]["annotations"][key] = value.into();
        });
    }

    /// Appends `text` (split into lines) to pod `name`'s log, stamped now.
    pub fn append_log(&self, ns: &str, name: &str, text: &str) {
        let now = SystemTime::now();
        let mut s = lock(&self.state);
        let log = s.logs.entry((ns.into(), name.into())).or_default();
        log.extend(text.lines().map(|l| (now, l.to_string())));
    }

    /// The kubelet started the pod's containers: `Running`, container `running`.
    pub fn set_running(&self, ns: &str, name: &str) {
        self.set_status(ns, name, "Running", kubelet::running(), None);
    }

    /// The containers exited 0: `Succeeded`, terminated `Completed`.
    pub fn succeed(&self, ns: &str, name: &str) {
        self.terminate(ns, name, "Succeeded", "Completed", 0, None);
    }

    /// The main container ended with `reason` (`Error`, `OOMKilled`) and `exit_code`: `Failed`.
    pub fn fail(&self, ns: &str, name: &str, reason: &str, exit_code: i32) {
        self.terminate(ns, name, "Failed", reason, exit_code, None);
    }

    /// The pod failed as a whole (`status.reason`, e.g. `Evicted`), with `message`.
    pub fn fail_pod(&self, ns: &str, name: &str, reason: &str, message: &str) {
        self.terminate(ns, name, "Failed", "Error", 137, Some((reason, message)));
    }

    fn terminate(
        &self,
        ns: &str,
        name: &str,
        phase: &str,
        reason: &str,
        exit_code: i32,
        pod_reason: Option<(&str, &str)>,
    ) {
        let state = kubelet::terminated(name, reason, exit_code);
        self.set_status(ns, name, phase, state, pod_reason);
    }

    fn set_status(
        &self,
        ns: &str,
        name: &str,
        phase: &str,
        container_state: Value,
        pod_reason: Option<(&str, &str)>,
    ) {
        lock(&self.state).objects.update(Kind::Pod, ns, name, |o| {
            kubelet::set_status(o, phase, &container_state, pod_reason);
        });
    }
}

pub(crate) fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
