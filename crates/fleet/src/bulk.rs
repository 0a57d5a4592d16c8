//! Bulk observation: one observer per backend endpoint coalesces the status requests of every
//! run on that endpoint into one bulk request per tick ([`BulkStatus`]).
//!
//! A worker wraps each run's connector with [`Observers::wrap`]; the engine keeps calling
//! `status` once per run and poll interval as before, but the wrapped `status` only queues the
//! question. The endpoint's observer task answers everything queued with one
//! [`BulkStatus::fetch`] (each run's own connector then judges its job from that answer), at
//! most once per [`Observers::gap`] and never two at a time.
//!
//! ## Guarantees
//! - Each run still gets its own [`JobStatus`] and its own `decide`: the observer only changes
//!   how the answer is fetched.
//! - An answer is never older than the question: a question is served by a bulk request that
//!   starts after it was queued (a request in flight when it arrives does not serve it).
//! - A failed bulk call is [`JobStatus::Unknown`] for every run it covers, never lost.
//! - A run the bulk answer does not settle (`None`: absent from it, ended, unverifiable) gets
//!   its connector's own `status` (identity rules unchanged).
//! - Backend load: at most one bulk request per endpoint per `gap` (plus the per-run fallbacks),
//!   whatever the number of runs.
//!
//! ## Caveats
//! - Under load a status answer waits up to `gap` (plus the bulk call) for the next tick; with
//!   the default 1 s against poll intervals of seconds the decisions come as quickly as before.
//! - An endpoint's observer task lives as long as its [`Observers`] (a few per worker).
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use tether_core::{
    connector::{
        BulkStatus, CancelError, FindByTag, HostBound, JobRef, Logs, RecoveryShape, SubmitError,
        SubmitRequest,
    },
    ids::ExternalId,
    observe::JobStatus,
    Connector,
};
use tokio::sync::{mpsc, oneshot};

/// The default least time between two bulk requests to one endpoint: at most one request per
/// second per endpoint (the target is 2/s at 10,000 runs).
pub const DEFAULT_GAP: Duration = Duration::from_secs(1);

/// A question queued for an endpoint's next bulk request.
struct Ask {
    connector: Arc<dyn Connector>,
    job: JobRef,
    reply: Reply,
}

/// Where an answer goes.
enum Reply {
    /// A drive awaiting its status.
    Wait(oneshot::Sender<JobStatus>),
    /// A run waiting without a task (a parked run, see [`Endpoint::ask`]).
    Then(Box<dyn FnOnce(JobStatus) + Send>),
}

impl Reply {
    fn send(self, status: JobStatus) {
        match self {
            Reply::Wait(tx) => {
                let _ = tx.send(status);
            }
            Reply::Then(then) => then(status),
        }
    }

    /// Nobody waits for the answer any more (the drive's task ended).
    fn is_closed(&self) -> bool {
        match self {
            Reply::Wait(tx) => tx.is_closed(),
            Reply::Then(_) => false,
        }
    }
}

/// One spec's way to its endpoint's observer, for runs that wait without a task.
#[derive(Clone)]
pub struct Endpoint {
    queue: mpsc::UnboundedSender<Ask>,
    /// The spec's own connector (it judges its runs from the bulk answer).
    connector: Arc<dyn Connector>,
}

impl Endpoint {
    /// Queues the status of `job` for the endpoint's next bulk request; `then` gets it, on the
    /// observer's task (keep it short: hand it on). Same rules as a wrapped connector's
    /// `status`: never older than this call, unknown if the bulk call fails, the connector's own
    /// `status` for what the bulk answer does not settle (or if the observer is gone).
    pub fn ask(&self, job: JobRef, then: Box<dyn FnOnce(JobStatus) + Send>) {
        let ask = Ask {
            connector: self.connector.clone(),
            job,
            reply: Reply::Then(then),
        };
        if let Err(mpsc::error::SendError(ask)) = self.queue.send(ask) {
            tokio::spawn(async move {
                let status = ask.connector.status(&ask.job).await;
                ask.reply.send(status);
            });
        }
    }
}

/// The observers of one process (a worker), one per endpoint.
#[derive(Clone)]
pub struct Observers {
    /// `false`: every run asks its own status (`TETHER_BULK_STATUS=off`).
    enabled: bool,
    gap: Duration,
    endpoints: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Ask>>>>,
}

impl Default for Observers {
    fn default() -> Self {
        Observers::new(DEFAULT_GAP)
    }
}

impl Observers {
    /// Observers sending at most one bulk request per endpoint every `gap`.
    pub fn new(gap: Duration) -> Observers {
        Observers {
            enabled: true,
            gap,
            endpoints: Arc::default(),
        }
    }

    /// No coalescing: each run asks its own status, as before bulk observation (for
    /// comparison in the benchmarks, and as a way out should a backend's list misbehave).
    pub fn disabled() -> Observers {
        Observers {
            enabled: false,
            ..Observers::default()
        }
    }

    /// [`Observers::default`], or [`Observers::disabled`] with `TETHER_BULK_STATUS=off`.
    pub fn from_env() -> Result<Observers, String> {
        match std::env::var("TETHER_BULK_STATUS") {
            Err(_) => Ok(Observers::default()),
            Ok(v) if v == "on" => Ok(Observers::default()),
            Ok(v) if v == "off" => Ok(Observers::disabled()),
            Ok(v) => Err(format!(
                "TETHER_BULK_STATUS={v:?}: write `on` (one status request per backend endpoint \
                 and tick, the default) or `off` (one per run)"
            )),
        }
    }

