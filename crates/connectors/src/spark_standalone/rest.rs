//! HTTP calls to a Spark standalone cluster: the master's REST submission server
//! (`/v1/submissions/...`), the master's web UI (`/json/`) and the workers' log pages
//! (`/log/?driverId=...`).
//!
//! ## Guarantees
//! - Errors say which address failed and how, and whether the request may have been received
//!   ([`RestError::may_have_arrived`]); the bearer token is never part of an error or of
//!   `Debug` output ([`Secret`]).
//! - An answer that is not a Spark REST message (no `action` field) is reported as
//!   [`RestError::NotSpark`], so a wrong port gives a clear message instead of a parse error.
//!
//! ## Assumptions
//! - Spark 4.x message shapes (checked against 4.3.0): `CreateSubmissionResponse`,
//!   `SubmissionStatusResponse`, `KillSubmissionResponse`, `ErrorResponse`.
//! - Worker log pages answer `==== Bytes <from>-<to> of <length> of <path> ====\n<bytes>`, or
//!   `Error: invalid log directory ...` for a driver they do not have.
use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};

/// A bearer token. `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a token.
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    fn expose(&self) -> &str {
        &self.0
    }
}
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A failed HTTP exchange.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// No connection could be made: nothing was sent.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// Address.
        url: String,
        /// Why.
        reason: String,
    },
    /// Connected, but no complete answer in time: the request may have been received.
    #[error("no answer from {url} within {timeout:?}: {reason}")]
    Timeout {
        /// Address.
        url: String,
        /// The request timeout.
        timeout: Duration,
        /// Why.
        reason: String,
    },
    /// Any other transport failure after connecting (reset, broken body).
    #[error("talking to {url} failed: {reason}")]
    Transport {
        /// Address.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered with an HTTP error carrying a Spark message (or a 5xx).
    #[error("{url} answered HTTP {status}: {message}")]
    Http {
        /// Address.
        url: String,
        /// HTTP status.
        status: u16,
        /// Server's words (first line).
        message: String,
    },
    /// Something answered, but not a Spark server.
    #[error("{url} answered but is not a {what} ({detail})")]
    NotSpark {
        /// Address.
        url: String,
        /// What we expected (e.g. "Spark REST submission server").
        what: &'static str,
        /// HTTP status and the start of the body.
        detail: String,
    },
}

impl RestError {
    /// True unless the request certainly never reached the server.
    pub fn may_have_arrived(&self) -> bool {
        !matches!(self, RestError::Connect { .. })
    }
}

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
    pub driver_state: Option<String>,
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
    pub state: String,
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

/// The client. Cheap to clone.
#[derive(Clone)]
pub struct Rest {
    http: reqwest::Client,
    rest: String,
    ui: String,
    token: Option<Secret>,
    timeout: Duration,
}

impl fmt::Debug for Rest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rest")
            .field("rest", &self.rest)
            .field("ui", &self.ui)
            .field("token", &self.token)
            .field("timeout", &self.timeout)
            .finish()
    }
}

const REST_SERVER: &str = "Spark REST submission server";

