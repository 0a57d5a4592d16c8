//! Credentials for HTTP backends: bearer tokens from allowed environment variables, basic auth,
//! and OAuth2 client credentials with a cached, refreshed token.
//!
//! ## Guarantees
//! - A [`Secret`] never shows in `Debug` or `Display`; [`Auth::secrets`] lists every secret so
//!   that backend text can be scrubbed of them ([`crate::text`]).
//! - A spec may only name environment variables `TETHER_TOKEN_<NAME>` (letters, digits, `_`)
//!   or ones the worker's configuration allows ([`env_var_allowed`]): a spec cannot make a
//!   worker send its other secrets (a database password) to a URL of the spec's choosing.
//! - [`OAuth2`] fetches a token once and reuses it until a fifth of its lifetime (at most a
//!   minute) is left; then exactly one caller refreshes it while the others wait for that
//!   token (one lock around check-and-fetch). A 401 from the backend drops the cached token.
//!
//! ## Assumptions
//! - The token endpoint speaks RFC 6749 §4.4: `grant_type=client_credentials`, the client id
//!   and secret as HTTP basic credentials, a JSON answer with `access_token` and optionally
//!   `expires_in` (5 minutes assumed without it).
use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::Url;

use super::{error::HttpError, read_capped, BodyError};
use crate::text;

/// A credential. `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    /// The credential itself: for a header, and for scrubbing it out of text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Prefix of the environment variables a spec may name without an allowlist.
pub const TOKEN_ENV_PREFIX: &str = "TETHER_TOKEN_";

/// True if a spec may make the worker read `var`: `TETHER_TOKEN_<NAME>` or one of `allow`.
pub fn env_var_allowed(var: &str, allow: &[String]) -> bool {
    let rule = var.strip_prefix(TOKEN_ENV_PREFIX).is_some_and(|rest| {
        !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    rule || allow.iter().any(|a| a == var)
}

/// Why [`secret_from_env`] found no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvSecretError {
    /// The variable is neither `TETHER_TOKEN_*` nor allowed.
    #[error(
        "{0:?} may not be read: name a variable starting with {TOKEN_ENV_PREFIX} or one the worker's \
         configuration allows"
    )]
    NotAllowed(String),
    /// The variable is not set, or blank.
    #[error("environment variable {0} is not set (or empty)")]
    Unset(String),
}

/// The trimmed value of `var`, if a spec may name it ([`env_var_allowed`]) and it is set.
pub fn secret_from_env(var: &str, allow: &[String]) -> Result<Secret, EnvSecretError> {
    if !env_var_allowed(var, allow) {
        return Err(EnvSecretError::NotAllowed(var.into()));
    }
    match std::env::var(var) {
        Ok(t) if !t.trim().is_empty() => Ok(Secret::new(t.trim().to_string())),
        _ => Err(EnvSecretError::Unset(var.into())),
    }
}

/// How requests authenticate.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic ...`.
    Basic {
        /// User name (not secret, but never put into a URL).
        user: String,
        /// Password.
        password: Secret,
    },
    /// A bearer token from an OAuth2 token endpoint (client credentials).
    OAuth2(Arc<OAuth2>),
}

impl Auth {
    /// Every secret this may send, for scrubbing backend text.
    pub fn secrets(&self) -> Vec<String> {
        match self {
            Auth::None => vec![],
            Auth::Bearer(t) => vec![t.0.clone()],
            Auth::Basic { password, .. } => vec![password.0.clone()],
            Auth::OAuth2(o) => {
                let mut v = vec![o.client_secret.0.clone()];
                if let Ok(c) = o.cache.try_lock() {
                    v.extend(c.as_ref().map(|(t, _)| t.0.clone()));
                }
                v
            }
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_names_follow_the_rule_or_the_allowlist() {
        let none: Vec<String> = vec![];
        for ok in ["TETHER_TOKEN_SPARK", "TETHER_TOKEN_prod_2"] {
            assert!(env_var_allowed(ok, &none), "{ok}");
        }
        for bad in [
            "PGPASSWORD",
            "TETHER_TOKEN_",
            "TETHER_STATE",
            "tether_token_x",
            "TETHER_TOKEN_A-B",
        ] {
            assert!(!env_var_allowed(bad, &none), "{bad}");
            assert_eq!(
                secret_from_env(bad, &none).unwrap_err(),
                EnvSecretError::NotAllowed(bad.into())
            );
        }
        assert!(env_var_allowed(
            "SPARK_REST_TOKEN",
            &["SPARK_REST_TOKEN".to_string()]
        ));
    }

    #[test]
    fn secrets_stay_hidden() {
        let o = OAuth2::new(
            "https://idp.example/token",
            "c".into(),
            Secret::new("s3cr3t".into()),
            None,
        )
        .unwrap();
        let auth = Auth::OAuth2(Arc::new(o));
        let dbg = format!("{auth:?}");
        assert!(!dbg.contains("s3cr3t") && dbg.contains("redacted"), "{dbg}");
        assert_eq!(auth.secrets(), vec!["s3cr3t".to_string()]);
        let e = OAuth2::new(
            "https://u:pw@idp.example/t",
            "c".into(),
            Secret::new("x".into()),
            None,
        )
        .unwrap_err();
        assert!(!e.contains("pw") && e.contains("***@"), "{e}");
    }
}
