//! The ResourceManager's application reports and what they mean for the engine: pure functions
//! over the JSON of `GET /ws/v1/cluster/apps/{id}` and `GET /ws/v1/cluster/apps?...`.
//!
//! ## Guarantees
//! - NEW, NEW_SAVING, SUBMITTED, ACCEPTED -> active (queued); RUNNING -> active (running);
//!   FINISHED + SUCCEEDED -> succeeded; FINISHED + FAILED, FAILED -> failed, classified by
//!   [`crate::spark::oom`] from the diagnostics and the container exit code they quote (-104,
//!   -103, 137, ...); KILLED (or FINISHED + KILLED) -> killed. Anything else is unknown.
//! - An application whose `applicationTags` lack our tag is a mismatch, whatever its state.
//! - Both Jersey shapes are read: `"app"` as a list or (one application, older Jersey) as an
//!   object; `"apps": null` and `"apps": {}` are no applications.
use serde_json::{json, Value};
use tether_core::observe::{ActiveState, FailureClass, JobStatus};

use crate::spark::oom::{classify, Facts, Verdict};

/// One application report (the fields tether reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppReport {
    /// `application_<cluster ts>_<n>`.
    pub id: String,
    /// YARN's `state`.
    pub state: String,
    /// YARN's `finalStatus`.
    pub final_status: String,
    /// YARN's `diagnostics`.
    pub diagnostics: String,
    /// `applicationTags`, split and lower-cased.
    pub tags: Vec<String>,
    /// The AM container's log page, if YARN gave one.
    pub am_container_logs: Option<String>,
}

