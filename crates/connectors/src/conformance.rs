//! The connector conformance suite: checks every connector must pass, against a real backend.
//!
//! ## How to use it
//! A connector's integration test builds a [`Fixture`] (three connectors of the same backend,
//! one per kind of job, plus an id the backend never issued) and runs the checks:
//!
//! ```text
//! use tether_connectors::conformance::{self, Fixture};
//!
//! #[tokio::test(flavor = "multi_thread")]
//! async fn conformance() {
//!     let fixture = Fixture {
//!         name: "local".into(),
//!         succeeds: build("command = [\"true\"]"),          // ends well within `timeout`
//!         fails: build("command = [\"false\"]"),            // ends with an ordinary failure
//!         runs_long: build("command = [\"sleep\", \"600\"]"), // runs until cancelled
//!         unknown_id: ExternalId("999999:1".into()),        // never issued by the backend
//!         timeout: Duration::from_secs(120),
//!         poll: Duration::from_millis(200),
//!     };
//!     conformance::run_all(&fixture).await.unwrap();   // or each check on its own
//! }
//! ```
//!
//! Each check is a `pub async fn(&Fixture) -> Result<Verdict, Failure>`: `Err` says what the
//! connector did wrong; `Ok(Verdict::Skipped)` when the connector lacks the capability checked.
//! Every check submits with fresh run keys (name, pid, time, counter), so it can run against a
//! shared, long-lived backend and in parallel with other checks.
//!
//! | check | what the connector must do |
//! | --- | --- |
//! | [`submit_then_succeeds`] | `submit` gives an id; `status` goes `Active`* then `Succeeded` (`Unknown` tolerated in between) |
//! | [`find_by_tag_finds_the_job`] | `find_by_tag` (if offered) gives the submitted id, and `Absent` for a never-used tag |
//! | [`foreign_tag_is_a_mismatch`] | `status` of job A under job B's tag is `Mismatch` |
//! | [`unknown_id_is_not_found`] | `status` of an id the backend never issued, with a never-used tag, is `NotFound` |
//! | [`cancel_kills_a_long_job`] | after `cancel` of an active job, `status` becomes `Failed { class: Killed }`; a second cancel does not panic |
//! | [`failing_job_fails`] | a failing job ends `Failed { class: Other }` |
//! | [`submit_twice_is_one_job`] | submitting the same tag twice gives the same id (one job) |
//! | [`recovery_shape_runs`] | if a recovery shape is offered, a `Shape::Recovery` submission runs and succeeds, and `describe()` is not empty |
//!
//! ## Guarantees
//! - Checks never wait forever: every loop is bounded by [`Fixture::timeout`].
//! - No check depends on timing beyond that bound (a quick job may be `Succeeded` at the first
//!   poll: seeing `Active` first is not required).
//! - Jobs a check started in `runs_long` are cancelled before it returns, pass or fail.
//!
//! ## Assumptions
//! - The three connectors talk to the same backend, and the backend is up.
//!
//! ## Caveats
//! - Jobs of `succeeds` and `fails` are left to end by themselves; the backend keeps their
//!   records (a shared backend accumulates them).
//! - The suite checks what a connector answers, not how fast: slowness only shows as a failure
//!   past [`Fixture::timeout`].
use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use tether_core::{
    connector::{JobRef, SubmitRequest},
    ids::{ExternalId, Generation, RunKey, Tag},
    journal::{Shape, Submission},
    observe::{FailureClass, JobStatus, Lookup},
    Connector,
};

/// What a connector's test gives the suite.
#[derive(Clone)]
pub struct Fixture {
    /// Short name of the backend, used in run keys and messages (`[a-z0-9-]`).
    pub name: String,
    /// A connector whose jobs succeed, well within `timeout`.
    pub succeeds: Arc<dyn Connector>,
    /// A connector whose jobs fail by themselves (non-zero exit, exception), within `timeout`.
    pub fails: Arc<dyn Connector>,
    /// A connector whose jobs run much longer than `timeout` unless cancelled.
    pub runs_long: Arc<dyn Connector>,
    /// An external id the backend has never issued (and never will, in the test's lifetime).
    pub unknown_id: ExternalId,
    /// Generous bound for any job to reach the state a check waits for.
    pub timeout: Duration,
    /// Time between two status calls.
    pub poll: Duration,
}

/// A check's result when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Everything checked held.
    Passed,
    /// Not applicable to this connector (capability not offered): why.
    Skipped(String),
}

/// A check failed: what the connector did wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[error("[{backend}] {check}: {message}")]
pub struct Failure {
    /// [`Fixture::name`].
    pub backend: String,
    /// Name of the check.
    pub check: &'static str,
    /// What happened instead of what was expected.
    pub message: String,
}