    /// The least time between two bulk requests to one endpoint.
    pub fn gap(&self) -> Duration {
        self.gap
    }

    /// `connector` with its `status` served by its endpoint's observer, if it offers
    /// [`BulkStatus`]; otherwise `connector` itself (per-run status). Needs a Tokio runtime.
    pub fn wrap(&self, connector: Arc<dyn Connector>) -> Arc<dyn Connector> {
        self.wrap_endpoint(connector).0
    }

    /// [`Observers::wrap`], and the spec's [`Endpoint`] if its status goes through an observer.
    pub fn wrap_endpoint(
        &self,
        connector: Arc<dyn Connector>,
    ) -> (Arc<dyn Connector>, Option<Endpoint>) {
        let Some(bulk) = connector.bulk_status().filter(|_| self.enabled) else {
            return (connector, None);
        };
        let endpoint = bulk.endpoint();
        let queue = {
            let mut map = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(endpoint.clone())
                .or_insert_with(|| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(observe(endpoint, rx, self.gap));
                    tx
                })
                .clone()
        };
        let endpoint = Endpoint {
            queue: queue.clone(),
            connector: connector.clone(),
        };
        let wrapped = Arc::new(Observed {
            inner: connector,
            queue,
        });
        (wrapped, Some(endpoint))
    }
}

/// An endpoint's observer: waits for questions, then answers all queued ones with one bulk
/// call, at most once per `gap`. Ends when every sender is gone.
async fn observe(endpoint: String, mut rx: mpsc::UnboundedReceiver<Ask>, gap: Duration) {
    let mut last: Option<tokio::time::Instant> = None;
    while let Some(first) = rx.recv().await {
        if let Some(last) = last {
            tokio::time::sleep_until(last + gap).await;
        }
        let mut asks = vec![first];
        while let Ok(more) = rx.try_recv() {
            asks.push(more);
        }
        // Questions whose run stopped waiting (its task ended) need no answer.
        asks.retain(|a| !a.reply.is_closed());
        if asks.is_empty() {
            continue;
        }
        last = Some(tokio::time::Instant::now());
        let Some(bulk) = asks[0].connector.bulk_status() else {
            continue;
        };
        // References, not copies: 100,000 runs asking at once made 100,000 copies of their
        // job (id, tag, shape) for a call that reads none of them in today's connectors.
        let jobs: Vec<&JobRef> = asks.iter().map(|a| &a.job).collect();
        let answer = bulk.fetch(&jobs).await;
        let covered = jobs.len();
        drop(jobs);
        tracing::debug!(%endpoint, runs = covered, ok = answer.is_ok(), "bulk status");
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                let reason = format!(
                    "the bulk status request for {} runs failed: {}",
                    asks.len(),
                    e.reason
                );
                for a in asks {
                    a.reply.send(JobStatus::Unknown {
                        reason: reason.clone(),
                    });
                }
                continue;
            }
        };
        for a in asks {
            // Each run is judged by its own connector (its spec, its caches).
            let judged = a
                .connector
                .bulk_status()
                .and_then(|b| b.judge(&answer, &a.job));
            match judged {
                Some(st) => a.reply.send(st),
                // Not settled by the bulk answer: the run's own status call, beside the next
                // ticks (it may read a log).
                None => {
                    tokio::spawn(async move {
                        let st = a.connector.status(&a.job).await;
                        a.reply.send(st);
                    });
                }
            }
        }
    }
}

/// A connector whose `status` goes through its endpoint's observer.
struct Observed {
    inner: Arc<dyn Connector>,
    queue: mpsc::UnboundedSender<Ask>,
}

#[async_trait]
impl Connector for Observed {
    fn kind(&self) -> &str {
        self.inner.kind()
    }
    fn default_poll_interval(&self) -> Duration {
        self.inner.default_poll_interval()
    }
    async fn submit(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        self.inner.submit(req).await
    }
    async fn status(&self, job: &JobRef) -> JobStatus {
        let (reply, answer) = oneshot::channel();
        let ask = Ask {
            connector: self.inner.clone(),
            job: job.clone(),
            reply: Reply::Wait(reply),
        };
        if self.queue.send(ask).is_err() {
            return self.inner.status(job).await;
        }
        match answer.await {
            Ok(st) => st,
            // The observer task is gone (its runtime shuts down): ask directly.
            Err(_) => self.inner.status(job).await,
        }
    }
    async fn wait_change(&self, job: &JobRef, max: std::time::Duration) {
        self.inner.wait_change(job, max).await
    }
    fn notices_changes(&self) -> bool {
        self.inner.notices_changes()
    }
    async fn cancel(&self, job: &JobRef) -> Result<(), CancelError> {
        self.inner.cancel(job).await
    }
    fn find_by_tag(&self) -> Option<&dyn FindByTag> {
        self.inner.find_by_tag()
    }
    fn logs(&self) -> Option<&dyn Logs> {
        self.inner.logs()
    }
    fn events(&self) -> Option<&dyn tether_core::connector::BackendEvents> {
        self.inner.events()
    }
    fn recovery(&self) -> Option<&dyn RecoveryShape> {
        self.inner.recovery()
    }
    fn idempotent_submit(&self) -> bool {
        self.inner.idempotent_submit()
    }
    fn host_bound(&self) -> Option<&dyn HostBound> {
        self.inner.host_bound()
    }
    fn bulk_status(&self) -> Option<&dyn BulkStatus> {
        self.inner.bulk_status()
    }
}

#[cfg(test)]
#[path = "bulk_tests.rs"]
mod tests;
