//! [`ScriptedConnector`]: a fake backend answering from a script, for engine tests.
use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, MutexGuard},
};

use async_trait::async_trait;
use tether_core::{
    connector::{CancelError, FindByTag, JobRef, SubmitError, SubmitRequest},
    ids::{ExternalId, Tag},
    observe::{FailureClass, JobStatus, Lookup},
    Connector,
};
use tokio::sync::watch;

/// A call the connector counts (see [`ScriptedConnector::calls`]); also what
/// [`ScriptedConnector::hold`] can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Call {
    /// `submit` was entered (before the fence).
    Submit,
    /// A job was created: `submit` passed the fence and answered with an id.
    Created,
    /// `status`.
    Status,
    /// `cancel`.
    Cancel,
    /// `find_by_tag`.
    Lookup,
}

#[derive(Default)]
struct Script {
    statuses: VecDeque<JobStatus>,
    last_status: Option<JobStatus>,
    lookups: VecDeque<Lookup>,
    last_lookup: Option<Lookup>,
    submit_errors: VecDeque<SubmitError>,
    cancel_errors: VecDeque<CancelError>,
    calls: HashMap<Call, usize>,
    tags: Vec<Tag>,
}

/// A fake [`Connector`] for tests: status calls and tag look-ups answer from a script (the
/// last answer repeats), submits answer `job-1`, `job-2`, … unless told to fail, and every
/// call is counted.
///
/// Like a real connector, `submit` confirms the request's fence right before "creating" the
/// job: a lost lease creates nothing. A successful `cancel` makes the next status `Failed`
/// (killed) unless the script says otherwise.
pub struct ScriptedConnector {
    kind: String,
    lookups: bool,
    script: Mutex<Script>,
    /// While `true`, the calls of that kind wait (see [`ScriptedConnector::hold`]).
    holds: HashMap<Call, watch::Sender<bool>>,
}

impl ScriptedConnector {
    /// A connector of kind `scripted` whose status calls answer `statuses` in order (then the
    /// last one again; `Unknown` if empty). `find_by_tag` is offered and answers `Absent`
    /// unless scripted with [`ScriptedConnector::lookups`].
    pub fn new(statuses: Vec<JobStatus>) -> Self {
        let holds = [Call::Submit, Call::Status, Call::Cancel, Call::Lookup]
            .into_iter()
            .map(|c| (c, watch::channel(false).0))
            .collect();
        ScriptedConnector {
            kind: "scripted".into(),
            lookups: true,
            script: Mutex::new(Script {
                statuses: statuses.into(),
                ..Script::default()
            }),
            holds,
        }
    }

    /// Without the `find_by_tag` capability.
    pub fn without_lookups(mut self) -> Self {
        self.lookups = false;
        self
    }

    /// Appends answers of tag look-ups (the last repeats).
    pub fn lookups(self, answers: Vec<Lookup>) -> Self {
        self.script().lookups.extend(answers);
        self
    }

    /// Appends status answers (the last repeats).
    pub fn push_status(&self, status: JobStatus) {
        self.script().statuses.push_back(status);
    }

    /// Replaces the script: every status call answers `status` from now on.
    pub fn set_status(&self, status: JobStatus) {
        let mut s = self.script();
        s.statuses.clear();
        s.last_status = Some(status);
    }

    /// The next submit fails with `error` (queued: several calls queue several failures).
    pub fn fail_submit(&self, error: SubmitError) {
        self.script().submit_errors.push_back(error);
    }

    /// The next cancel fails with `error`.
    pub fn fail_cancel(&self, error: CancelError) {
        self.script().cancel_errors.push_back(error);
    }

    /// Calls of kind `call` wait until [`ScriptedConnector::release`] (they are counted on entry).
    pub fn hold(&self, call: Call) {
        if let Some(h) = self.holds.get(&call) {
            h.send_replace(true);
        }
    }

    /// Lets held calls of kind `call` go on.
    pub fn release(&self, call: Call) {
        if let Some(h) = self.holds.get(&call) {
            h.send_replace(false);
        }
    }

    /// How many calls of this kind were made.
    pub fn calls(&self, call: Call) -> usize {
        self.script().calls.get(&call).copied().unwrap_or(0)
    }

    /// The tags of the jobs created, in order.
    pub fn created_tags(&self) -> Vec<Tag> {
        self.script().tags.clone()
    }

    fn script(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts the call, then waits while it is held.
    async fn enter(&self, call: Call) {
        *self.script().calls.entry(call).or_default() += 1;
        if let Some(h) = self.holds.get(&call) {
            let mut rx = h.subscribe();
            // An error means the sender is gone, which cannot happen while `self` lives.
            let _ = rx.wait_for(|held| !held).await;
        }
    }
}

fn next<T: Clone>(queue: &mut VecDeque<T>, last: &mut Option<T>) -> Option<T> {
    if let Some(v) = queue.pop_front() {
        *last = Some(v);
    }
    last.clone()
}

#[async_trait]
impl Connector for ScriptedConnector {
    fn kind(&self) -> &str {
        &self.kind
    }

    async fn submit(&self, req: &SubmitRequest) -> Result<ExternalId, SubmitError> {
        self.enter(Call::Submit).await;
        if let Some(e) = self.script().submit_errors.pop_front() {
            return Err(e);
        }
        // Like a real connector: the fenced confirmation is the last step before creating.
        req.fence.confirm().await?;
        let mut s = self.script();
        let n = {
            let c = s.calls.entry(Call::Created).or_default();
            *c += 1;
            *c
        };
        s.tags.push(req.submission.tag.clone());
        Ok(ExternalId(format!("job-{n}")))
    }

    async fn status(&self, _job: &JobRef) -> JobStatus {
        self.enter(Call::Status).await;
        let s = &mut *self.script();
        next(&mut s.statuses, &mut s.last_status).unwrap_or(JobStatus::Unknown {
            reason: "the script has no status".into(),
        })
    }

    async fn cancel(&self, _job: &JobRef) -> Result<(), CancelError> {
        self.enter(Call::Cancel).await;
        let s = &mut *self.script();
        if let Some(e) = s.cancel_errors.pop_front() {
            return Err(e);
        }
        if s.statuses.is_empty() {
            s.last_status = Some(JobStatus::Failed {
                class: FailureClass::Killed,
                message: "killed by the scripted cancel".into(),
            });
        }
        Ok(())
    }

    fn find_by_tag(&self) -> Option<&dyn FindByTag> {
        if self.lookups {
            Some(self)
        } else {
            None
        }
    }
}

#[async_trait]
impl FindByTag for ScriptedConnector {
    async fn find_by_tag(&self, _tag: &Tag) -> Lookup {
        self.enter(Call::Lookup).await;
        let s = &mut *self.script();
        next(&mut s.lookups, &mut s.last_lookup).unwrap_or(Lookup::Absent)
    }
}