/// Runs every check in turn; the first failure stops the run. Returns each check's verdict.
pub async fn run_all(f: &Fixture) -> Result<Vec<(&'static str, Verdict)>, Failure> {
    let mut out = Vec::new();
    out.push(("submit_then_succeeds", submit_then_succeeds(f).await?));
    out.push((
        "find_by_tag_finds_the_job",
        find_by_tag_finds_the_job(f).await?,
    ));
    out.push((
        "foreign_tag_is_a_mismatch",
        foreign_tag_is_a_mismatch(f).await?,
    ));
    out.push(("unknown_id_is_not_found", unknown_id_is_not_found(f).await?));
    out.push(("cancel_kills_a_long_job", cancel_kills_a_long_job(f).await?));
    out.push(("failing_job_fails", failing_job_fails(f).await?));
    out.push(("submit_twice_is_one_job", submit_twice_is_one_job(f).await?));
    out.push(("recovery_shape_runs", recovery_shape_runs(f).await?));
    Ok(out)
}

/// A request for a fresh run key (unique per process, time and call) in `shape`.
pub fn fresh_request(f: &Fixture, what: &str, shape: Shape) -> SubmitRequest {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let key = RunKey::new(format!(
        "conf-{}-{what}-{}-{nanos}-{n}",
        f.name,
        std::process::id()
    ))
    .unwrap_or_else(|_| RunKey::from_content(what, format!("{nanos}-{n}").as_bytes()));
    let generation = Generation::FIRST;
    let tag = Tag::derive(
        &tether_core::ids::StoreId::new("testst0r").unwrap(),
        &key,
        generation,
    );
    SubmitRequest {
        key,
        submission: Submission {
            generation,
            tag,
            shape,
        },
        fence: tether_core::connector::FenceHandle(std::sync::Arc::new(
            tether_core::connector::NoFence,
        )),
    }
}

fn fail(f: &Fixture, check: &'static str, message: impl Into<String>) -> Failure {
    Failure {
        backend: f.name.clone(),
        check,
        message: message.into(),
    }
}

async fn submit(
    f: &Fixture,
    check: &'static str,
    c: &dyn Connector,
    req: &SubmitRequest,
) -> Result<JobRef, Failure> {
    let id = c.submit(req).await.map_err(|e| {
        fail(
            f,
            check,
            format!("submit of {} failed: {e}", req.submission.tag),
        )
    })?;
    Ok(JobRef {
        external_id: id,
        submission: req.submission.clone(),
    })
}

/// Polls `status` until `done` accepts it (returns it) or `allowed` rejects it (error), within
/// the fixture's timeout.
async fn poll_until(
    f: &Fixture,
    check: &'static str,
    c: &dyn Connector,
    job: &JobRef,
    what: &str,
    done: impl Fn(&JobStatus) -> bool,
    allowed: impl Fn(&JobStatus) -> bool,
) -> Result<JobStatus, Failure> {
    let deadline = Instant::now() + f.timeout;
    let mut last = None;
    loop {
        let st = c.status(job).await;
        if done(&st) {
            return Ok(st);
        }
        if !allowed(&st) {
            return Err(fail(
                f,
                check,
                format!("waiting for {what} of {}, got {st:?}", job.external_id),
            ));
        }
        if Instant::now() >= deadline {
            return Err(fail(
                f,
                check,
                format!(
                    "{} was not {what} within {:?}; last status {last:?}",
                    job.external_id, f.timeout
                ),
            ));
        }
        last = Some(st);
        tokio::time::sleep(f.poll).await;
    }
}

fn is_active_or_unknown(st: &JobStatus) -> bool {
    matches!(st, JobStatus::Active { .. } | JobStatus::Unknown { .. })
}

/// `submit` → `Active`* → `Succeeded`, and the tag leads back to the job.
pub async fn submit_then_succeeds(f: &Fixture) -> Result<Verdict, Failure> {
    const CHECK: &str = "submit_then_succeeds";
    let c = &*f.succeeds;
    let req = fresh_request(f, "ok", Shape::Normal);
    let job = submit(f, CHECK, c, &req).await?;
    let st = poll_until(
        f,
        CHECK,
        c,
        &job,
        "succeeded",
        |s| matches!(s, JobStatus::Succeeded { .. }),
        is_active_or_unknown,
    )
    .await?;
    if !st.is_terminal() {
        return Err(fail(
            f,
            CHECK,
            format!("terminal status expected, got {st:?}"),
        ));
    }
    // Once terminal, it stays so.
    let again = c.status(&job).await;
    if !matches!(again, JobStatus::Succeeded { .. }) {
        return Err(fail(
            f,
            CHECK,
            format!("status changed after success: {again:?}"),
        ));
    }
    if let Some(finder) = c.find_by_tag() {
        let found = finder.find_by_tag(&req.submission.tag).await;
        if found
            != (Lookup::Found {
                external_id: job.external_id.clone(),
            })
        {
            return Err(fail(
                f,
                CHECK,
                format!(
                    "find_by_tag after success gave {found:?}, expected {}",
                    job.external_id
                ),
            ));
        }
    }
    Ok(Verdict::Passed)
}

