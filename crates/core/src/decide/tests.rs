//! One test per row of the table in the module docs (and per cancel variant).
use serde_json::json;

use super::*;
use crate::ids::{RunKey, StoreId};

fn key() -> RunKey {
    RunKey::new("k").unwrap()
}
fn store() -> StoreId {
    StoreId::new("testst0r").unwrap()
}
fn sub(g: u32, shape: Shape) -> Submission {
    Submission {
        generation: Generation(g),
        tag: Tag::derive(&store(), &key(), Generation(g)),
        shape,
    }
}
fn j(phase: Phase) -> Journal {
    Journal {
        store: store(),
        key: key(),
        phase,
        cancel_requested: false,
        after_generation: None,
    }
}
fn cancelled(phase: Phase) -> Journal {
    Journal {
        store: store(),
        key: key(),
        phase,
        cancel_requested: true,
        after_generation: None,
    }
}
fn intent(g: u32) -> Phase {
    Phase::Intent {
        submission: sub(g, Shape::Normal),
    }
}
fn submitted(g: u32, shape: Shape, id: &str) -> Phase {
    Phase::Submitted {
        submission: sub(g, shape),
        external_id: ExternalId(id.into()),
    }
}
fn status(s: JobStatus) -> Observed {
    Observed::Status(s)
}
fn failed(class: FailureClass) -> Observed {
    status(JobStatus::Failed {
        class,
        message: "boom".into(),
    })
}
fn p() -> Policy {
    Policy::default()
}
/// A row's decision with fresh clocks at time zero and any backoff already served: the rows
/// that depend on the clocks have their own tests in `clocks.rs`.
fn decide(journal: &Journal, observed: &Observed, policy: &Policy) -> Decision {
    let served = Clocks {
        delay_served: true,
        ..Clocks::default()
    };
    super::decide(journal, observed, policy, served, Duration::ZERO).0
}
/// The decision after answers have been unknown for `secs` (the clock started at zero).
fn decide_unknown_for(journal: &Journal, observed: &Observed, secs: u64) -> Decision {
    let clocks = Clocks {
        unknown_since: Some(Duration::ZERO),
        ..Clocks::default()
    };
    super::decide(journal, observed, &p(), clocks, Duration::from_secs(secs)).0
}
fn unknown(reason: &str) -> Observed {
    Observed::Unknown {
        asked: Asked::Status,
        reason: reason.into(),
    }
}

#[test]
fn empty_journal_submits_generation_one() {
    let d = decide(&j(Phase::Empty), &Observed::Nothing, &p());
    assert_eq!(
        d,
        Decision::Submit {
            submission: sub(1, Shape::Normal),
            reason: SubmitReason::Fresh,
            delay: Duration::ZERO
        }
    );
}

#[test]
fn empty_journal_after_a_rerun_submits_the_generation_after_the_last() {
    let mut journal = j(Phase::Empty);
    journal.after_generation = Some(Generation(3));
    let d = decide(&journal, &Observed::Nothing, &p());
    assert_eq!(
        d,
        Decision::Submit {
            submission: sub(4, Shape::Normal),
            reason: SubmitReason::Fresh,
            delay: Duration::ZERO
        }
    );
}

#[test]
fn a_rerun_instance_has_its_own_submission_budget() {
    // Generations 1-3 belonged to the first instance; the rerun's first failed.
    let mut journal = j(submitted(4, Shape::Normal, "x"));
    journal.after_generation = Some(Generation(3));
    let failed = Observed::Status(JobStatus::Failed {
        class: FailureClass::Other,
        message: "exit 1".into(),
    });
    match decide(&journal, &failed, &p()) {
        Decision::Submit { submission, .. } => assert_eq!(submission.generation, Generation(5)),
        d => panic!("the rerun instance must retry within its own budget: {d:?}"),
    }
    // Its third submission failing ends it, as for a first instance.
    journal.phase = submitted(6, Shape::Normal, "x");
    assert!(matches!(
        decide(&journal, &failed, &p()),
        Decision::Finish(_)
    ));
}

#[test]
fn intent_without_id_looks_the_tag_up_first() {
    let d = decide(&j(intent(2)), &Observed::Nothing, &p());
    assert_eq!(
        d,
        Decision::LookUp {
            tag: Tag::derive(&store(), &key(), Generation(2))
        }
    );
}

