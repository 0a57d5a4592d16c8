//! The rows with a cancel request.
use super::*;

#[test]
fn cancel_before_submission_finishes_cancelled() {
    let d = decide(&cancelled(Phase::Empty), &Observed::Nothing, &p());
    assert!(matches!(d, Decision::Finish(Outcome::Cancelled { .. })));
    let d = decide(
        &cancelled(intent(1)),
        &Observed::Lookup(Lookup::Absent),
        &p(),
    );
    assert!(matches!(d, Decision::Finish(Outcome::Cancelled { .. })));
    let d = decide(
        &cancelled(intent(1)),
        &Observed::Lookup(Lookup::Unsupported),
        &p(),
    );
    assert!(matches!(d, Decision::Finish(Outcome::Cancelled { .. })));
}

#[test]
fn cancel_of_found_or_active_job_kills_it() {
    let d = decide(
        &cancelled(intent(1)),
        &Observed::Lookup(Lookup::Found {
            external_id: ExternalId("5".into()),
        }),
        &p(),
    );
    assert_eq!(
        d,
        Decision::Adopt {
            external_id: ExternalId("5".into())
        }
    );
    let d = decide(
        &cancelled(submitted(1, Shape::Normal, "5")),
        &status(JobStatus::running("r")),
        &p(),
    );
    assert_eq!(
        d,
        Decision::Cancel {
            external_id: ExternalId("5".into())
        }
    );
}

#[test]
fn cancel_after_the_job_ended_reports_what_happened() {
    let ph = submitted(1, Shape::Normal, "5");
    let d = decide(&cancelled(ph.clone()), &failed(FailureClass::Killed), &p());
    assert!(
        matches!(d, Decision::Finish(Outcome::Cancelled { .. })),
        "no resubmit after cancel: {d:?}"
    );
    let d = decide(
        &cancelled(ph.clone()),
        &status(JobStatus::NotFound { detail: "".into() }),
        &p(),
    );
    assert!(matches!(d, Decision::Finish(Outcome::Cancelled { .. })));
    let d = decide(
        &cancelled(ph),
        &status(JobStatus::Succeeded { result: json!(1) }),
        &p(),
    );
    assert!(
        matches!(d, Decision::Finish(Outcome::Succeeded { .. })),
        "a success is reported honestly"
    );
}