/// `find_by_tag` gives the submitted id, and `Absent` for a tag never submitted.
pub async fn find_by_tag_finds_the_job(f: &Fixture) -> Result<Verdict, Failure> {
    const CHECK: &str = "find_by_tag_finds_the_job";
    let c = &*f.succeeds;
    let Some(finder) = c.find_by_tag() else {
        return Ok(Verdict::Skipped("the connector offers no FindByTag".into()));
    };
    let never = fresh_request(f, "never", Shape::Normal);
    let absent = finder.find_by_tag(&never.submission.tag).await;
    if absent != Lookup::Absent {
        return Err(fail(
            f,
            CHECK,
            format!("a never-submitted tag gave {absent:?}, expected Absent"),
        ));
    }
    let req = fresh_request(f, "find", Shape::Normal);
    let job = submit(f, CHECK, c, &req).await?;
    // Some backends index tags with a delay: Unknown and Absent are asked again until timeout.
    let deadline = Instant::now() + f.timeout;
    loop {
        match finder.find_by_tag(&req.submission.tag).await {
            Lookup::Found { external_id } if external_id == job.external_id => break,
            Lookup::Found { external_id } => {
                return Err(fail(
                    f,
                    CHECK,
                    format!(
                        "found {external_id}, but submit returned {}",
                        job.external_id
                    ),
                ))
            }
            Lookup::Unsupported => {
                return Err(fail(f, CHECK, "offers FindByTag but answered Unsupported"))
            }
            other if Instant::now() >= deadline => {
                return Err(fail(
                    f,
                    CHECK,
                    format!(
                        "the submitted job was not found within {:?}: {other:?}",
                        f.timeout
                    ),
                ))
            }
            _ => tokio::time::sleep(f.poll).await,
        }
    }
    poll_until(
        f,
        CHECK,
        c,
        &job,
        "terminal",
        JobStatus::is_terminal,
        is_active_or_unknown,
    )
    .await?;
    Ok(Verdict::Passed)
}

/// `status` of job A under job B's tag is `Mismatch`.
pub async fn foreign_tag_is_a_mismatch(f: &Fixture) -> Result<Verdict, Failure> {
    const CHECK: &str = "foreign_tag_is_a_mismatch";
    let c = &*f.succeeds;
    let a = submit(f, CHECK, c, &fresh_request(f, "mis-a", Shape::Normal)).await?;
    let b = submit(f, CHECK, c, &fresh_request(f, "mis-b", Shape::Normal)).await?;
    let crossed = JobRef {
        external_id: a.external_id.clone(),
        submission: b.submission.clone(),
    };
    poll_until(
        f,
        CHECK,
        c,
        &crossed,
        "a mismatch",
        |s| matches!(s, JobStatus::Mismatch { .. }),
        |s| matches!(s, JobStatus::Unknown { .. }),
    )
    .await?;
    for job in [&a, &b] {
        poll_until(
            f,
            CHECK,
            c,
            job,
            "terminal",
            JobStatus::is_terminal,
            is_active_or_unknown,
        )
        .await?;
    }
    Ok(Verdict::Passed)
}

/// `status` of an id the backend never issued, under a tag never used, is `NotFound`.
pub async fn unknown_id_is_not_found(f: &Fixture) -> Result<Verdict, Failure> {
    const CHECK: &str = "unknown_id_is_not_found";
    let c = &*f.succeeds;
    let req = fresh_request(f, "unknown", Shape::Normal);
    let job = JobRef {
        external_id: f.unknown_id.clone(),
        submission: req.submission,
    };
    poll_until(
        f,
        CHECK,
        c,
        &job,
        "not found",
        |s| matches!(s, JobStatus::NotFound { .. }),
        |s| matches!(s, JobStatus::Unknown { .. }),
    )
    .await?;
    Ok(Verdict::Passed)
}

