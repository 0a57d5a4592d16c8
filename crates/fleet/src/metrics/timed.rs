//! Backend request latency: a decorator around a run's connector that times its submit, status,
//! cancel and find-by-tag calls into `tether_backend_request_seconds`, the one place every
//! backend request of the worker passes.
use std::{sync::Arc, time::Instant};

use async_trait::async_trait;
use tether_core::{
    connector::{
        CancelError, Elsewhere, FindByTag, HostBound, JobRef, Logs, RecoveryShape, SubmitError,
        SubmitRequest,
    },
    ids::{ExternalId, Tag},
    observe::{JobStatus, Lookup},
    placement::Placement,
    Connector,
};

use super::Metrics;

/// Wraps `inner` so its backend calls are timed in `metrics`.
pub fn timed(inner: Arc<dyn Connector>, metrics: Metrics) -> Arc<dyn Connector> {
    Arc::new(Timed { inner, metrics })
}

struct Timed {
    inner: Arc<dyn Connector>,
    metrics: Metrics,
}

impl Timed {
    fn record(&self, operation: &'static str, outcome: &'static str, since: Instant) {
        self.metrics
            .request(self.inner.kind(), operation, outcome, since.elapsed());
    }
}

#[async_trait]
impl Connector for Timed {
    fn kind(&self) -> &str {
        self.inner.kind()
    }
    fn default_poll_interval(&self) -> std::time::Duration {
        self.inner.default_poll_interval()
    }
    async fn submit(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        let since = Instant::now();
        let result = self.inner.submit(req).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(SubmitError::Fenced(_)) => "fenced",
            Err(SubmitError::Rejected { .. }) => "rejected",
            Err(SubmitError::Unavailable { .. }) => "unavailable",
            Err(SubmitError::Ambiguous { .. }) => "ambiguous",
            Err(SubmitError::Lost { .. }) => "lost",
            Err(_) => "error",
        };
        self.record("submit", outcome, since);
        result
    }
    async fn status(&self, job: &JobRef) -> JobStatus {
        let since = Instant::now();
        let status = self.inner.status(job).await;
        let outcome = match &status {
            JobStatus::Active { .. } => "active",
            JobStatus::Succeeded { .. } => "succeeded",
            JobStatus::Failed { .. } => "failed",
            JobStatus::NotFound { .. } => "not_found",
            JobStatus::Mismatch { .. } => "mismatch",
            JobStatus::Unknown { .. } => "unknown",
        };
        self.record("status", outcome, since);
        status
    }
    async fn wait_change(&self, job: &JobRef, max: std::time::Duration) {
        self.inner.wait_change(job, max).await
    }
    fn notices_changes(&self) -> bool {
        self.inner.notices_changes()
    }
    async fn cancel(&self, job: &JobRef) -> Result<(), CancelError> {
        let since = Instant::now();
        let result = self.inner.cancel(job).await;
        self.record("cancel", if result.is_ok() { "ok" } else { "error" }, since);
        result
    }
    fn find_by_tag(&self) -> Option<&dyn FindByTag> {
        self.inner.find_by_tag().map(|_| self as &dyn FindByTag)
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
        self.inner.host_bound().map(|_| self as &dyn HostBound)
    }
}

#[async_trait]
impl FindByTag for Timed {
    async fn find_by_tag(&self, tag: &Tag) -> Lookup {
        let since = Instant::now();
        let lookup = match self.inner.find_by_tag() {
            Some(f) => f.find_by_tag(tag).await,
            None => Lookup::Unsupported,
        };
        let outcome = match &lookup {
            Lookup::Found { .. } => "found",
            Lookup::Absent => "absent",
            Lookup::Unknown { .. } => "unknown",
            _ => "unsupported",
        };
        self.record("find_by_tag", outcome, since);
        lookup
    }
}

impl HostBound for Timed {
    fn placement(&self) -> Placement {
        self.inner
            .host_bound()
            .expect("Timed is host-bound only when its inner connector is")
            .placement()
    }
    fn rebind(&self, recorded: &Placement) -> Result<Arc<dyn Connector>, Elsewhere> {
        let inner = self
            .inner
            .host_bound()
            .expect("Timed is host-bound only when its inner connector is")
            .rebind(recorded)?;
        Ok(timed(inner, self.metrics.clone()))
    }
}
