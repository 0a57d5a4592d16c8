//! Bearer tokens with `read` / `write` scopes, and where the server may listen without them.
//!
//! Tokens come from the config file's `[serve]` table, as SHA-256 digests (the file then holds
//! no secret), and from the environment in clear (`TETHER_SERVE_TOKEN_READ`,
//! `TETHER_SERVE_TOKEN_WRITE`, each one token or several separated by commas):
//!
//! ```toml
//! [serve]
//! tokens = [
//!   { name = "dashboards", scope = "read",  sha256 = "9f86d08…" },  # printf %s TOKEN | sha256sum
//!   { name = "ci",         scope = "write", sha256 = "60303ae…" },
//! ]
//! ```
//!
//! ## Guarantees
//! - A presented token is hashed and compared with every configured digest in constant time
//!   (`subtle`), all of them, whatever matched: the time taken says nothing about the tokens.
//! - Tokens (and their digests) never reach logs, errors or responses; a refusal names the
//!   scope needed, never the token.
//! - `write` includes `read`. Without any token configured the API is open, so the server
//!   listens on loopback only unless `--insecure-no-auth` is given ([`check_listen`]).
use std::net::SocketAddr;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Scope {
    /// Read runs, their history and logs.
    Read,
    /// Also submit, cancel and rerun.
    Write,
}

/// Why the token settings are unusable. Nothing was served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthConfigError {
    /// The config file's `[serve]` table is not of the documented shape.
    #[error("config file [serve]: {0} (see the README's `tether serve` section)")]
    Parse(#[source] toml::de::Error),
    /// A digest is not 64 hex digits.
    #[error(
        "config file [serve] token {name:?}: sha256 must be 64 hex digits \
         (`printf %s TOKEN | sha256sum`)"
    )]
    Digest {
        /// The token's name.
        name: String,
    },
    /// An environment token is empty or too short to be a secret.
    #[error("{var}: a token must have at least 16 characters (write a long random string)")]
    Short {
        /// The variable.
        var: &'static str,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeTable {
    #[serde(default)]
    tokens: Vec<TokenEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    #[serde(default)]
    name: String,
    scope: Scope,
    sha256: String,
}

/// The configured tokens (their digests and scopes).
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<([u8; 32], Scope)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the digests.
        write!(f, "Tokens({} configured)", self.entries.len())
    }
}

/// The environment variables holding tokens in clear.
pub const ENV_READ: &str = "TETHER_SERVE_TOKEN_READ";
/// See [`ENV_READ`].
pub const ENV_WRITE: &str = "TETHER_SERVE_TOKEN_WRITE";

impl Tokens {
    /// No token: the API is open (loopback only).
    pub fn none() -> Tokens {
        Tokens::default()
    }

    /// Tokens from the config file's `[serve]` table and the environment.
    pub fn load(serve: &toml::Table) -> Result<Tokens, AuthConfigError> {
        let table: ServeTable = serve.clone().try_into().map_err(AuthConfigError::Parse)?;
        let mut tokens = Tokens::none();
        for t in table.tokens {
            let digest = parse_digest(&t.sha256).ok_or_else(|| AuthConfigError::Digest {
                name: t.name.clone(),
            })?;
            tokens.entries.push((digest, t.scope));
        }
        for (var, scope) in [(ENV_READ, Scope::Read), (ENV_WRITE, Scope::Write)] {
            if let Ok(value) = std::env::var(var) {
                for token in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    tokens = tokens.with_token(var, token, scope)?;
                }
            }
        }
        Ok(tokens)
    }

    /// Adds a token given in clear (from `var`, for messages).
    pub fn with_token(
        mut self,
        var: &'static str,
        token: &str,
        scope: Scope,
    ) -> Result<Tokens, AuthConfigError> {
        if token.len() < 16 {
            return Err(AuthConfigError::Short { var });
        }
        self.entries.push((digest(token), scope));
        Ok(self)
    }

    /// Whether any token is configured (else the API is open).
    pub fn any(&self) -> bool {
        !self.entries.is_empty()
    }

    /// The widest scope `presented` grants, if it is a configured token. Every digest is
    /// compared, in constant time, whatever matched.
    pub fn scope_of(&self, presented: &str) -> Option<Scope> {
        let d = digest(presented);
        let mut best: Option<Scope> = None;
        for (known, scope) in &self.entries {
            if bool::from(known.ct_eq(&d)) {
                best = best.max(Some(*scope));
            }
        }
        best
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Refuses to listen beyond loopback with an open API (no token configured) unless
/// `insecure_no_auth`.
pub fn check_listen(
    addr: SocketAddr,
    tokens: &Tokens,
    insecure_no_auth: bool,
) -> Result<(), String> {
    if tokens.any() || addr.ip().is_loopback() || insecure_no_auth {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {addr} without a token: anyone who reaches it could submit and \
         cancel runs. Configure tokens ([serve] tokens in the config file, or {ENV_READ} / \
         {ENV_WRITE}), listen on 127.0.0.1, or pass --insecure-no-auth"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_from_the_file_and_tokens_from_the_env_grant_their_scopes() {
        let hex: String = digest("read-token-0123456789")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let table: toml::Table = toml::from_str(&format!(
            "tokens = [{{ name = \"r\", scope = \"read\", sha256 = \"{hex}\" }}]"
        ))
        .unwrap();
        let tokens = Tokens::load(&table)
            .unwrap()
            .with_token("T", "write-token-0123456789", Scope::Write)
            .unwrap();
        assert_eq!(tokens.scope_of("read-token-0123456789"), Some(Scope::Read));
        assert_eq!(
            tokens.scope_of("write-token-0123456789"),
            Some(Scope::Write)
        );
        assert_eq!(tokens.scope_of("read-token-012345678"), None);
        assert_eq!(tokens.scope_of(""), None);
        assert!(!format!("{tokens:?}").contains(&hex[..8]));
    }

    #[test]
    fn bad_settings_are_refused_with_what_to_do() {
        let table: toml::Table =
            toml::from_str("tokens = [{ name = \"x\", scope = \"read\", sha256 = \"abc\" }]")
                .unwrap();
        let e = Tokens::load(&table).unwrap_err().to_string();
        assert!(e.contains("64 hex digits"), "{e}");
        let table: toml::Table = toml::from_str("tokenz = []").unwrap();
        assert!(Tokens::load(&table).is_err());
        let e = Tokens::none()
            .with_token("V", "short", Scope::Read)
            .unwrap_err()
            .to_string();
        assert!(e.contains("16 characters"), "{e}");
    }

    #[test]
    fn an_open_api_listens_on_loopback_only() {
        let open = Tokens::none();
        assert!(check_listen("127.0.0.1:1".parse().unwrap(), &open, false).is_ok());
        assert!(check_listen("[::1]:1".parse().unwrap(), &open, false).is_ok());
        let e = check_listen("0.0.0.0:1".parse().unwrap(), &open, false).unwrap_err();
        assert!(e.contains("--insecure-no-auth"), "{e}");
        assert!(check_listen("0.0.0.0:1".parse().unwrap(), &open, true).is_ok());
        let closed = open
            .with_token("V", "0123456789abcdef", Scope::Read)
            .unwrap();
        assert!(check_listen("0.0.0.0:1".parse().unwrap(), &closed, false).is_ok());
    }
}
