//! Where a state store lives: parsing `open`'s argument, redacting passwords, the default path.
//!
//! ## Guarantees
//! - One parser ([`Location::parse`]) for every use of a location (opening the store, deriving
//!   the jobs directory next to an SQLite file), so the two can never disagree.
//! - Strict: only `postgres://`, `postgresql://`, `sqlite://`, `sqlite:` and plain paths are
//!   accepted. A typo (`postgress://`), another database (`mysql://`), a libpq key/value string
//!   (`host=… password=…`) or any other `scheme:` prefix is a [`LocationError`], never a file
//!   named after it in the current directory (one store per machine would end deduplication).
//! - [`redact`] never returns a password that was in its input: user-info passwords and
//!   `password=` query parameters (or libpq `password=` words) become `***`. URLs are taken
//!   apart by a real URL parser, so a password containing `?`, `#`, `@` or `/` does not leak.
//! - A [`LocationError`] never contains the input's password.
//!
//! ## Caveats
//! - A plain path containing a colon before any slash (`a:b.db`) reads as a scheme and is
//!   refused; write it `./a:b.db`. Likewise a bare `word=value` reads as a libpq string
//!   (`./a=b.db` is fine).
use std::path::{Path, PathBuf};

/// The forms a location may take, for error messages.
pub const ACCEPTED_FORMS: &str = "accepted forms: postgres://USER@HOST/DB, postgresql://…, \
     sqlite:///ABS/PATH, sqlite:PATH or a plain file path";

/// The backend a location string names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://` or `postgresql://`), as given.
    Postgres(String),
}

/// A location that is none of the accepted forms. Its text never includes a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state store location {shown:?} is not supported: {why}; {ACCEPTED_FORMS}")]
pub struct LocationError {
    /// The location, redacted (or just its scheme).
    pub shown: String,
    /// What is wrong with it.
    pub why: String,
}

impl Location {
    /// Reads a location: a plain path, `sqlite://PATH`, `sqlite:PATH`, or a PostgreSQL URL.
    /// `sqlite:///abs/path` keeps its leading slash; `sqlite://rel/path` is relative.
    pub fn parse(location: &str) -> Result<Location, LocationError> {
        let err = |shown: String, why: &str| LocationError {
            shown,
            why: why.to_string(),
        };
        if location.trim().is_empty() {
            return Err(err(String::new(), "it is empty"));
        }
        if let Some(scheme) = scheme_of(location) {
            let lower = scheme.to_ascii_lowercase();
            return match lower.as_str() {
                "postgres" | "postgresql" => {
                    if !location[scheme.len()..].starts_with("://") {
                        return Err(err(
                            format!("{scheme}:"),
                            "a PostgreSQL location must be a URL starting with postgres://",
                        ));
                    }
                    url::Url::parse(location).map_err(|e| {
                        err(
                            redact(location),
                            &format!("not a valid PostgreSQL URL ({e})"),
                        )
                    })?;
                    Ok(Location::Postgres(location.to_string()))
                }
                "sqlite" => {
                    let rest = &location[scheme.len() + 1..];
                    let path = rest.strip_prefix("//").unwrap_or(rest);
                    if path.is_empty() {
                        return Err(err(location.to_string(), "it names no file"));
                    }
                    Ok(Location::Sqlite(PathBuf::from(path)))
                }
                _ => Err(err(
                    format!("{scheme}:"),
                    &format!("unknown scheme {scheme:?} (a typo? another database?)"),
                )),
            };
        }
        if looks_like_libpq(location) {
            return Err(err(
                redact(location),
                "this looks like a libpq key=value connection string; write it as a \
                 postgres:// URL (e.g. postgres://user@host:5432/db?sslmode=verify-full)",
            ));
        }
        Ok(Location::Sqlite(PathBuf::from(location)))
    }

    /// The SQLite file, if this is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }
}

/// The `scheme` of `scheme:rest` (RFC 3986 syntax: a letter, then letters, digits, `+-.`),
/// if the location starts with one.
fn scheme_of(location: &str) -> Option<&str> {
    let colon = location.find(':')?;
    let scheme = &location[..colon];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let ok = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    ok.then_some(scheme)
}

/// `host=db user=app password=…`: words of `key=value` with a libpq-like key.
fn looks_like_libpq(location: &str) -> bool {
    location.split_whitespace().any(|word| {
        word.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    })
}

