//! HTTP calls to a Spark standalone cluster: the master's REST submission server
//! (`/v1/submissions/...`), the master's web UI (`/json/`) and the workers' log pages
//! (`/log/?driverId=...`).
//!
//! ## Guarantees
//! - Built on [`crate::http`]: errors are its [`HttpError`](crate::http::HttpError) (which
//!   says whether the request may have been received), the bearer token is never part of an
//!   error or of `Debug` output ([`Secret`]). No request is retried here: the engine's polling is the Spark retry loop.
//! - An answer that is not a Spark REST message (no `action` field) is reported as
//!   [`RestError::Unexpected`], so a wrong port gives a clear message instead of a parse error.
//! - Bodies are read with a hard cap ([`JSON_CAP`] for REST answers, [`LISTING_CAP`] for the
//!   master's `/json/`, the asked length plus
//!   [`LOG_PAGE_SLACK`] for log pages); redirects are reported ([`RestError::Redirect`]),
//!   never followed; ids are percent-encoded into paths; worker UI addresses reported by the
//!   master are checked ([`http::web_url`]) before anything is sent to them.
//! - Server text in errors has its control characters escaped ([`crate::text`]).
//!
//! ## Assumptions
//! - Spark 4.x message shapes (checked against 4.3.0): `CreateSubmissionResponse`,
//!   `SubmissionStatusResponse`, `KillSubmissionResponse`, `ErrorResponse`.
//! - Worker log pages answer `==== Bytes <from>-<to> of <length> of <path> ====\n<bytes>`, or
//!   `Error: invalid log directory ...` for a driver they do not have.
use std::{fmt, time::Duration};

use reqwest::Url;

pub use super::wire::{parse_log_page, DriverInfo, LogSlice, MasterState, RestMessage, WorkerInfo};
pub use crate::http::{first_line, snippet, HttpError as RestError, Secret};
use crate::{
    http::{self, Answer, Auth, Client, ClientConfig, Retry, Safety},
    text::escape_controls,
};

/// Cap of a REST answer: Spark's are kilobytes.
pub const JSON_CAP: usize = 8 << 20;

/// Cap of the master's `/json/`: every active driver (~250-400 bytes each) and the retained
/// completed ones. 8 MiB was reached at ~35,000 active drivers, and from then on every find by
/// tag and every bulk status on that master failed as unknown; 128 MiB is ~400,000 drivers.
pub const LISTING_CAP: usize = 128 << 20;

/// Room for the header line of a worker's log page, on top of the bytes asked for.
pub const LOG_PAGE_SLACK: usize = 64 << 10;

