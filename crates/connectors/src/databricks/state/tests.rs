//! One test per row of the mapping table.
use serde_json::json;

use super::*;

fn run(v: serde_json::Value) -> RunInfo {
    serde_json::from_value(v).unwrap()
}

fn old(life: &str, result: Option<&str>, msg: &str) -> RunInfo {
    run(json!({"state": {"life_cycle_state": life, "result_state": result, "state_message": msg}}))
}

fn new(state: &str, code: Option<&str>, msg: &str) -> RunInfo {
    let mut v = json!({"status": {"state": state}});
    if let Some(c) = code {
        v["status"]["termination_details"] =
            json!({"code": c, "type": "CLIENT_ERROR", "message": msg});
    }
    run(v)
}

#[test]
fn waiting_states_are_queued_in_both_objects() {
    for s in ["PENDING", "QUEUED", "BLOCKED", "WAITING_FOR_RETRY"] {
        assert_eq!(old(s, None, "").map(""), Mapped::Queued(s.into()), "{s}");
        assert_eq!(new(s, None, "").map(""), Mapped::Queued(s.into()), "{s}");
    }
}

#[test]
fn running_and_terminating_are_running() {
    for s in ["RUNNING", "TERMINATING"] {
        assert_eq!(old(s, None, "").map(""), Mapped::Running(s.into()), "{s}");
        assert_eq!(new(s, None, "").map(""), Mapped::Running(s.into()), "{s}");
    }
}

#[test]
fn terminated_success_is_succeeded() {
    assert_eq!(
        old("TERMINATED", Some("SUCCESS"), "").map(""),
        Mapped::Succeeded
    );
    assert_eq!(
        new("TERMINATED", Some("SUCCESS"), "").map(""),
        Mapped::Succeeded
    );
}

#[test]
fn cancelled_is_killed() {
    for code in ["CANCELED", "USER_CANCELED"] {
        let m = new("TERMINATED", Some(code), "Run cancelled by user").map("");
        assert!(
            matches!(&m, Mapped::Failed(FailureClass::Killed, t) if t.contains("cancelled by user")),
            "{m:?}"
        );
    }
    assert!(matches!(
        old("TERMINATED", Some("CANCELED"), "").map(""),
        Mapped::Failed(FailureClass::Killed, _)
    ));
}

#[test]
fn other_results_fail_with_the_state_message() {
    for r in [
        "FAILED",
        "TIMEDOUT",
        "SUCCESS_WITH_FAILURES",
        "MAXIMUM_CONCURRENT_RUNS_REACHED",
    ] {
        let m = old("TERMINATED", Some(r), "Task etl failed with message: boom").map("");
        assert!(
            matches!(&m, Mapped::Failed(FailureClass::Other, t) if t.starts_with(r) && t.contains("boom")),
            "{m:?}"
        );
    }
}

#[test]
fn internal_error_and_skipped_fail() {
    for s in ["INTERNAL_ERROR", "SKIPPED"] {
        let m = old(s, None, "Cluster could not start").map("");
        assert!(
            matches!(&m, Mapped::Failed(FailureClass::Other, t) if t.contains("could not start")),
            "{m:?}"
        );
    }
}

#[test]
fn terminated_without_a_result_yet_is_still_running() {
    assert!(matches!(
        old("TERMINATED", None, "").map(""),
        Mapped::Running(_)
    ));
}

#[test]
fn the_status_object_wins_over_the_old_state() {
    let mut r = old("RUNNING", None, "");
    r.status = new("QUEUED", None, "").status;
    assert_eq!(r.map(""), Mapped::Queued("QUEUED".into()));
}

#[test]
fn unknown_or_missing_states_are_unknown() {
    assert!(
        matches!(old("HIBERNATING", None, "").map(""), Mapped::Unknown(t) if t.contains("HIBERNATING"))
    );
    assert!(matches!(run(json!({})).map(""), Mapped::Unknown(_)));
}

#[test]
fn memory_failures_are_oom_and_others_are_not() {
    let driver = "The spark driver has stopped unexpectedly and is restarting. Your notebook will be automatically reattached.";
    for (msg, extra) in [
        (driver, ""),
        ("Task etl failed", "java.lang.OutOfMemoryError: Java heap space"),
        ("ExecutorLostFailure (executor 3 exited caused by one of the running tasks) Reason: Command exited with code 137", ""),
    ] {
        let m = old("TERMINATED", Some("FAILED"), msg).map(extra);
        assert!(matches!(m, Mapped::Failed(FailureClass::Oom, _)), "{msg}: {m:?}");
    }
    let m = old(
        "TERMINATED",
        Some("FAILED"),
        "ZeroDivisionError: division by zero",
    )
    .map("");
    assert!(matches!(m, Mapped::Failed(FailureClass::Other, _)), "{m:?}");
    let m = old("INTERNAL_ERROR", None, driver).map("");
    assert!(matches!(m, Mapped::Failed(FailureClass::Oom, _)), "{m:?}");
}
