//! What `runs/get` says, as tether sees it: the wire shapes (only the fields read) and the one
//! mapping from a run's state to a [`Mapped`] status, pure and tested row by row.
//!
//! | `status.state` (or `state.life_cycle_state`) | result | tether |
//! | --- | --- | --- |
//! | `PENDING`, `QUEUED`, `BLOCKED`, `WAITING_FOR_RETRY` | - | active, queued |
//! | `RUNNING`, `TERMINATING` | - | active, running |
//! | `TERMINATED` | `SUCCESS` | succeeded (the result is `runs/get-output` of each task) |
//! | `TERMINATED` | `CANCELED` (`USER_CANCELED`) | failed: killed |
//! | `TERMINATED` | anything else (`FAILED`, `TIMEDOUT`, `SUCCESS_WITH_FAILURES`, ...) | failed, OOM if the text says so |
//! | `INTERNAL_ERROR`, `SKIPPED` | - | failed, with `state_message` |
//! | `TERMINATED` without a result yet | - | active, running (asked again) |
//! | anything else | - | unknown |
//!
//! `status` (the newer object) is preferred when present; its `termination_details.code` is the
//! result, else `state.result_state`. `SUCCESS_WITH_FAILURES` is a failure: some task failed,
//! and tether's promise is that the whole job did its work.
use serde::Deserialize;
use tether_core::observe::FailureClass;

use crate::spark::oom::{classify_log, Verdict};

/// A run as `runs/get` describes it (fields tether reads).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunInfo {
    /// The run id.
    #[serde(default)]
    pub run_id: Option<u64>,
    /// `run_name` (a one-time run's ends with ` [<tag>]`).
    #[serde(default)]
    pub run_name: Option<String>,
    /// The job of a `run-now` run.
    #[serde(default)]
    pub job_id: Option<u64>,
    /// The older state object.
    #[serde(default)]
    pub state: Option<RunState>,
    /// The newer status object.
    #[serde(default)]
    pub status: Option<RunStatus>,
    /// The run's page in the workspace.
    #[serde(default)]
    pub run_page_url: Option<String>,
    /// The task runs.
    #[serde(default)]
    pub tasks: Vec<TaskRun>,
}

/// `state` of a run.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunState {
    /// `PENDING`, `RUNNING`, `TERMINATED`...
    #[serde(default)]
    pub life_cycle_state: Option<String>,
    /// `SUCCESS`, `FAILED`...
    #[serde(default)]
    pub result_state: Option<String>,
    /// Databricks' words.
    #[serde(default)]
    pub state_message: Option<String>,
}

/// `status` of a run.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunStatus {
    /// `QUEUED`, `PENDING`, `RUNNING`, `TERMINATING`, `TERMINATED`, `BLOCKED`, `WAITING_FOR_RETRY`.
    #[serde(default)]
    pub state: Option<String>,
    /// Why it terminated.
    #[serde(default)]
    pub termination_details: Option<Termination>,
}

/// `status.termination_details`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Termination {
    /// `SUCCESS`, `CANCELED`, `RUN_EXECUTION_ERROR`, `DRIVER_ERROR`...
    #[serde(default)]
    pub code: Option<String>,
    /// Databricks' words.
    #[serde(default)]
    pub message: Option<String>,
}

/// One task run.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TaskRun {
    /// Its key.
    #[serde(default)]
    pub task_key: Option<String>,
    /// Its own run id (what `runs/get-output` takes).
    #[serde(default)]
    pub run_id: Option<u64>,
}

/// A run's state as tether sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mapped {
    /// Waiting (`detail`: the state).
    Queued(String),
    /// Running.
    Running(String),
    /// Ended well: fetch the output.
    Succeeded,
    /// Ended badly.
    Failed(FailureClass, String),
    /// A state this version does not know.
    Unknown(String),
}

