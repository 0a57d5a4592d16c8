//! Where a state store lives: parsing `open`'s argument, redacting passwords, the default path.
//!
//! ## Guarantees
//! - [`redact`] never returns a password that was in its input, whether it came in the URL's
//!   user-info (`user:secret@`) or as a `password=` query parameter.
//!
//! ## Caveats
//! - Redaction is textual and deliberately forgiving: a password that contains `@` or `/`
//!   without percent-encoding is still hidden, because we split at the *last* `@` before the
//!   query string rather than trusting the URL to be well formed.
use std::path::PathBuf;

/// The backend a location string names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://` or `postgresql://`), as given.
    Postgres(String),
}

impl Location {
    /// Reads a location: a plain path, `sqlite://PATH`, or a PostgreSQL URL.
    pub(crate) fn parse(location: &str) -> Location {
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            return Location::Postgres(location.to_string());
        }
        // `sqlite:///abs/path` keeps its leading slash; `sqlite://rel/path` is relative.
        let path = location
            .strip_prefix("sqlite://")
            .or_else(|| location.strip_prefix("sqlite:"))
            .unwrap_or(location);
        Location::Sqlite(PathBuf::from(path))
    }
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
    let Some(scheme_end) = location.find("://") else {
        return location.to_string();
    };
    let (scheme, rest) = location.split_at(scheme_end + 3);
    let (before_query, query) = match rest.find('?') {
        Some(q) => (&rest[..q], Some(&rest[q + 1..])),
        None => (rest, None),
    };
    let mut out = String::from(scheme);
    match before_query.rfind('@') {
        Some(at) => {
            let userinfo = &before_query[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&before_query[at..]);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        let parts: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out.push_str(&parts.join("&"));
    }
    out
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

    #[test]
    fn parses_locations() {
        assert_eq!(
            Location::parse("/a/b.db"),
            Location::Sqlite("/a/b.db".into())
        );
        assert_eq!(
            Location::parse("sqlite:///a/b.db"),
            Location::Sqlite("/a/b.db".into())
        );
        assert_eq!(
            Location::parse("sqlite://b.db"),
            Location::Sqlite("b.db".into())
        );
        assert_eq!(
            Location::parse("postgresql://u@h/d"),
            Location::Postgres("postgresql://u@h/d".into())
        );
    }

    #[test]
    fn redacts_passwords_everywhere() {
        assert_eq!(redact("postgres://u:p@h/d"), "postgres://u:***@h/d");
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact("postgres://h/d"), "postgres://h/d");
        // Unencoded '@' and '/' in the password must not leak a suffix of it.
        let r = redact("postgres://u:p@ss/w@rd@h:5432/d");
        assert_eq!(r, "postgres://u:***@h:5432/d");
        assert!(!r.contains("rd"));
        assert_eq!(
            redact("postgresql://h/d?user=u&PASSWORD=zz&x=1"),
            "postgresql://h/d?user=u&PASSWORD=***&x=1"
        );
        assert_eq!(redact("relative/path.db"), "relative/path.db");
    }
}