#[test]
fn intent_with_job_found_by_tag_adopts_it() {
    let found = Observed::Lookup(Lookup::Found {
        external_id: ExternalId("0".into()),
    });
    assert_eq!(
        decide(&j(intent(1)), &found, &p()),
        Decision::Adopt {
            external_id: ExternalId("0".into())
        }
    );
}

#[test]
fn intent_without_job_resubmits_same_generation_and_tag() {
    let d = decide(&j(intent(2)), &Observed::Lookup(Lookup::Absent), &p());
    assert_eq!(
        d,
        Decision::Submit {
            submission: sub(2, Shape::Normal),
            reason: SubmitReason::IntentNotFound,
            delay: Duration::ZERO
        }
    );
}

#[test]
fn intent_with_unsearchable_connector_follows_policy() {
    let obs = Observed::Lookup(Lookup::Unsupported);
    let d = decide(&j(intent(1)), &obs, &p());
    assert!(
        matches!(
            d,
            Decision::Finish(Outcome::Failed {
                class: FailureClass::Unverifiable,
                ..
            })
        ),
        "{d:?}"
    );
    let pol = Policy {
        on_unverifiable_intent: IntentPolicy::Resubmit,
        ..p()
    };
    assert!(matches!(
        decide(&j(intent(1)), &obs, &pol),
        Decision::Submit {
            reason: SubmitReason::IntentUnverifiable,
            ..
        }
    ));
}

#[test]
fn intent_whose_submit_says_its_job_is_gone_is_lost_by_policy() {
    let gone = status(JobStatus::NotFound {
        detail: "idempotency token of a deleted run".into(),
    });
    let d = decide(&j(intent(1)), &gone, &p());
    assert!(
        matches!(&d, Decision::Submit { submission, reason: SubmitReason::AfterLost, .. }
            if submission.generation == Generation(2) && submission.tag != sub(1, Shape::Normal).tag),
        "a new generation with a new tag: {d:?}"
    );
    let pol = Policy {
        on_lost: LostPolicy::Fail,
        ..p()
    };
    let d = decide(&j(intent(1)), &gone, &pol);
    assert!(
        matches!(&d, Decision::Finish(Outcome::Failed { class: FailureClass::Lost, message })
            if message.contains("deleted run")),
        "{d:?}"
    );
    let d = decide(&cancelled(intent(1)), &gone, &p());
    assert!(
        matches!(d, Decision::Finish(Outcome::Cancelled { .. })),
        "{d:?}"
    );
}

#[test]
fn recorded_id_is_observed_first() {
    assert_eq!(
        decide(
            &j(submitted(1, Shape::Normal, "7")),
            &Observed::Nothing,
            &p()
        ),
        Decision::Observe
    );
}

#[test]
fn active_job_is_reconnected_and_polled() {
    let d = decide(
        &j(submitted(1, Shape::Normal, "0")),
        &status(JobStatus::running("RUNNING")),
        &p(),
    );
    assert_eq!(
        d,
        Decision::Poll {
            state: ActiveState::Running,
            detail: "RUNNING".into()
        }
    );
    let d = decide(
        &j(submitted(1, Shape::Normal, "0")),
        &status(JobStatus::queued("SUBMITTED")),
        &p(),
    );
    assert_eq!(
        d,
        Decision::Poll {
            state: ActiveState::Queued,
            detail: "SUBMITTED".into()
        }
    );
}

#[test]
fn succeeded_job_returns_its_result() {
    let d = decide(
        &j(submitted(1, Shape::Normal, "0")),
        &status(JobStatus::Succeeded {
            result: json!({"exit": 0}),
        }),
        &p(),
    );
    assert_eq!(
        d,
        Decision::Finish(Outcome::Succeeded {
            result: json!({"exit": 0})
        })
    );
}