/// The client. Cheap to clone.
#[derive(Clone)]
pub struct Rest {
    http: Client,
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
    /// A client for the REST server `rest` and master UI `ui`, trusting the system's roots and
    /// the PEM certificates in `ca_pem` (the spec's `ca_file`). `Err`: `ca_pem` holds no
    /// certificate, or the client cannot be built.
    pub fn new(
        rest: &str,
        ui: &str,
        token: Option<Secret>,
        timeout: Duration,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, String> {
        let config = ClientConfig {
            ca_pem: ca_pem.map(<[u8]>::to_vec),
            ..ClientConfig::new(timeout)
        };
        Ok(Self::with_client(config.build()?, rest, ui, token, timeout))
    }

    /// [`Rest::new`] on an existing reqwest client (one of a [`crate::pool::ClientPool`]),
    /// built by [`ClientConfig::build`] with the same `timeout`.
    pub fn with_client(
        http: reqwest::Client,
        rest: &str,
        ui: &str,
        token: Option<Secret>,
        timeout: Duration,
    ) -> Self {
        let auth = token.clone().map_or(Auth::None, Auth::Bearer);
        let http = Client::from_reqwest(http, timeout, auth, Retry::never());
        Rest {
            http,
            rest: rest.trim_end_matches('/').into(),
            ui: ui.trim_end_matches('/').into(),
            token,
            timeout,
        }
    }

    /// The REST server's address.
    pub fn rest_url(&self) -> &str {
        &self.rest
    }

    /// The master web UI's address (`/json/` is under it).
    pub fn ui_url(&self) -> &str {
        &self.ui
    }

    /// Sends what `make` builds and reads at most `cap` bytes of the answer.
    async fn exchange(
        &self,
        safety: Safety,
        url: &str,
        cap: usize,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>), RestError> {
        let Answer { status, body, .. } = self.http.exchange(safety, url, cap, make).await?;
        Ok((status, body))
    }

    async fn rest_call(
        &self,
        safety: Safety,
        url: &str,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<RestMessage, RestError> {
        let (status, body) = self.exchange(safety, url, JSON_CAP, make).await?;
        let body = String::from_utf8_lossy(&body);
        let msg = serde_json::from_str::<RestMessage>(&body)
            .ok()
            .filter(|m| !m.action.is_empty());
        match msg {
            Some(m) if (200..300).contains(&status) => Ok(m),
            Some(m) => Err(RestError::Status {
                url: url.into(),
                status,
                message: escape_controls(
                    &m.message.as_deref().map(first_line).unwrap_or_else(|| m.action.clone()),
                ),
            }),
            // A 5xx from a proxy in front of Spark is not proof that nothing is there.
            None if status >= 500 => Err(RestError::Status {
                url: url.into(),
                status,
                message: escape_controls(&snippet(&body)),
            }),
            None if status == 401 || status == 403 => Err(RestError::Status {
                url: url.into(),
                status,
                message: "unauthorized: the master requires a bearer token (set token_env in [job] to the name of \
                          an environment variable holding it) or refused the one given"
                    .into(),
            }),
            None => Err(RestError::Unexpected {
                url: self.rest.clone(),
                what: REST_SERVER,
                detail: format!("HTTP {status}, body starts with {:?}", snippet(&body)),
            }),
        }
    }

    /// `<rest>/v1/submissions/<verb>/<id>`, the id percent-encoded.
    fn submission_url(&self, verb: &str, driver_id: &str) -> Result<String, RestError> {
        let id = http::path_segment(driver_id).map_err(|_| RestError::BadAddress {
            url: format!("driver id {}", escape_controls(&format!("{driver_id:?}"))),
            reason: format!("{driver_id:?} is not a valid driver id"),
        })?;
        Ok(format!("{}/v1/submissions/{verb}/{id}", self.rest))
    }

    /// `POST /v1/submissions/create`.
    pub async fn create(&self, body: &serde_json::Value) -> Result<RestMessage, RestError> {
        let url = format!("{}/v1/submissions/create", self.rest);
        self.rest_call(Safety::Once, &url, |c| c.post(&url).json(body))
            .await
    }

    /// `GET /v1/submissions/status/<id>`.
    pub async fn status(&self, driver_id: &str) -> Result<RestMessage, RestError> {
        let url = self.submission_url("status", driver_id)?;
        self.rest_call(Safety::Idempotent, &url, |c| c.get(&url))
            .await
    }

    /// `POST /v1/submissions/kill/<id>`.
    pub async fn kill(&self, driver_id: &str) -> Result<RestMessage, RestError> {
        let url = self.submission_url("kill", driver_id)?;
        self.rest_call(Safety::Once, &url, |c| c.post(&url)).await
    }

    /// The master's `/json/`.
    pub async fn master_state(&self) -> Result<MasterState, RestError> {
        let url = format!("{}/json/", self.ui);
        let (status, body) = self
            .exchange(Safety::Idempotent, &url, LISTING_CAP, |c| c.get(&url))
            .await?;
        let body = String::from_utf8_lossy(&body);
        if !(200..300).contains(&status) {
            return Err(RestError::Status {
                url,
                status,
                message: escape_controls(&snippet(&body)),
            });
        }
        match MasterState::parse(&body) {
            Ok(s) if !s.url.is_empty() || !s.status.is_empty() => Ok(s),
            _ => Err(RestError::Unexpected {
                url,
                what: "Spark master web UI",
                detail: format!("HTTP {status}, body starts with {:?}", snippet(&body)),
            }),
        }
    }

    /// Reads `len` bytes of a driver's `stdout`/`stderr` from `offset` through the worker's web UI
    /// (an address the master reported: checked with [`http::web_url`] first). At most `len`
    /// bytes plus a header are read, whatever the worker sends.
    /// `Ok(None)`: the worker has no such driver directory.
    pub async fn driver_log(
        &self,
        worker_ui: &str,
        driver_id: &str,
        log_type: &str,
        offset: u64,
        len: u64,
    ) -> Result<Option<LogSlice>, RestError> {
        let mut url: Url = http::web_url(worker_ui).map_err(|reason| RestError::BadAddress {
            url: escape_controls(&http::shown(worker_ui)),
            reason: format!("the master reports this worker web UI address, which {reason}"),
        })?;
        let base = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base}/log/"));
        url.query_pairs_mut()
            .clear()
            .append_pair("driverId", driver_id)
            .append_pair("logType", log_type)
            .append_pair("offset", &offset.to_string())
            .append_pair("byteLength", &len.to_string());
        url.set_fragment(None);
        let url = url.to_string();
        let cap = usize::try_from(len)
            .unwrap_or(usize::MAX)
            .saturating_add(LOG_PAGE_SLACK);
        let (status, body) = self
            .exchange(Safety::Idempotent, &url, cap, |c| c.get(&url))
            .await?;
        if !(200..300).contains(&status) {
            return Err(RestError::Status {
                url,
                status,
                message: escape_controls(&snippet(&String::from_utf8_lossy(&body))),
            });
        }
        parse_log_page(&body).map_err(|e| RestError::Unexpected {
            url,
            what: "Spark worker log page",
            detail: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_hidden() {
        let r = Rest::new(
            "http://m:6066",
            "http://m:8080",
            Some(Secret::new("s3cr3t".into())),
            Duration::from_secs(1),
            None,
        )
        .unwrap();
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("s3cr3t") && dbg.contains("redacted"), "{dbg}");
    }
}
