//! The ResourceManager's REST API (`/ws/v1/cluster/apps...`) through the shared HTTP client:
//! one application, the applications with a tag, and the kill.
//!
//! ## Guarantees
//! - Reads are [`Safety::Idempotent`] (429/502/503/504 retried); the kill is sent once.
//! - Application ids go into URL paths percent-encoded; tags into the query string encoded.
//! - Answers are capped (a list of applications at 8 MiB, anything else at 1 MiB).
use serde_json::Value;

use super::state::{parse_app, parse_apps, AppReport};
use crate::http::{path_segment, Client, HttpError, Safety};

const ONE_CAP: usize = 1 << 20;
const LIST_CAP: usize = 8 << 20;

/// What the RM said about one application id.
#[derive(Debug)]
pub enum AppAnswer {
    /// Its report.
    Found(AppReport),
    /// The RM does not know it (HTTP 404 `NotFoundException`).
    NotFound(String),
}

/// A ResourceManager's REST API.
#[derive(Debug, Clone)]
pub struct Rm {
    client: Client,
    base: String,
}

impl Rm {
    /// The RM at `base` (e.g. `http://rm:8088`) through `client`.
    pub fn new(client: Client, base: &str) -> Rm {
        Rm {
            client,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// The HTTP client (also used for the NodeManagers' log pages).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The RM's address.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn app_url(&self, id: &str) -> Result<String, HttpError> {
        let seg = path_segment(id).map_err(|reason| HttpError::BadAddress {
            url: crate::text::escape_controls(id),
            reason,
        })?;
        Ok(format!("{}/ws/v1/cluster/apps/{seg}", self.base))
    }

    async fn get_json(&self, url: &str, cap: usize) -> Result<(u16, Value), HttpError> {
        let answer = self
            .client
            .exchange(Safety::Idempotent, url, cap, |c| {
                c.get(url).header("accept", "application/json")
            })
            .await?;
        let status = answer.status;
        // 404 carries the RM's NotFoundException, which the caller reads.
        let answer = if status == 404 {
            answer
        } else {
            self.client.success(url, answer)?
        };
        let json = serde_json::from_slice(&answer.body).map_err(|_| HttpError::Unexpected {
            url: url.into(),
            what: "YARN ResourceManager REST API",
            detail: format!(
                "HTTP {status}: {}",
                crate::http::snippet(&String::from_utf8_lossy(&answer.body))
            ),
        })?;
        Ok((status, json))
    }

    /// `GET /ws/v1/cluster/apps/{id}`.
    pub async fn app(&self, id: &str) -> Result<AppAnswer, HttpError> {
        let url = self.app_url(id)?;
        let (status, body) = self.get_json(&url, ONE_CAP).await?;
        if status == 404 {
            let message = body["RemoteException"]["message"]
                .as_str()
                .unwrap_or("not found")
                .to_string();
            return Ok(AppAnswer::NotFound(message));
        }
        parse_app(&body)
            .map(AppAnswer::Found)
            .ok_or_else(|| not_rm(&url, &body))
    }

    /// `GET /ws/v1/cluster/apps?applicationTags=<tag>`: the applications carrying `tag`
    /// (YARN matches any of the given tags; the caller checks the exact tag).
    pub async fn apps_with_tag(&self, tag: &str) -> Result<Vec<AppReport>, HttpError> {
        self.apps_where("applicationTags", &tag.to_ascii_lowercase())
            .await
    }

    /// `GET /ws/v1/cluster/apps?states=<s1,s2,...>`: the applications in those states (one
    /// request for every run of the RM: bulk status).
    pub async fn apps_in_states(&self, states: &[&str]) -> Result<Vec<AppReport>, HttpError> {
        self.apps_where("states", &states.join(",")).await
    }

    async fn apps_where(&self, key: &str, value: &str) -> Result<Vec<AppReport>, HttpError> {
        let mut url =
            reqwest::Url::parse(&format!("{}/ws/v1/cluster/apps", self.base)).map_err(|e| {
                HttpError::BadAddress {
                    url: crate::http::shown(&self.base),
                    reason: e.to_string(),
                }
            })?;
        url.query_pairs_mut().append_pair(key, value);
        let url = url.to_string();
        let (status, body) = self.get_json(&url, LIST_CAP).await?;
        if status == 404 {
            return Err(not_rm(&url, &body));
        }
        parse_apps(&body).ok_or_else(|| not_rm(&url, &body))
    }

    /// `PUT /ws/v1/cluster/apps/{id}/state {"state":"KILLED"}`: 200 (done) or 202 (under way).
    pub async fn kill(&self, id: &str) -> Result<(), HttpError> {
        let url = format!("{}/state", self.app_url(id)?);
        let answer = self
            .client
            .exchange(Safety::Once, &url, ONE_CAP, |c| {
                c.put(&url)
                    .header("accept", "application/json")
                    .json(&serde_json::json!({ "state": "KILLED" }))
            })
            .await?;
        self.client.success(&url, answer).map(|_| ())
    }
}

fn not_rm(url: &str, body: &Value) -> HttpError {
    HttpError::Unexpected {
        url: url.into(),
        what: "YARN ResourceManager REST API",
        detail: crate::http::snippet(&body.to_string()),
    }
}
