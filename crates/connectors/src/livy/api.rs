//! Livy's batch REST API (0.7 and later), as typed calls on the shared [`crate::http::Client`].
//!
//! ## Guarantees
//! - `POST /batches` is sent once ([`Safety::Once`]); every GET is retried on 429/502/503/504
//!   within the client's [`crate::http::Retry`]; `DELETE` is sent once.
//! - Batch ids are kept as text (`"0"` is an id like any other) and percent-encoded into paths.
//! - A 2xx answer that is not Livy's JSON, or a 404 without Livy's "not found" message (a
//!   proxy, a wrong path), is [`HttpError::Unexpected`]: never read as "no such batch".
//! - Every body read is capped.
use serde::Deserialize;
use serde_json::Value;

use crate::http::{path_segment, Client, HttpError, Safety};

/// Cap of a batch or state answer (a batch view carries 10 log lines).
const JSON_CAP: usize = 1 << 20;
/// Cap of a list page or a log page.
const PAGE_CAP: usize = 16 << 20;
const WHAT: &str = "Livy server";
/// `DELETE /batches/{id}` answers only once Livy has stopped the batch (it kills the YARN
/// application and waits): far longer than a status read on a busy cluster.
const DELETE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// A batch as `GET /batches/{id}` shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Batch {
    /// The batch id (a JSON number, kept as its text).
    #[serde(deserialize_with = "id_text")]
    pub id: String,
    /// The name it was created with (tether: the tag).
    #[serde(default)]
    pub name: Option<String>,
    /// Livy's session state (`starting`, `running`, `success`, `dead`, ...).
    pub state: String,
    /// The Spark application id, once Livy knows it.
    #[serde(default, rename = "appId")]
    pub app_id: Option<String>,
    /// `driverLogUrl`, `sparkUiUrl`.
    #[serde(default, rename = "appInfo")]
    pub app_info: Value,
    /// The last lines of the log.
    #[serde(default)]
    pub log: Vec<String>,
}

fn id_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) => Ok(s),
        other => Err(serde::de::Error::custom(format!(
            "id {other} is not a number"
        ))),
    }
}

/// One page of `GET /batches`.
#[derive(Debug, Clone, Deserialize)]
pub struct Page {
    /// Batches Livy tracks, in all.
    pub total: u64,
    /// This page, oldest first.
    pub sessions: Vec<Batch>,
}

/// One page of `GET /batches/{id}/log`.
#[derive(Debug, Clone, Deserialize)]
pub struct LogPage {
    /// Index of the first line returned.
    pub from: u64,
    /// Lines in the log, in all.
    pub total: u64,
    /// The lines (without line ends).
    pub log: Vec<String>,
}

/// Livy's batch endpoints at one address.
#[derive(Debug, Clone)]
pub struct Api {
    client: Client,
    base: String,
}

impl Api {
    /// The API at `url` (validated by the spec) through `client`.
    pub fn new(client: Client, url: &str) -> Api {
        Api {
            client,
            base: url.trim_end_matches('/').to_string(),
        }
    }

    /// The client (its credentials, to scrub them out of text).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `<url>/batches`.
    pub fn batches_url(&self) -> String {
        format!("{}/batches", self.base)
    }

    fn batch_url(&self, id: &str, tail: &str) -> Result<String, HttpError> {
        let seg = path_segment(id).map_err(|reason| HttpError::BadAddress {
            url: format!("{}/batches/{id:?}", self.base),
            reason,
        })?;
        Ok(format!("{}/batches/{seg}{tail}", self.base))
    }

    async fn call(
        &self,
        safety: Safety,
        method: reqwest::Method,
        url: &str,
        cap: usize,
        body: Option<&Value>,
    ) -> Result<Option<Vec<u8>>, HttpError> {
        let answer = self
            .client
            .exchange(safety, url, cap, |c| {
                let r = c
                    .request(method.clone(), url)
                    .header("accept", "application/json");
                match body {
                    Some(b) => r.json(b),
                    None => r,
                }
            })
            .await?;
        self.read(url, answer)
    }