/// The location with any password replaced by `***`, fit for errors and logs.
///
/// ```
/// assert_eq!(
///     tether_store::redact("postgres://app:s3cret@db:5432/tether?password=x&sslmode=disable"),
///     "postgres://app:***@db:5432/tether?password=***&sslmode=disable"
/// );
/// assert_eq!(tether_store::redact("/var/lib/tether.db"), "/var/lib/tether.db");
/// ```
pub fn redact(location: &str) -> String {
    if scheme_of(location).is_some() && location.contains("://") {
        return match url::Url::parse(location) {
            Ok(url) => redact_url(url),
            // Unparseable: keep only the scheme, which cannot hold a secret.
            Err(_) => format!(
                "{}://<unparseable, hidden>",
                scheme_of(location).unwrap_or_default()
            ),
        };
    }
    // libpq-style words or a path: hide the value of any `password=` word.
    location
        .split(' ')
        .map(|w| match w.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn redact_url(mut url: url::Url) -> String {
    if url.path().contains('@') {
        // An unencoded `@`/`/` in a password made the parser end the user-info early: the
        // rest of the password sits in the path. Show nothing that could be part of it.
        return format!("{}://<hidden>", url.scheme());
    }
    if url.password().is_some() {
        // Cannot fail on a URL with a host, which any URL with a password has.
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("password") {
                    "***".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.set_fragment(None);
    url.to_string().replace("%2A%2A%2A", "***")
}

/// The default SQLite state file: `$XDG_STATE_HOME/tether/tether.db`, else
/// `$HOME/.local/state/tether/tether.db`.
///
/// Relative or empty `XDG_STATE_HOME` values are ignored, as the XDG spec asks. Without `HOME`
/// either, the result is the relative path `.local/state/tether/tether.db` (the caller's
/// working directory), which is better than failing in a stripped-down environment.
pub fn default_sqlite_path() -> PathBuf {
    let abs = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    if let Some(state) = abs("XDG_STATE_HOME") {
        return state.join("tether").join("tether.db");
    }
    let home = abs("HOME").unwrap_or_default();
    home.join(".local")
        .join("state")
        .join("tether")
        .join("tether.db")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(p: &str) -> Result<Location, LocationError> {
        Ok(Location::Sqlite(p.into()))
    }

    #[test]
    fn parses_locations() {
        assert_eq!(Location::parse("/a/b.db"), sqlite("/a/b.db"));
        assert_eq!(Location::parse("rel/b.db"), sqlite("rel/b.db"));
        assert_eq!(Location::parse("sqlite:///a/b.db"), sqlite("/a/b.db"));
        assert_eq!(Location::parse("sqlite://b.db"), sqlite("b.db"));
        assert_eq!(Location::parse("sqlite:/abs/b.db"), sqlite("/abs/b.db"));
        assert_eq!(Location::parse("sqlite:b.db"), sqlite("b.db"));
        assert_eq!(
            Location::parse("postgresql://u@h/d"),
            Ok(Location::Postgres("postgresql://u@h/d".into()))
        );
        assert_eq!(
            Location::parse("postgres://u:p@h:5432/d?sslmode=require"),
            Ok(Location::Postgres(
                "postgres://u:p@h:5432/d?sslmode=require".into()
            ))
        );
    }

    #[test]
    fn refuses_everything_else_without_echoing_secrets() {
        for bad in [
            "postgress://u:hunter2@h/d",
            "mysql://x",
            "http://h/x",
            "postgres:hunter2",
            "host=db user=app password=hunter2",
            "dbname=tether password=hunter2",
            "",
            "sqlite:",
        ] {
            let e = Location::parse(bad).expect_err(bad).to_string();
            assert!(!e.contains("hunter2"), "{bad}: {e}");
            assert!(e.contains("postgres://"), "{bad}: names the forms: {e}");
        }
    }

    #[test]
    fn redacts_passwords_everywhere() {
        assert_eq!(redact("postgres://u:p@h/d"), "postgres://u:***@h/d");
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact("postgres://h/d"), "postgres://h/d");
        assert_eq!(
            redact("postgresql://h/d?user=u&PASSWORD=zz&x=1"),
            "postgresql://h/d?user=u&PASSWORD=***&x=1"
        );
        assert_eq!(redact("relative/path.db"), "relative/path.db");
        assert_eq!(
            redact("host=h password=zz user=u"),
            "host=h password=*** user=u"
        );
        // Characters that end the user-info or start a query/fragment must not leak.
        for (raw, secret) in [
            ("postgres://u:pa%3Fss@h/d", "pa%3Fss"),
            ("postgres://u:p%40ss%2Fw%40rd@h:5432/d", "ss%2Fw"),
            ("postgres://u:se?cret@h/d", "cret"),
            ("postgres://u:se#cret@h/d", "cret"),
            ("postgres://u:p@ss/w@rd@h:5432/d", "rd"),
        ] {
            let r = redact(raw);
            assert!(!r.contains(secret), "{raw} -> {r}");
        }
    }
}