impl Rest {
    /// A client for the REST server `rest` and master UI `ui`.
    pub fn new(
        rest: &str,
        ui: &str,
        token: Option<Secret>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            // Spark never redirects API calls; a redirect means something else answers.
            .redirect(reqwest::redirect::Policy::limited(2))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Rest {
            http,
            rest: rest.trim_end_matches('/').into(),
            ui: ui.trim_end_matches('/').into(),
            token,
            timeout,
        })
    }

    /// The REST server's address.
    pub fn rest_url(&self) -> &str {
        &self.rest
    }

    fn transport(&self, url: &str, e: reqwest::Error) -> RestError {
        // reqwest's Display names the URL, never the headers, so no token can leak here.
        let reason = root_cause(&e);
        if e.is_connect() {
            RestError::Connect {
                url: url.into(),
                reason,
            }
        } else if e.is_timeout() {
            RestError::Timeout {
                url: url.into(),
                timeout: self.timeout,
                reason,
            }
        } else {
            RestError::Transport {
                url: url.into(),
                reason,
            }
        }
    }

    async fn rest_call(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<RestMessage, RestError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t.expose()),
            None => req,
        };
        let resp = req.send().await.map_err(|e| self.transport(url, e))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| self.transport(url, e))?;
        let msg = serde_json::from_str::<RestMessage>(&body)
            .ok()
            .filter(|m| !m.action.is_empty());
        match msg {
            Some(m) if (200..300).contains(&status) => Ok(m),
            Some(m) => Err(RestError::Http {
                url: url.into(),
                status,
                message: m.message.as_deref().map(first_line).unwrap_or_else(|| m.action.clone()),
            }),
            // A 5xx from a proxy in front of Spark is not proof that nothing is there.
            None if status >= 500 => Err(RestError::Http { url: url.into(), status, message: snippet(&body) }),
            None if status == 401 || status == 403 => Err(RestError::Http {
                url: url.into(),
                status,
                message: "unauthorized: the master requires a bearer token (set token_env in [job] to the name of \
                          an environment variable holding it) or refused the one given"
                    .into(),
            }),
            None => Err(RestError::NotSpark {
                url: self.rest.clone(),
                what: REST_SERVER,
                detail: format!("HTTP {status}, body starts with {:?}", snippet(&body)),
            }),
        }
    }

    /// `POST /v1/submissions/create`.
    pub async fn create(&self, body: &serde_json::Value) -> Result<RestMessage, RestError> {
        let url = format!("{}/v1/submissions/create", self.rest);
        self.rest_call(self.http.post(&url).json(body), &url).await
    }

    /// `GET /v1/submissions/status/<id>`.
    pub async fn status(&self, driver_id: &str) -> Result<RestMessage, RestError> {
        let url = format!("{}/v1/submissions/status/{driver_id}", self.rest);
        self.rest_call(self.http.get(&url), &url).await
    }

    /// `POST /v1/submissions/kill/<id>`.
    pub async fn kill(&self, driver_id: &str) -> Result<RestMessage, RestError> {
        let url = format!("{}/v1/submissions/kill/{driver_id}", self.rest);
        self.rest_call(self.http.post(&url), &url).await
    }

    /// The master's `/json/`.
    pub async fn master_state(&self) -> Result<MasterState, RestError> {
        let url = format!("{}/json/", self.ui);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| self.transport(&url, e))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| self.transport(&url, e))?;
        if !(200..300).contains(&status) {
            return Err(RestError::Http {
                url,
                status,
                message: snippet(&body),
            });
        }
        match serde_json::from_str::<MasterState>(&body) {
            Ok(s) if !s.url.is_empty() || !s.status.is_empty() => Ok(s),
            _ => Err(RestError::NotSpark {
                url,
                what: "Spark master web UI",
                detail: format!("HTTP {status}, body starts with {:?}", snippet(&body)),
            }),
        }
    }

    /// Reads `len` bytes of a driver's `stdout`/`stderr` from `offset` through the worker's web UI.
    /// `Ok(None)`: the worker has no such driver directory.
    pub async fn driver_log(
        &self,
        worker_ui: &str,
        driver_id: &str,
        log_type: &str,
        offset: u64,
        len: u64,
    ) -> Result<Option<LogSlice>, RestError> {
        let url = format!(
            "{}/log/?driverId={driver_id}&logType={log_type}&offset={offset}&byteLength={len}",
            worker_ui.trim_end_matches('/')
        );
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| self.transport(&url, e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| self.transport(&url, e))?;
        if !(200..300).contains(&status) {
            return Err(RestError::Http {
                url,
                status,
                message: snippet(&String::from_utf8_lossy(&body)),
            });
        }
        parse_log_page(&body).map_err(|detail| RestError::NotSpark {
            url,
            what: "Spark worker log page",
            detail,
        })
    }
}

/// Parses a worker's `/log/` answer.
pub fn parse_log_page(body: &[u8]) -> Result<Option<LogSlice>, String> {
    let nl = body.iter().position(|b| *b == b'\n').unwrap_or(body.len());
    let header = String::from_utf8_lossy(&body[..nl]);
    let rest = body.get(nl + 1..).unwrap_or_default();
    if String::from_utf8_lossy(rest).starts_with("Error: invalid log directory") {
        return Ok(None);
    }
    // "==== Bytes 0-29799 of 29799 of /work/driver-.../stderr ===="
    let bad = || format!("unexpected log header {:?}", snippet(&header));
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

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s = format!("{s}: {inner}");
        src = inner.source();
    }
    s
}

/// First line of a server message (Spark appends stack traces).
pub fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
}

fn snippet(s: &str) -> String {
    let s = s.trim();
    let cut: String = s.chars().take(120).collect();
    if cut.len() < s.len() {
        format!("{cut}...")
    } else {
        cut
    }
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
    fn secrets_stay_hidden() {
        let r = Rest::new(
            "http://m:6066",
            "http://m:8080",
            Some(Secret::new("s3cr3t".into())),
            Duration::from_secs(1),
        )
        .unwrap();
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("s3cr3t") && dbg.contains("redacted"), "{dbg}");
    }
}