impl AppReport {
    /// A report from one `app` object; `None` without an id or state.
    pub fn from_json(v: &Value) -> Option<AppReport> {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let report = AppReport {
            id: s("id"),
            state: s("state"),
            final_status: s("finalStatus"),
            diagnostics: s("diagnostics"),
            tags: s("applicationTags")
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect(),
            am_container_logs: v
                .get("amContainerLogs")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        (!report.id.is_empty() && !report.state.is_empty()).then_some(report)
    }

    /// Whether it carries `tag` (YARN lower-cases tags).
    pub fn has_tag(&self, tag: &str) -> bool {
        let tag = tag.to_ascii_lowercase();
        self.tags.contains(&tag)
    }

    /// Whether YARN will not change its state again.
    pub fn is_final(&self) -> bool {
        matches!(self.state.as_str(), "FINISHED" | "FAILED" | "KILLED")
    }
}

/// The application of `GET /ws/v1/cluster/apps/{id}` (`{"app": {...}}`).
pub fn parse_app(body: &Value) -> Option<AppReport> {
    AppReport::from_json(body.get("app")?)
}

/// The applications of `GET /ws/v1/cluster/apps?...`; `None` if the body is not such a list.
pub fn parse_apps(body: &Value) -> Option<Vec<AppReport>> {
    let apps = body.get("apps")?;
    let list = match apps.get("app") {
        _ if apps.is_null() => return Some(Vec::new()),
        None if apps.is_object() => return Some(Vec::new()),
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return None,
    };
    Some(list.into_iter().filter_map(AppReport::from_json).collect())
}

/// The engine's reading of `app`, expected to carry `tag` and run `main_class` (if a jar).
pub fn status_of(app: &AppReport, tag: &str, main_class: Option<&str>) -> JobStatus {
    if !app.has_tag(tag) {
        return JobStatus::Mismatch {
            found: format!(
                "application {} with tags [{}], not {tag}",
                app.id,
                app.tags.join(",")
            ),
        };
    }
    let detail = |what: &str| match first_line(&app.diagnostics) {
        "" => format!("{what} ({})", app.id),
        d => format!("{what} ({}): {d}", app.id),
    };
    match (app.state.as_str(), app.final_status.as_str()) {
        ("NEW" | "NEW_SAVING" | "SUBMITTED" | "ACCEPTED", _) => JobStatus::Active {
            state: ActiveState::Queued,
            detail: detail(&app.state),
        },
        ("RUNNING", _) => JobStatus::Active {
            state: ActiveState::Running,
            detail: detail("RUNNING"),
        },
        ("FINISHED", "SUCCEEDED") => JobStatus::Succeeded {
            result: json!({ "application_id": app.id, "final_status": "SUCCEEDED" }),
        },
        ("KILLED", _) | ("FINISHED", "KILLED") => JobStatus::Failed {
            class: FailureClass::Killed,
            message: detail("KILLED"),
        },
        ("FAILED", _) | ("FINISHED", "FAILED") => failed(app, main_class),
        (state, fin) => JobStatus::Unknown {
            reason: format!(
                "application {} in state {state}/{fin}, which tether does not know",
                app.id
            ),
        },
    }
}

/// A failed application, classified from its diagnostics.
fn failed(app: &AppReport, main_class: Option<&str>) -> JobStatus {
    // The spec names a class the jar does not have: fixing the spec is the only way on.
    if let Some(class) = main_class.filter(|c| {
        app.diagnostics
            .contains(&format!("java.lang.ClassNotFoundException: {c}"))
    }) {
        return JobStatus::Failed {
            class: FailureClass::Rejected,
            message: format!(
                "application {} failed: main class {class} is not in app_resource (ClassNotFoundException); \
                 fix main_class or app_resource",
                app.id
            ),
        };
    }
    let facts = Facts {
        log: Some(&app.diagnostics),
        exit_code: exit_code(&app.diagnostics),
        reason: None,
    };
    // In cluster mode the AM container is the driver: YARN names it in the diagnostics.
    let who = if app.diagnostics.contains("AM Container") {
        "driver"
    } else {
        "a container"
    };
    match classify(facts) {
        Verdict::Oom { evidence, .. } => JobStatus::Failed {
            class: FailureClass::Oom,
            message: format!(
                "application {} failed: {who} ran out of memory ({evidence})",
                app.id
            ),
        },
        _ => JobStatus::Failed {
            class: FailureClass::Other,
            message: match crate::spark::oom::summary(&app.diagnostics) {
                Some(s) => format!("application {} failed: {s}", app.id),
                None => format!(
                    "application {} failed: {}",
                    app.id,
                    first_line(&app.diagnostics)
                ),
            },
        },
    }
}

/// The container exit code YARN's diagnostics quote (`exitCode: -104`, `Exit code: 137`).
pub fn exit_code(diagnostics: &str) -> Option<i32> {
    ["exitCode: ", "Exit code: ", "exit code: "]
        .iter()
        .find_map(|marker| {
            let at = diagnostics.find(marker)? + marker.len();
            let rest = &diagnostics[at..];
            let end = rest
                .char_indices()
                .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
                .map_or(rest.len(), |(i, _)| i);
            rest[..end].parse().ok()
        })
}

fn first_line(s: &str) -> &str {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(state: &str, fin: &str, diag: &str) -> AppReport {
        AppReport::from_json(&json!({"id": "application_1_0001", "state": state,
            "finalStatus": fin, "diagnostics": diag, "applicationTags": "team,Tether-K-G1"}))
        .unwrap()
    }

    #[test]
    fn states_map_as_the_issue_says() {
        for s in ["NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED"] {
            let st = status_of(&app(s, "UNDEFINED", ""), "tether-k-g1", None);
            assert!(
                matches!(
                    st,
                    JobStatus::Active {
                        state: ActiveState::Queued,
                        ..
                    }
                ),
                "{s}: {st:?}"
            );
        }
        let st = status_of(&app("RUNNING", "UNDEFINED", ""), "tether-k-g1", None);
        assert!(matches!(
            st,
            JobStatus::Active {
                state: ActiveState::Running,
                ..
            }
        ));
        assert!(matches!(
            status_of(&app("FINISHED", "SUCCEEDED", ""), "tether-k-g1", None),
            JobStatus::Succeeded { .. }
        ));
        let killed = status_of(
            &app("KILLED", "KILLED", "killed by user"),
            "tether-k-g1",
            None,
        );
        assert!(
            matches!(
                killed,
                JobStatus::Failed {
                    class: FailureClass::Killed,
                    ..
                }
            ),
            "{killed:?}"
        );
        let other = status_of(
            &app("FINISHED", "FAILED", "User class threw exception: x"),
            "tether-k-g1",
            Some("a.B"),
        );
        assert!(
            matches!(
                other,
                JobStatus::Failed {
                    class: FailureClass::Other,
                    ..
                }
            ),
            "{other:?}"
        );
        let mismatch = status_of(&app("RUNNING", "UNDEFINED", ""), "tether-k-g2", None);
        assert!(
            matches!(mismatch, JobStatus::Mismatch { .. }),
            "{mismatch:?}"
        );
    }

    #[test]
    fn memory_kills_are_oom_and_say_driver() {
        for code in ["-104", "-103", "137"] {
            let d = format!("Application failed 1 times due to AM Container for appattempt_1 exited with  exitCode: {code}\nFailing this attempt.");
            match status_of(&app("FAILED", "FAILED", &d), "tether-k-g1", None) {
                JobStatus::Failed {
                    class: FailureClass::Oom,
                    message,
                } => {
                    assert!(
                        message.contains("driver") && message.contains(code),
                        "{message}"
                    )
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        assert_eq!(exit_code("Exit code: 1\n"), Some(1));
        let cnf = "exitCode: 13\nUncaught exception: \njava.lang.ClassNotFoundException: a.B\n";
        let st = status_of(&app("FAILED", "FAILED", cnf), "tether-k-g1", Some("a.B"));
        assert!(
            matches!(
                st,
                JobStatus::Failed {
                    class: FailureClass::Rejected,
                    ..
                }
            ),
            "{st:?}"
        );
        assert_eq!(exit_code("no code"), None);
    }

    #[test]
    fn both_jersey_shapes_and_null_apps() {
        assert_eq!(parse_apps(&json!({"apps": null})), Some(vec![]));
        assert_eq!(parse_apps(&json!({"apps": {}})), Some(vec![]));
        let one = json!({"id": "application_1_2", "state": "RUNNING", "applicationTags": "t"});
        assert_eq!(
            parse_apps(&json!({"apps": {"app": one.clone()}}))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            parse_apps(&json!({"apps": {"app": [one.clone(), one]}}))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(parse_apps(&json!({"nope": 1})), None);
    }
}
