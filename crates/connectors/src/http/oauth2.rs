//! OAuth2 client credentials (RFC 6749 §4.4) with a cached, refreshed token.
//!
//! ## Guarantees
//! - A token is fetched once and reused until a fifth of its lifetime (at most a minute) is
//!   left; then exactly one caller refreshes it while the others wait for that token (one lock
//!   around check-and-fetch). A 401 from the backend drops the cached token ([`OAuth2::forget`]).
//! - Neither the client secret nor a token reaches `Debug` or an error: the endpoint's text is
//!   scrubbed of the secret, and an answer without a token is never quoted.
//!
//! ## Assumptions
//! - The endpoint takes `grant_type=client_credentials` with the client id and secret as HTTP
//!   basic credentials, and answers JSON with `access_token` and optionally `expires_in`
//!   (5 minutes assumed without it).
use std::{
    fmt,
    time::{Duration, Instant},
};

use reqwest::Url;

use super::{error::HttpError, read_capped, BodyError, Secret};
use crate::text;

/// OAuth2 client credentials, with the current token.
pub struct OAuth2 {
    token_url: Url,
    client_id: String,
    client_secret: Secret,
    scope: Option<String>,
    cache: tokio::sync::Mutex<Option<(Secret, Instant)>>,
}

impl fmt::Debug for OAuth2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .finish_non_exhaustive()
    }
}

/// Token endpoint answers are small; anything bigger is not one.
const TOKEN_CAP: usize = 64 << 10;
/// Lifetime assumed when the endpoint does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

impl OAuth2 {
    /// Client credentials for `token_url` (checked: http(s), no userinfo). `Err`: why the
    /// address is refused.
    pub fn new(
        token_url: &str,
        client_id: String,
        client_secret: Secret,
        scope: Option<String>,
    ) -> Result<OAuth2, String> {
        let token_url = super::web_url(token_url)
            .map_err(|e| format!("token endpoint {} {e}", super::shown(token_url)))?;
        Ok(OAuth2 {
            token_url,
            client_id,
            client_secret,
            scope,
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// The current token, fetched or refreshed through `http` if needed.
    pub async fn token(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Secret, HttpError> {
        // Held across the fetch: concurrent callers wait for one refresh instead of each
        // asking the endpoint.
        let mut cache = self.cache.lock().await;
        if let Some((token, refresh_at)) = cache.as_ref() {
            if Instant::now() < *refresh_at {
                return Ok(token.clone());
            }
        }
        let (token, lifetime) = self.fetch(http, timeout).await?;
        let margin = (lifetime / 5).min(Duration::from_secs(60));
        *cache = Some((token.clone(), Instant::now() + lifetime - margin));
        Ok(token)
    }

    /// The client secret, for scrubbing.
    pub(crate) fn client_secret(&self) -> &str {
        self.client_secret.expose()
    }

    /// The cached token, if any and not being refreshed right now, for scrubbing.
    pub(crate) fn cached_token(&self) -> Option<String> {
        let cache = self.cache.try_lock().ok()?;
        cache.as_ref().map(|(t, _)| t.expose().to_string())
    }

    /// Drops the cached token (the backend refused it).
    pub async fn forget(&self) {
        *self.cache.lock().await = None;
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<(Secret, Duration), HttpError> {
        let url = self.token_url.to_string();
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = &self.scope {
            form.push(("scope", s));
        }
        let req = http
            .post(self.token_url.clone())
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .form(&form);
        let resp = req
            .send()
            .await
            .map_err(|e| super::error::transport(&url, timeout, e))?;
        let status = resp.status().as_u16();
        let body = match read_capped(resp, TOKEN_CAP).await {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                return Err(HttpError::TooLarge {
                    url,
                    limit: TOKEN_CAP,
                })
            }
            Err(BodyError::Transport(e)) => return Err(super::error::transport(&url, timeout, e)),
        };
        let body = String::from_utf8_lossy(&body);
        let clean = |s: &str| text::clean(&super::snippet(s), &[self.client_secret.expose()]);
        if !(200..300).contains(&status) {
            return Err(HttpError::Status {
                url,
                status,
                message: format!(
                    "token endpoint refused client {:?}: {}",
                    self.client_id,
                    clean(&body)
                ),
            });
        }
        match serde_json::from_str::<TokenAnswer>(&body) {
            Ok(t) if !t.access_token.trim().is_empty() => Ok((
                Secret::new(t.access_token.trim().to_string()),
                t.expires_in.map_or(DEFAULT_LIFETIME, Duration::from_secs),
            )),
            // The body may be a token in another shape: never print it.
            _ => Err(HttpError::Unexpected {
                url,
                what: "OAuth2 token endpoint",
                detail: format!(
                    "HTTP {status}, no access_token in a {} byte answer",
                    body.len()
                ),
            }),
        }
    }
}
