//! Local slots of a worker: a decorator around the local connector that holds one slot per
//! running local job, and all of them for a job in the recovery shape.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use tether_core::{
    connector::{
        CancelError, Elsewhere, FindByTag, HostBound, JobRef, Logs, RecoveryShape, SubmitError,
        SubmitRequest,
    },
    ids::{ExternalId, Tag},
    journal::Shape,
    observe::JobStatus,
    placement::Placement,
    Connector,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Wraps `inner` if it is the local connector; other connectors are returned as they are.
/// `total` is the number of permits `slots` was created with.
pub fn limit_local(
    inner: Arc<dyn Connector>,
    slots: Arc<Semaphore>,
    total: usize,
) -> Arc<dyn Connector> {
    if inner.kind() != "local" {
        return inner;
    }
    Arc::new(Slotted {
        inner,
        slots,
        total,
        held: Mutex::default(),
    })
}

struct Slotted {
    inner: Arc<dyn Connector>,
    slots: Arc<Semaphore>,
    total: usize,
    /// Permits held by this run's submissions (one connector is built per run).
    held: Mutex<HashMap<Tag, OwnedSemaphorePermit>>,
}

impl Slotted {
    fn size(&self, shape: Shape) -> u32 {
        match shape {
            // All slots: nothing else of this worker runs beside a recovery job.
            Shape::Recovery => u32::try_from(self.total).unwrap_or(u32::MAX),
            Shape::Normal => 1,
        }
    }
    fn release(&self, tag: &Tag) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tag);
    }
}

#[async_trait]
impl Connector for Slotted {
    fn kind(&self) -> &str {
        self.inner.kind()
    }
    fn default_poll_interval(&self) -> std::time::Duration {
        self.inner.default_poll_interval()
    }
    async fn submit(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        let tag = req.submission.tag.clone();
        let already = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&tag);
        if !already {
            let n = self.size(req.submission.shape);
            // The wait may be long: a lost lease or a cancel ends it (nothing is started), and
            // the local connector confirms the lease again right before it launches.
            let permit = tokio::select! {
                permit = self.slots.clone().acquire_many_owned(n) => {
                    permit.map_err(|_| SubmitError::Unavailable {
                        reason: "the worker is shutting down".into(),
                    })?
                }
                _ = req.fence.interrupted() => {
                    return Err(SubmitError::Unavailable {
                        reason: "the lease was lost or the run cancelled while waiting for a local slot; nothing was started".into(),
                    });
                }
            };
            self.held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(tag.clone(), permit);
        }
        let result = self.inner.submit(req).await;
        if result.is_err() {
            self.release(&tag);
        }
        result
    }
    async fn status(&self, job: &JobRef) -> JobStatus {
        let status = self.inner.status(job).await;
        let tag = &job.submission.tag;
        match &status {
            JobStatus::Active { .. } => {
                // A job adopted or reconnected after a takeover counts against our slots too,
                // without waiting: it is already running.
                let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                if !held.contains_key(tag) {
                    if let Ok(p) = self.slots.clone().try_acquire_owned() {
                        held.insert(tag.clone(), p);
                    }
                }
            }
            JobStatus::Unknown { .. } => {}
            _ => self.release(tag),
        }
        status
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
    fn host_bound(&self) -> Option<&dyn HostBound> {
        self.inner.host_bound().map(|_| self as &dyn HostBound)
    }
}

impl HostBound for Slotted {
    fn placement(&self) -> Placement {
        self.inner
            .host_bound()
            .expect("Slotted is host-bound only when its inner connector is")
            .placement()
    }
    fn rebind(&self, recorded: &Placement) -> Result<Arc<dyn Connector>, Elsewhere> {
        let inner = self
            .inner
            .host_bound()
            .expect("Slotted is host-bound only when its inner connector is")
            .rebind(recorded)?;
        Ok(limit_local(inner, self.slots.clone(), self.total))
    }
}