/// After `cancel` of an active long job, it ends `Failed { class: Killed }`.
pub async fn cancel_kills_a_long_job(f: &Fixture) -> Result<Verdict, Failure> {
    const CHECK: &str = "cancel_kills_a_long_job";
    let c = &*f.runs_long;
    let job = submit(f, CHECK, c, &fresh_request(f, "cancel", Shape::Normal)).await?;
    let result = async {
        poll_until(
            f,
            CHECK,
            c,
            &job,
            "active",
            |s| matches!(s, JobStatus::Active { .. }),
            |s| matches!(s, JobStatus::Unknown { .. }),
        )
        .await?;
        c.cancel(&job)
            .await
            .map_err(|e| fail(f, CHECK, format!("cancel of an active job failed: {e}")))?;
        let st = poll_until(
            f,
            CHECK,
            c,
            &job,
            "terminal",
            JobStatus::is_terminal,
            is_active_or_unknown,
        )
        .await?;
        match st {
            JobStatus::Failed {
                class: FailureClass::Killed,
                ..
            } => {}
            other => {
                return Err(fail(
                    f,
                    CHECK,
                    format!("expected Failed {{ class: Killed }}, got {other:?}"),
                ))
            }
        }
        // Cancelling a finished job may be refused, but must not break anything.
        let _ = c.cancel(&job).await;
        let after = c.status(&job).await;
        if !matches!(
            after,
            JobStatus::Failed {
                class: FailureClass::Killed,
                ..
            }
        ) {
            return Err(fail(
                f,
                CHECK,
                format!("status changed after a second cancel: {after:?}"),
            ));
        }
        Ok(Verdict::Passed)
    }
    .await;
    if result.is_err() {
        let _ = c.cancel(&job).await; // leave nothing running behind a failed check
    }
    result
}

/// A failing job ends `Failed { class: Other }`.
pub async fn failing_job_fails(f: &Fixture) -> Result<Verdict, Failure> {
    const CHECK: &str = "failing_job_fails";
    let c = &*f.fails;
    let job = submit(f, CHECK, c, &fresh_request(f, "fail", Shape::Normal)).await?;
    match poll_until(
        f,
        CHECK,
        c,
        &job,
        "terminal",
        JobStatus::is_terminal,
        is_active_or_unknown,
    )
    .await?
    {
        JobStatus::Failed {
            class: FailureClass::Other,
            ..
        } => Ok(Verdict::Passed),
        other => Err(fail(
            f,
            CHECK,
            format!("expected Failed {{ class: Other }}, got {other:?}"),
        )),
    }
}

/// Submitting the same tag twice yields one job (the same id).
pub async fn submit_twice_is_one_job(f: &Fixture) -> Result<Verdict, Failure> {
    const CHECK: &str = "submit_twice_is_one_job";
    let c = &*f.succeeds;
    let req = fresh_request(f, "twice", Shape::Normal);
    let first = submit(f, CHECK, c, &req).await?;
    let second = submit(f, CHECK, c, &req).await?;
    if first.external_id != second.external_id {
        return Err(fail(
            f,
            CHECK,
            format!(
                "two submits of tag {} gave two ids: {} and {}",
                req.submission.tag, first.external_id, second.external_id
            ),
        ));
    }
    poll_until(
        f,
        CHECK,
        c,
        &first,
        "succeeded",
        |s| matches!(s, JobStatus::Succeeded { .. }),
        is_active_or_unknown,
    )
    .await?;
    // And once more after it ended: still the same job, nothing new started.
    let third = submit(f, CHECK, c, &req).await?;
    if third.external_id != first.external_id {
        return Err(fail(
            f,
            CHECK,
            format!(
                "a submit after the end started {}, not {}",
                third.external_id, first.external_id
            ),
        ));
    }
    Ok(Verdict::Passed)
}

/// With a recovery shape, a `Shape::Recovery` submission runs and succeeds.
pub async fn recovery_shape_runs(f: &Fixture) -> Result<Verdict, Failure> {
    const CHECK: &str = "recovery_shape_runs";
    let c = &*f.succeeds;
    let Some(shape) = c.recovery() else {
        return Ok(Verdict::Skipped(
            "the connector offers no RecoveryShape".into(),
        ));
    };
    if shape.describe().trim().is_empty() {
        return Err(fail(
            f,
            CHECK,
            "RecoveryShape::describe() is empty: say what the recovery shape changes",
        ));
    }
    let job = submit(f, CHECK, c, &fresh_request(f, "recovery", Shape::Recovery)).await?;
    poll_until(
        f,
        CHECK,
        c,
        &job,
        "succeeded",
        |s| matches!(s, JobStatus::Succeeded { .. }),
        is_active_or_unknown,
    )
    .await?;
    Ok(Verdict::Passed)
}