    /// The body of a 2xx answer; `None` for Livy's own 404.
    fn read(&self, url: &str, answer: crate::http::Answer) -> Result<Option<Vec<u8>>, HttpError> {
        if answer.status == 404 {
            // Livy's own 404 (`{"msg":"Session '7' not found."}`) says the batch is not tracked;
            // any other 404 (a proxy, a wrong path) says nothing about the batch.
            let livy = serde_json::from_slice::<Value>(&answer.body)
                .ok()
                .is_some_and(|v| {
                    v["msg"]
                        .as_str()
                        .is_some_and(|m| m.contains("not found") || m.contains("already stopped"))
                });
            if livy {
                return Ok(None);
            }
            return Err(HttpError::Unexpected {
                url: url.into(),
                what: WHAT,
                detail: format!(
                    "HTTP 404 without Livy's \"not found\" message: {:?}",
                    crate::http::snippet(&String::from_utf8_lossy(&answer.body))
                ),
            });
        }
        Ok(Some(self.client.success(url, answer)?.body))
    }

    fn parse<T: serde::de::DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, HttpError> {
        serde_json::from_slice(body).map_err(|e| HttpError::Unexpected {
            url: url.into(),
            what: WHAT,
            detail: format!(
                "{e}; body starts with {:?}",
                crate::http::snippet(&String::from_utf8_lossy(body))
            ),
        })
    }

    /// `POST /batches`: the new batch. A 404 (no Livy there) is [`HttpError::Status`].
    pub async fn create(&self, body: &Value) -> Result<Batch, HttpError> {
        let url = self.batches_url();
        match self
            .call(
                Safety::Once,
                reqwest::Method::POST,
                &url,
                JSON_CAP,
                Some(body),
            )
            .await?
        {
            Some(b) => Self::parse(&url, &b),
            None => Err(HttpError::Status {
                url,
                status: 404,
                message: "no /batches here: is url Livy's address?".into(),
            }),
        }
    }

    /// A GET of JSON (retried on 429/5xx); `None` on 404.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        cap: usize,
    ) -> Result<Option<T>, HttpError> {
        let body = self
            .call(Safety::Idempotent, reqwest::Method::GET, url, cap, None)
            .await?;
        body.map(|b| Self::parse(url, &b)).transpose()
    }

    /// `GET /batches/{id}`; `None`: Livy does not track that id.
    pub async fn get(&self, id: &str) -> Result<Option<Batch>, HttpError> {
        self.get_json(&self.batch_url(id, "")?, JSON_CAP).await
    }

    /// `GET /batches/{id}/state`; `None`: not tracked.
    pub async fn state(&self, id: &str) -> Result<Option<String>, HttpError> {
        #[derive(Deserialize)]
        struct State {
            state: String,
        }
        let s: Option<State> = self
            .get_json(&self.batch_url(id, "/state")?, JSON_CAP)
            .await?;
        Ok(s.map(|s| s.state))
    }

    /// `GET /batches?from=&size=`.
    pub async fn list(&self, from: u64, size: u64) -> Result<Page, HttpError> {
        let url = format!("{}?from={from}&size={size}", self.batches_url());
        self.get_json(&url, PAGE_CAP)
            .await?
            .ok_or_else(|| HttpError::Unexpected {
                url,
                what: WHAT,
                detail: "HTTP 404 for the batch list".into(),
            })
    }

    /// `GET /batches/{id}/log?from=&size=` (`from: None`: the last `size` lines); `None`: not
    /// tracked.
    pub async fn log(
        &self,
        id: &str,
        from: Option<u64>,
        size: u64,
    ) -> Result<Option<LogPage>, HttpError> {
        let query = match from {
            Some(from) => format!("/log?from={from}&size={size}"),
            None => format!("/log?size={size}"),
        };
        self.get_json(&self.batch_url(id, &query)?, PAGE_CAP).await
    }

    /// `DELETE /batches/{id}`: `false` when Livy does not track it.
    pub async fn delete(&self, id: &str) -> Result<bool, HttpError> {
        let url = self.batch_url(id, "")?;
        let answer = self
            .client
            .exchange(Safety::Once, &url, JSON_CAP, |c| {
                c.delete(&url).timeout(DELETE_TIMEOUT)
            })
            .await?;
        self.read(&url, answer).map(|b| b.is_some())
    }
}
