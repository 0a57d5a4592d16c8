//! Credentials for HTTP backends: bearer tokens from allowed environment variables, basic auth,
//! and OAuth2 client credentials with a cached, refreshed token.
//!
//! ## Guarantees
//! - A [`Secret`] never shows in `Debug` or `Display`; [`Auth::secrets`] lists every secret so
//!   that backend text can be scrubbed of them ([`crate::text`]).
//! - A spec may only name environment variables `TETHER_TOKEN_<NAME>` (letters, digits, `_`)
//!   or ones the worker's configuration allows ([`env_var_allowed`]): a spec cannot make a
//!   worker send its other secrets (a database password) to a URL of the spec's choosing.
use std::{fmt, sync::Arc};

use super::OAuth2;

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
                let mut v = vec![o.client_secret().to_string()];
                v.extend(o.cached_token());
                v
            }
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
