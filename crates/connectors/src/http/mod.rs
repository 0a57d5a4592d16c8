//! Shared HTTP plumbing for every HTTP backend (Spark standalone today; YARN, Livy, Databricks
//! next): one client builder ([`ClientConfig`]: rustls, custom CA, client certificate,
//! timeouts, no redirects), capped bodies ([`read_capped`]), retry of idempotent requests
//! ([`Retry`], [`Safety`]), credentials ([`Auth`]: bearer from an allowed variable, basic,
//! OAuth2 client credentials) and one error ([`HttpError`]) that tells a definite "no" from
//! "nothing was sent" from "it may have arrived" ([`Outcome`], [`HttpError::submit_error`]).
//!
//! Each submodule states its guarantees; together:
//! ## Guarantees
//! - No secret (token, password, client secret, private key) reaches `Debug`, `Display` or an
//!   error; no address with userinfo is contacted or printed as given.
//! - A create is sent once ([`Safety::Once`]); only idempotent requests are repeated.
//! - Memory per answer is bounded by the caller's cap.
mod auth;
mod body;
mod client;
mod error;
mod oauth2;
mod retry;
mod url;

pub use auth::{env_var_allowed, secret_from_env, Auth, EnvSecretError, Secret, TOKEN_ENV_PREFIX};
pub use body::{read_capped, BodyError};
pub use client::{Answer, Client, ClientConfig, MAX_IN_FLIGHT};
pub use error::{HttpError, Outcome};
pub use oauth2::OAuth2;
pub use retry::{retry_after, retryable, Retry, Safety};
pub use url::{first_line, hide_userinfo, path_segment, root_cause, shown, snippet, web_url};
