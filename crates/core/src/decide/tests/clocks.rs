//! One test per row of the table that depends on the [`Clocks`] (time is an input: no sleeps).
use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
fn unknown_of(asked: Asked) -> Observed {
    Observed::Unknown {
        asked,
        reason: "503".into(),
    }
}
fn step(journal: &Journal, observed: &Observed, clocks: Clocks, now: u64) -> (Decision, Clocks) {
    super::super::decide(journal, observed, &p(), clocks, secs(now))
}

#[test]
fn unknown_answers_ask_again_until_status_timeout_counted_from_the_first() {
    let journal = j(submitted(1, Shape::Normal, "a"));
    let timeout = p().status_timeout.as_secs();
    for asked in [Asked::Status, Asked::LookUp, Asked::Cancel] {
        // The first unknown answer starts the clock at `now`, not at the drive's start.
        let (d, clocks) = step(&journal, &unknown_of(asked), Clocks::default(), 100);
        assert!(matches!(d, Decision::AskAgain { .. }), "{d:?}");
        assert_eq!(clocks.unknown_since, Some(secs(100)));
        // Later ones keep it: just below the timeout, still asking; the backoff grows.
        let (d, again) = step(&journal, &unknown_of(asked), clocks, 100 + timeout - 1);
        assert_eq!(again, clocks);
        match d {
            Decision::AskAgain { after, .. } => assert!(after > p().backoff, "{after:?}"),
            d => panic!("{asked:?}: {d:?}"),
        }
    }
}

#[test]
fn unknown_answers_give_up_at_status_timeout_naming_what_was_asked() {
    let journal = j(submitted(1, Shape::Normal, "a"));
    let clocks = Clocks {
        unknown_since: Some(secs(100)),
        ..Clocks::default()
    };
    let timeout = p().status_timeout.as_secs();
    for (asked, words) in [(Asked::Status, "status"), (Asked::Cancel, "cancel")] {
        match step(&journal, &unknown_of(asked), clocks, 100 + timeout).0 {
            Decision::GiveUp { reason } => {
                assert!(reason.starts_with(words), "{reason}");
                assert!(reason.contains(&format!("{timeout}s")), "{reason}");
            }
            d => panic!("{d:?}"),
        }
    }
}

#[test]
fn submissions_failing_give_up_at_status_timeout_and_look_ups_between_do_not_restart_it() {
    let journal = j(intent(1));
    let timeout = p().status_timeout.as_secs();
    let (d, clocks) = step(&journal, &unknown_of(Asked::Submit), Clocks::default(), 5);
    assert!(matches!(d, Decision::AskAgain { .. }), "{d:?}");
    assert_eq!(clocks.submit_failing_since, Some(secs(5)));
    assert_eq!(
        clocks.unknown_since, None,
        "a failing submit has its own clock"
    );
    // The look-up that follows answers definitely: the submit clock runs on.
    let (d, clocks) = step(&journal, &Observed::Lookup(Lookup::Absent), clocks, 6);
    assert!(matches!(d, Decision::Submit { .. }), "{d:?}");
    assert_eq!(clocks.submit_failing_since, Some(secs(5)));
    let (d, _) = step(&journal, &unknown_of(Asked::Submit), clocks, 5 + timeout);
    assert!(matches!(d, Decision::GiveUp { reason } if reason.starts_with("submission")));
}

#[test]
fn a_definite_answer_clears_the_unknown_clock_only() {
    let both = Clocks {
        unknown_since: Some(secs(1)),
        submit_failing_since: Some(secs(2)),
        delay_served: false,
    };
    let cleared = Clocks {
        unknown_since: None,
        ..both
    };
    let intent = j(intent(1));
    assert_eq!(
        step(&intent, &Observed::Lookup(Lookup::Absent), both, 9).1,
        cleared
    );
    assert_eq!(
        step(&intent, &Observed::Lookup(Lookup::Unsupported), both, 9).1,
        cleared
    );
    // Not asked yet is no answer: the clocks stay.
    assert_eq!(step(&intent, &Observed::Nothing, both, 9).1, both);
    let submitted = j(submitted(1, Shape::Normal, "a"));
    let (_, after) = step(&submitted, &status(JobStatus::running("r")), both, 9);
    assert_eq!(after.unknown_since, None);
}

#[test]
fn a_recorded_id_clears_the_submit_failing_clock() {
    let failing = Clocks {
        unknown_since: Some(secs(1)),
        submit_failing_since: Some(secs(2)),
        delay_served: false,
    };
    let (d, after) = step(
        &j(submitted(1, Shape::Normal, "a")),
        &Observed::Nothing,
        failing,
        9,
    );
    assert_eq!(d, Decision::Observe);
    assert_eq!(
        after,
        Clocks {
            submit_failing_since: None,
            ..failing
        }
    );
}

#[test]
fn a_submission_with_a_delay_backs_off_once_and_marks_it_served() {
    let journal = j(submitted(1, Shape::Normal, "a"));
    let (d, after) = step(&journal, &failed(FailureClass::Other), Clocks::default(), 0);
    assert_eq!(
        d,
        Decision::Backoff {
            submission: sub(2, Shape::Normal),
            reason: SubmitReason::AfterFailure(FailureClass::Other),
            after: p().backoff,
        }
    );
    assert!(after.delay_served);
}

#[test]
fn a_served_backoff_submits_and_clears_the_mark() {
    let journal = j(submitted(1, Shape::Normal, "a"));
    let served = Clocks {
        delay_served: true,
        ..Clocks::default()
    };
    let (d, after) = step(&journal, &failed(FailureClass::Other), served, 0);
    assert_eq!(
        d,
        Decision::Submit {
            submission: sub(2, Shape::Normal),
            reason: SubmitReason::AfterFailure(FailureClass::Other),
            delay: p().backoff,
        }
    );
    assert!(!after.delay_served);
    // A submission without a delay never backs off, whatever the mark says.
    let (d, after) = step(&j(Phase::Empty), &Observed::Nothing, Clocks::default(), 0);
    assert!(matches!(d, Decision::Submit { .. }), "{d:?}");
    assert!(!after.delay_served);
}

#[test]
fn a_connectors_raw_unknown_counts_like_the_one_unknown() {
    // Built by hand without `Observed::status`: still unknown, still on the clock.
    let raw = status(JobStatus::Unknown {
        reason: "503".into(),
    });
    let journal = j(submitted(1, Shape::Normal, "a"));
    let running = Clocks {
        unknown_since: Some(secs(3)),
        ..Clocks::default()
    };
    let (d, after) = step(&journal, &raw, running, 4);
    assert!(matches!(d, Decision::AskAgain { .. }), "{d:?}");
    assert_eq!(after, running, "a raw unknown must not clear the clock");
    let timeout = p().status_timeout.as_secs();
    let (d, _) = step(&journal, &raw, running, 3 + timeout);
    assert!(matches!(d, Decision::GiveUp { .. }), "{d:?}");
}
