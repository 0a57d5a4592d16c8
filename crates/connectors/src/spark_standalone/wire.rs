//! The messages of Spark's REST submission protocol, the master's `/json/` and the workers'
//! log pages (the fields tether uses), and their parsing.
use std::{cell::RefCell, collections::HashSet, sync::Arc};

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

/// A driver in the master's `/json/`. Compact: a worker lists up to 100,000 of them in every
/// listing it reads (its id once, the worker and main class shared with the drivers that have
/// the same, the start time not kept).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DriverInfo {
    /// `driver-...`.
    #[serde(deserialize_with = "boxed")]
    pub id: Box<str>,
    /// Driver state.
    #[serde(deserialize_with = "state")]
    pub state: DriverState,
    /// Worker id (absent or `None` while queued).
    #[serde(deserialize_with = "interned")]
    pub worker: Arc<str>,
    /// User main class.
    #[serde(deserialize_with = "interned")]
    pub mainclass: Arc<str>,
}

fn boxed<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Box<str>, D::Error> {
    d.deserialize_str(Text(|t: &str| Box::<str>::from(t)))
}

fn state<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DriverState, D::Error> {
    d.deserialize_str(Text(|t: &str| DriverState::parse(t)))
}

/// A JSON string handed to a function as `&str` (borrowed from the body unless it has escapes):
/// no `String` is made on the way.
struct Text<F>(F);

impl<'de, T, F: FnOnce(&str) -> T> serde::de::Visitor<'de> for Text<F> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        Ok((self.0)(v))
    }
}

thread_local! {
    /// The texts repeated across one listing's drivers (a few workers, a few main classes),
    /// kept once while [`MasterState::parse`] runs on this thread.
    static INTERNED: RefCell<HashSet<Arc<str>>> = RefCell::new(HashSet::new());
}

fn interned<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
    d.deserialize_str(Text(|text: &str| {
        INTERNED.with(|set| {
            let mut set = set.borrow_mut();
            match set.get(text) {
                Some(shared) => shared.clone(),
                None => {
                    let shared: Arc<str> = text.into();
                    set.insert(shared.clone());
                    shared
                }
            }
        })
    }))
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
    /// Parses a `/json/` body, sharing the texts its drivers repeat.
    pub fn parse(body: &str) -> serde_json::Result<MasterState> {
        /// Empties the interner however the parse ends: it must not keep a listing's texts.
        struct Forget;
        impl Drop for Forget {
            fn drop(&mut self) {
                INTERNED.with(|set| *set.borrow_mut() = HashSet::new());
            }
        }
        let _forget = Forget;
        serde_json::from_str(body)
    }
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

    #[test]
    fn a_listing_parses_compactly_and_forgets_its_texts() {
        let body = r#"{"url":"spark://m:7077","status":"ALIVE","workers":[],
            "activedrivers":[
              {"id":"driver-2","starttime":"1","state":"RUNNING","worker":"worker-a","mainclass":"Main"},
              {"id":"driver-\u0031","state":"SUBMITTED","worker":"None","mainclass":"Main"}],
            "completeddrivers":[
              {"id":"driver-0","state":"NEW_STATE","worker":"worker-a","mainclass":"Other"}]}"#;
        let s = MasterState::parse(body).expect("parses");
        let d: Vec<&DriverInfo> = s.drivers().collect();
        assert_eq!(
            d.iter().map(|d| &*d.id).collect::<Vec<_>>(),
            ["driver-2", "driver-1", "driver-0"],
            "an escaped id is read too"
        );
        assert_eq!(d[0].state, DriverState::Running);
        assert_eq!(d[2].state, DriverState::Other("NEW_STATE".into()));
        assert!(
            Arc::ptr_eq(&d[0].worker, &d[2].worker)
                && Arc::ptr_eq(&d[0].mainclass, &d[1].mainclass),
            "a text repeated across drivers is kept once"
        );
        assert_eq!((&*d[1].worker, &*d[2].mainclass), ("None", "Other"));
        assert_eq!(
            INTERNED.with(|set| set.borrow().len()),
            0,
            "nothing of the listing stays behind"
        );
        assert!(MasterState::parse("{\"activedrivers\":[{\"id\":7}]}").is_err());
        assert_eq!(
            INTERNED.with(|set| set.borrow().len()),
            0,
            "not after an error either"
        );
    }
}
