//! The messages of Spark's REST submission protocol, the master's `/json/` and the workers'
//! log pages (the fields tether uses), and their parsing.
use serde::{Deserialize, Serialize};

use super::{http::snippet, state::DriverState};

/// Any message of the REST submission protocol (the fields we use).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestMessage {
    /// Message type, e.g. `SubmissionStatusResponse`.
    pub action: String,
    /// For status: "found"; for create/kill: accepted.
    #[serde(default)]
    pub success: Option<bool>,
    /// Driver id.
    #[serde(default)]
    pub submission_id: Option<String>,
    /// `SUBMITTED`, `RUNNING`, `FINISHED`, `FAILED`, `ERROR`, `KILLED`, `RELAUNCHING`, `UNKNOWN`.
    #[serde(default)]
    pub driver_state: Option<DriverState>,
    /// Worker running the driver.
    #[serde(default)]
    pub worker_id: Option<String>,
    /// Its RPC address.
    #[serde(default)]
    pub worker_host_port: Option<String>,
    /// Server's words (exceptions from the cluster for status).
    #[serde(default)]
    pub message: Option<String>,
    /// Server version.
    #[serde(default)]
    pub server_spark_version: Option<String>,
}

/// A driver in the master's `/json/`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DriverInfo {
    /// `driver-...`.
    pub id: String,
    /// Epoch millis as text.
    pub starttime: String,
    /// Driver state.
    pub state: DriverState,
    /// Worker id (absent or `None` while queued).
    pub worker: String,
    /// User main class.
    pub mainclass: String,
}

/// A worker in the master's `/json/`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WorkerInfo {
    /// `worker-...`.
    pub id: String,
    /// Its web UI, e.g. `http://10.0.0.5:8081`.
    pub webuiaddress: String,
    /// `ALIVE`, `DEAD`, ...
    pub state: String,
}

/// The master's `/json/` (the fields we use).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MasterState {
    /// `spark://...`.
    pub url: String,
    /// `ALIVE`, `STANDBY`, `RECOVERING`, ...
    pub status: String,
    /// Workers, dead ones included.
    pub workers: Vec<WorkerInfo>,
    /// Queued or running drivers.
    pub activedrivers: Vec<DriverInfo>,
    /// Ended drivers (the newest `spark.deploy.retainedDrivers`).
    pub completeddrivers: Vec<DriverInfo>,
}

impl MasterState {
    /// All drivers, active first.
    pub fn drivers(&self) -> impl Iterator<Item = &DriverInfo> {
        self.activedrivers
            .iter()
            .chain(self.completeddrivers.iter())
    }
    /// The `i`th of [`MasterState::drivers`].
    pub fn driver(&self, i: usize) -> Option<&DriverInfo> {
        match i.checked_sub(self.activedrivers.len()) {
            None => self.activedrivers.get(i),
            Some(j) => self.completeddrivers.get(j),
        }
    }
    /// A worker's web UI address, if the master knows the worker.
    pub fn worker_ui(&self, worker_id: &str) -> Option<&WorkerInfo> {
        self.workers
            .iter()
            .find(|w| w.id == worker_id && !w.webuiaddress.is_empty())
    }
}

/// A piece of a worker-side log file.
#[derive(Debug, Clone)]
pub struct LogSlice {
    /// The bytes.
    pub data: Vec<u8>,
    /// Offset after the last byte returned.
    pub end: u64,
    /// The file's length when it was read.
    pub length: u64,
}

/// A worker's `/log/` page that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected log header {header}")]
pub struct BadLogPage {
    /// The first line, quoted and cut.
    pub header: String,
}

/// Parses a worker's `/log/` answer.
pub fn parse_log_page(body: &[u8]) -> Result<Option<LogSlice>, BadLogPage> {
    let nl = body.iter().position(|b| *b == b'\n').unwrap_or(body.len());
    let header = String::from_utf8_lossy(&body[..nl]);
    let rest = body.get(nl + 1..).unwrap_or_default();
    if String::from_utf8_lossy(rest).starts_with("Error: invalid log directory") {
        return Ok(None);
    }
    // "==== Bytes 0-29799 of 29799 of /work/driver-.../stderr ===="
    let bad = || BadLogPage {
        header: format!("{:?}", snippet(&header)),
    };
    let h = header.strip_prefix("==== Bytes ").ok_or_else(bad)?;
    let (range, after) = h.split_once(" of ").ok_or_else(bad)?;
    let (_, end) = range.split_once('-').ok_or_else(bad)?;
    let length = after.split(' ').next().ok_or_else(bad)?;
    Ok(Some(LogSlice {
        data: rest.to_vec(),
        end: end.trim().parse().map_err(|_| bad())?,
        length: length.trim().parse().map_err(|_| bad())?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_pages_parse() {
        let s = parse_log_page(b"==== Bytes 100-150 of 29799 of /w/driver-1/stderr ====\nabc")
            .unwrap()
            .unwrap();
        assert_eq!(
            (s.end, s.length, s.data.as_slice()),
            (150, 29799, &b"abc"[..])
        );
        let none = parse_log_page(
            b"==== Bytes 0-0 of 0 of /w/d/stderr ====\nError: invalid log directory /w/d/\n",
        );
        assert!(none.unwrap().is_none());
        assert!(parse_log_page(b"<html>hello</html>").is_err());
    }
}
