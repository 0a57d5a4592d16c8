//! The unknown row: never a resubmission, whatever was asked.
use super::*;

#[test]
fn intent_with_unknown_lookup_asks_again() {
    let d = decide(
        &j(intent(1)),
        &Observed::Lookup(Lookup::Unknown {
            reason: "down".into(),
        }),
        &p(),
    );
    assert!(matches!(d, Decision::AskAgain { .. }), "{d:?}");
}

#[test]
fn unknown_status_asks_again_and_never_resubmits() {
    let obs = status(JobStatus::Unknown {
        reason: "connection refused".into(),
    });
    let d = decide(&j(submitted(1, Shape::Normal, "a")), &obs, &p());
    assert_eq!(
        d,
        Decision::AskAgain {
            after: p().backoff,
            reason: "connection refused".into()
        }
    );
    for phase in [Phase::Empty, intent(1), submitted(1, Shape::Normal, "a")] {
        for for_secs in [0, 30, 599] {
            let d = decide_unknown_for(&j(phase.clone()), &unknown("503"), for_secs);
            match d {
                Decision::AskAgain { after, .. } => {
                    assert!(after >= p().backoff && after <= p().backoff_max)
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn unknown_beyond_status_timeout_gives_up_without_resubmitting() {
    let d = decide_unknown_for(
        &j(submitted(1, Shape::Normal, "a")),
        &unknown("timeout"),
        600,
    );
    assert!(matches!(d, Decision::GiveUp { .. }), "{d:?}");
}
