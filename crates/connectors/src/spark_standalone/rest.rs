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
//! - Bodies are read with a hard cap ([`http::JSON_CAP`] for JSON, the asked length plus
//!   [`http::LOG_PAGE_SLACK`] for log pages); redirects are reported ([`RestError::Redirect`]),
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

use super::http::{self, read_capped, BodyError};
pub use super::http::{first_line, snippet};
pub use super::wire::{parse_log_page, DriverInfo, LogSlice, MasterState, RestMessage, WorkerInfo};
use crate::text::escape_controls;

/// A bearer token. `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a token.
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    /// The token itself: for the `Authorization` header and for scrubbing it out of text.
    pub(crate) fn expose(&self) -> &str {
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
#[non_exhaustive]
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
    /// The server answered with a redirect, which tether never follows.
    #[error(
        "{url} answered HTTP {status} redirecting to {location:?}: tether never follows redirects \
         (they could carry the token elsewhere); put the final address in the spec"
    )]
    Redirect {
        /// Address.
        url: String,
        /// HTTP status (3xx).
        status: u16,
        /// Where it pointed (escaped, shortened).
        location: String,
    },
    /// The body was longer than tether reads from this kind of answer.
    #[error(
        "{url} sent more than {limit} bytes; tether stopped reading (a Spark answer is far smaller: is \
         something else answering there?)"
    )]
    TooLarge {
        /// Address.
        url: String,
        /// The cap, in bytes.
        limit: usize,
    },
    /// An address we refuse to contact (e.g. a worker UI with userinfo or a `file:` scheme), or
    /// an id that cannot be put into a URL.
    #[error("refusing to request {url}: {reason}")]
    BadAddress {
        /// The address or id as given (escaped).
        url: String,
        /// Why.
        reason: String,
    },
}

impl RestError {
    /// True unless the request certainly never reached the server.
    pub fn may_have_arrived(&self) -> bool {
        !matches!(
            self,
            RestError::Connect { .. } | RestError::BadAddress { .. }
        )
    }
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
        let http = http::client(timeout, ca_pem)?;
        Ok(Self::with_client(http, rest, ui, token, timeout))
    }

    /// [`Rest::new`] on an existing client (one of a [`crate::pool::ClientPool`]), made by
    /// [`http::client`] with the same `timeout`.
    pub fn with_client(
        http: reqwest::Client,
        rest: &str,
        ui: &str,
        token: Option<Secret>,
        timeout: Duration,
    ) -> Self {
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

    fn transport(&self, url: &str, e: reqwest::Error) -> RestError {
        // reqwest's Display names the URL, never the headers, so no token can leak here.
        let mut reason = http::root_cause(&e);
        if url.starts_with("https:") && reason.contains("certificate") {
            reason.push_str(
                " (if the server's certificate is signed by a private CA, set ca_file in [job] to that CA's PEM \
                 file)",
            );
        }
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

    /// Sends `req` and reads at most `cap` bytes of its answer. A redirect is an error.
    async fn exchange(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
        cap: usize,
    ) -> Result<(u16, Vec<u8>), RestError> {
        let resp = req.send().await.map_err(|e| self.transport(url, e))?;
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            return Err(RestError::Redirect {
                url: url.into(),
                status,
                location: escape_controls(&snippet(&location)),
            });
        }
        match read_capped(resp, cap).await {
            Ok(body) => Ok((status, body)),
            Err(BodyError::TooLarge) => Err(RestError::TooLarge {
                url: url.into(),
                limit: cap,
            }),
            Err(BodyError::Transport(e)) => Err(self.transport(url, e)),
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
        let (status, body) = self.exchange(req, url, http::JSON_CAP).await?;
        let body = String::from_utf8_lossy(&body);
        let msg = serde_json::from_str::<RestMessage>(&body)
            .ok()
            .filter(|m| !m.action.is_empty());
        match msg {
            Some(m) if (200..300).contains(&status) => Ok(m),
            Some(m) => Err(RestError::Http {
                url: url.into(),
                status,
                message: escape_controls(
                    &m.message.as_deref().map(first_line).unwrap_or_else(|| m.action.clone()),
                ),
            }),
            // A 5xx from a proxy in front of Spark is not proof that nothing is there.
            None if status >= 500 => Err(RestError::Http {
                url: url.into(),
                status,
                message: escape_controls(&snippet(&body)),
            }),
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

    /// `<rest>/v1/submissions/<verb>/<id>`, the id percent-encoded.
    fn submission_url(&self, verb: &str, driver_id: &str) -> Result<String, RestError> {
        let id = http::path_segment(driver_id).map_err(|reason| RestError::BadAddress {
            url: format!("driver id {}", escape_controls(&format!("{driver_id:?}"))),
            reason,
        })?;
        Ok(format!("{}/v1/submissions/{verb}/{id}", self.rest))
    }

    /// `POST /v1/submissions/create`.
    pub async fn create(&self, body: &serde_json::Value) -> Result<RestMessage, RestError> {
        let url = format!("{}/v1/submissions/create", self.rest);
        self.rest_call(self.http.post(&url).json(body), &url).await
    }

    /// `GET /v1/submissions/status/<id>`.
    pub async fn status(&self, driver_id: &str) -> Result<RestMessage, RestError> {
        let url = self.submission_url("status", driver_id)?;
        self.rest_call(self.http.get(&url), &url).await
    }

    /// `POST /v1/submissions/kill/<id>`.
    pub async fn kill(&self, driver_id: &str) -> Result<RestMessage, RestError> {
        let url = self.submission_url("kill", driver_id)?;
        self.rest_call(self.http.post(&url), &url).await
    }

    /// The master's `/json/`.
    pub async fn master_state(&self) -> Result<MasterState, RestError> {
        let url = format!("{}/json/", self.ui);
        let (status, body) = self
            .exchange(self.http.get(&url), &url, http::JSON_CAP)
            .await?;
        let body = String::from_utf8_lossy(&body);
        if !(200..300).contains(&status) {
            return Err(RestError::Http {
                url,
                status,
                message: escape_controls(&snippet(&body)),
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
            .saturating_add(http::LOG_PAGE_SLACK);
        let (status, body) = self.exchange(self.http.get(&url), &url, cap).await?;
        if !(200..300).contains(&status) {
            return Err(RestError::Http {
                url,
                status,
                message: escape_controls(&snippet(&String::from_utf8_lossy(&body))),
            });
        }
        parse_log_page(&body).map_err(|detail| RestError::NotSpark {
            url,
            what: "Spark worker log page",
            detail,
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