#[test]
fn oom_failure_resubmits_next_generation_in_recovery_shape() {
    let d = decide(
        &j(submitted(1, Shape::Normal, "a")),
        &failed(FailureClass::Oom),
        &p(),
    );
    match d {
        Decision::Submit {
            submission,
            reason,
            delay,
        } => {
            assert_eq!(submission, sub(2, Shape::Recovery));
            assert_eq!(reason, SubmitReason::AfterFailure(FailureClass::Oom));
            assert_eq!(delay, p().backoff);
        }
        other => panic!("{other:?}"),
    }
    // Without a recovery shape the next generation keeps the normal shape.
    let pol = Policy {
        recovery: false,
        ..p()
    };
    let d = decide(
        &j(submitted(1, Shape::Normal, "a")),
        &failed(FailureClass::Oom),
        &pol,
    );
    assert!(matches!(d, Decision::Submit { submission, .. } if submission.shape == Shape::Normal));
}

#[test]
fn oom_failure_with_exhausted_budget_fails() {
    let d = decide(
        &j(submitted(3, Shape::Recovery, "a")),
        &failed(FailureClass::Oom),
        &p(),
    );
    assert!(
        matches!(
            d,
            Decision::Finish(Outcome::Failed {
                class: FailureClass::Oom,
                ..
            })
        ),
        "{d:?}"
    );
}

#[test]
fn other_failure_resubmits_within_budget_keeping_shape() {
    let d = decide(
        &j(submitted(2, Shape::Recovery, "a")),
        &failed(FailureClass::Other),
        &p(),
    );
    match d {
        Decision::Submit {
            submission, delay, ..
        } => {
            assert_eq!(
                submission,
                sub(3, Shape::Recovery),
                "recovery mode never reverts"
            );
            assert_eq!(delay, p().backoff * 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_failure_with_exhausted_budget_fails() {
    let pol = Policy {
        max_submissions: 1,
        ..p()
    };
    let d = decide(
        &j(submitted(1, Shape::Normal, "a")),
        &failed(FailureClass::Other),
        &pol,
    );
    assert_eq!(
        d,
        Decision::Finish(Outcome::Failed {
            class: FailureClass::Other,
            message: "boom".into()
        })
    );
}

#[test]
fn lost_job_resubmits_or_fails_by_policy() {
    for s in [
        JobStatus::NotFound {
            detail: "gone".into(),
        },
        JobStatus::Mismatch {
            found: "other".into(),
        },
    ] {
        let d = decide(
            &j(submitted(1, Shape::Normal, "a")),
            &status(s.clone()),
            &p(),
        );
        assert!(
            matches!(&d, Decision::Submit { submission, reason: SubmitReason::AfterLost, .. } if submission.generation == Generation(2)),
            "{d:?}"
        );
        let pol = Policy {
            on_lost: LostPolicy::Fail,
            ..p()
        };
        let d = decide(
            &j(submitted(1, Shape::Normal, "a")),
            &status(s.clone()),
            &pol,
        );
        assert!(
            matches!(
                d,
                Decision::Finish(Outcome::Failed {
                    class: FailureClass::Lost,
                    ..
                })
            ),
            "{d:?}"
        );
        let pol = Policy {
            max_submissions: 1,
            ..p()
        };
        let d = decide(&j(submitted(1, Shape::Normal, "a")), &status(s), &pol);
        assert!(
            matches!(
                d,
                Decision::Finish(Outcome::Failed {
                    class: FailureClass::Lost,
                    ..
                })
            ),
            "{d:?}"
        );
    }
}

#[test]
fn finished_journal_returns_recorded_outcome() {
    let outcome = Outcome::Failed {
        class: FailureClass::Oom,
        message: "x".into(),
    };
    for obs in [Observed::Nothing, unknown("r")] {
        let d = decide_unknown_for(
            &j(Phase::Finished {
                outcome: outcome.clone(),
            }),
            &obs,
            9999,
        );
        assert_eq!(d, Decision::Return(outcome.clone()));
    }
}

#[test]
fn intent_without_id_on_an_idempotent_backend_submits_the_same_tag_again() {
    for journal in [j(intent(2)), cancelled(intent(2))] {
        let d = decide(&journal, &Observed::Lookup(Lookup::Idempotent), &p());
        assert_eq!(
            d,
            Decision::Submit {
                submission: sub(2, Shape::Normal),
                reason: SubmitReason::IntentIdempotent,
                delay: Duration::ZERO
            },
            "same generation, same tag, whatever the cancel flag (it is applied once the id is known)"
        );
    }
}

mod cancel;
mod clocks;
mod unknown;
