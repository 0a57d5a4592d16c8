//! A standalone driver's state, parsed once from the master's answers (REST `driverState`,
//! `/json/` `state`).
use std::fmt;

use serde::{Deserialize, Serialize};

/// Spark's `DriverState`, plus what this version does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
#[non_exhaustive]
pub enum DriverState {
    /// Queued for a worker.
    Submitted,
    /// Sent to a worker (or running there).
    Running,
    /// Relaunched by a supervising master (tether submits unsupervised, but a user may not).
    Relaunching,
    /// Ended with exit code 0.
    Finished,
    /// Ended with a non-zero exit code.
    Failed,
    /// Killed (by a user or through the REST API).
    Killed,
    /// Could not be launched, or its worker died.
    Error,
    /// The master is recovering and does not know yet.
    Unknown,
    /// A state this version of tether does not know (the text as the master sent it): read as
    /// "cannot tell" ([`tether_core::observe::JobStatus::Unknown`]).
    Other(String),
}

impl DriverState {
    /// Parses the master's text (unknown text is [`DriverState::Other`]).
    pub fn parse(text: &str) -> DriverState {
        match text {
            "SUBMITTED" => DriverState::Submitted,
            "RUNNING" => DriverState::Running,
            "RELAUNCHING" => DriverState::Relaunching,
            "FINISHED" => DriverState::Finished,
            "FAILED" => DriverState::Failed,
            "KILLED" => DriverState::Killed,
            "ERROR" => DriverState::Error,
            "UNKNOWN" => DriverState::Unknown,
            other => DriverState::Other(other.to_string()),
        }
    }

    /// The master's text.
    pub fn as_str(&self) -> &str {
        match self {
            DriverState::Submitted => "SUBMITTED",
            DriverState::Running => "RUNNING",
            DriverState::Relaunching => "RELAUNCHING",
            DriverState::Finished => "FINISHED",
            DriverState::Failed => "FAILED",
            DriverState::Killed => "KILLED",
            DriverState::Error => "ERROR",
            DriverState::Unknown => "UNKNOWN",
            DriverState::Other(s) => s,
        }
    }

    /// Ended for good: the state never changes again.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            DriverState::Finished | DriverState::Failed | DriverState::Killed | DriverState::Error
        )
    }
}

impl Default for DriverState {
    /// What a `/json/` entry without a state reads as: not a state we know.
    fn default() -> Self {
        DriverState::Other(String::new())
    }
}

impl From<String> for DriverState {
    fn from(s: String) -> Self {
        DriverState::parse(&s)
    }
}

impl From<DriverState> for String {
    fn from(s: DriverState) -> Self {
        s.as_str().to_string()
    }
}

impl fmt::Display for DriverState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_once_and_round_trip() {
        for s in [
            "SUBMITTED",
            "RUNNING",
            "RELAUNCHING",
            "FINISHED",
            "FAILED",
            "KILLED",
            "ERROR",
            "UNKNOWN",
        ] {
            let state = DriverState::parse(s);
            assert!(!matches!(state, DriverState::Other(_)), "{s}");
            assert_eq!(state.as_str(), s);
        }
        let odd: DriverState = serde_json::from_str("\"PAUSED\"").unwrap();
        assert_eq!(odd, DriverState::Other("PAUSED".into()));
        assert!(!odd.is_terminal());
        assert_eq!(serde_json::to_string(&odd).unwrap(), "\"PAUSED\"");
        assert!(DriverState::parse("KILLED").is_terminal());
        assert!(!DriverState::parse("RELAUNCHING").is_terminal());
    }
}