impl RunInfo {
    /// Databricks' words about the run: `state_message` and the termination message.
    pub fn message(&self) -> String {
        let a = self.state.as_ref().and_then(|s| s.state_message.clone());
        let b = self
            .status
            .as_ref()
            .and_then(|s| s.termination_details.as_ref())
            .and_then(|t| t.message.clone());
        let mut parts: Vec<String> = [a, b]
            .into_iter()
            .flatten()
            .filter(|s| !s.trim().is_empty())
            .collect();
        parts.dedup();
        parts.join("; ")
    }

    /// The mapping of the module docs. `extra` is more failure text (task errors) for the OOM
    /// classifier.
    pub fn map(&self, extra: &str) -> Mapped {
        let status_state = self.status.as_ref().and_then(|s| s.state.as_deref());
        let life = self
            .state
            .as_ref()
            .and_then(|s| s.life_cycle_state.as_deref());
        let Some(state) = status_state.or(life) else {
            return Mapped::Unknown("runs/get answered without a state".into());
        };
        let result = self
            .status
            .as_ref()
            .and_then(|s| s.termination_details.as_ref())
            .and_then(|t| t.code.as_deref())
            .or_else(|| self.state.as_ref().and_then(|s| s.result_state.as_deref()));
        match state {
            "PENDING" | "QUEUED" | "BLOCKED" | "WAITING_FOR_RETRY" => Mapped::Queued(state.into()),
            "RUNNING" | "TERMINATING" => Mapped::Running(state.into()),
            "TERMINATED" => match result {
                Some("SUCCESS") => Mapped::Succeeded,
                None => Mapped::Running("TERMINATED, result not yet reported".into()),
                Some("CANCELED" | "USER_CANCELED") => {
                    Mapped::Failed(FailureClass::Killed, self.failure_text(result, extra))
                }
                Some(_) => self.failed(result, extra),
            },
            "INTERNAL_ERROR" | "SKIPPED" => self.failed(Some(state), extra),
            other => Mapped::Unknown(format!("unknown run state {other:?}")),
        }
    }

    fn failure_text(&self, result: Option<&str>, extra: &str) -> String {
        let mut text = result.unwrap_or("FAILED").to_string();
        let message = self.message();
        if !message.is_empty() {
            text = format!("{text}: {message}");
        }
        if let Some(summary) = oom_or_summary(&format!("{message}\n{extra}")).1 {
            if !text.contains(&summary) {
                text = format!("{text} ({summary})");
            }
        }
        text
    }

    fn failed(&self, result: Option<&str>, extra: &str) -> Mapped {
        let message = self.message();
        let (oom, _) = oom_or_summary(&format!("{message}\n{extra}"));
        let class = if oom {
            FailureClass::Oom
        } else {
            FailureClass::Other
        };
        Mapped::Failed(class, self.failure_text(result, extra))
    }
}

/// Whether Databricks' text says the driver or executors ran out of memory, and the telling
/// line. Spark's classifier first (`OutOfMemoryError`, exit 52, ...), then what Databricks
/// itself writes: "The spark driver has stopped unexpectedly" (its message for a driver that
/// died, most often of memory), "out of memory", an executor or driver "exit code 137" (the
/// OOM killer: Databricks reports the code of a *failed* container, not a user's cancel).
pub fn oom_or_summary(text: &str) -> (bool, Option<String>) {
    match classify_log(text) {
        Verdict::Oom { evidence, .. } => (true, Some(evidence)),
        Verdict::Other { summary } => {
            let lower = text.to_ascii_lowercase();
            let hit = [
                "spark driver has stopped unexpectedly",
                "out of memory",
                "exit code 137",
                "exited with code 137",
            ]
            .into_iter()
            .find(|p| lower.contains(p));
            match hit {
                Some(p) => {
                    let line = text
                        .lines()
                        .find(|l| l.to_ascii_lowercase().contains(p))
                        .unwrap_or(p);
                    (true, Some(crate::http::snippet(line.trim())))
                }
                None => (false, summary),
            }
        }
    }
}

#[cfg(test)]
mod tests;
