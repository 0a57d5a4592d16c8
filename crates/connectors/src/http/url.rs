//! Addresses: checked web URLs, ids as path segments, addresses shown without userinfo, and
//! short forms of server text for messages.
//!
//! ## Guarantees
//! - [`path_segment`] percent-encodes an id for a URL path and refuses `.`, `..` and the empty
//!   id: an id cannot change which resource is asked for.
//! - [`web_url`] accepts only `http`/`https` with a host and no userinfo (`user:pass@`): such
//!   addresses (in a spec, or reported by a server) are refused, never stripped, so no
//!   credential is ever printed, stored or sent to a host the spec did not name.
//! - [`shown`] hides the userinfo of any address it prints.
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Url;

/// Everything but unreserved characters (RFC 3986) is encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `id` as one URL path segment. `Err`: an id that would name another path.
pub fn path_segment(id: &str) -> Result<String, String> {
    if matches!(id, "" | "." | "..") {
        return Err(format!("{id:?} is not a valid id"));
    }
    Ok(utf8_percent_encode(id, SEGMENT).to_string())
}

/// Parses and checks a web address: `http`/`https`, a host, no userinfo.
pub fn web_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "has scheme {:?}: only http:// and https:// are spoken",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "carries a user name or password (user:pass@): credentials never go in a URL; use token_env"
                .into(),
        );
    }
    if url.host_str().unwrap_or_default().is_empty() {
        return Err("has no host".into());
    }
    Ok(url)
}

/// A URL for a message: quoted and escaped, with any userinfo replaced by `***`.
pub fn shown(text: &str) -> String {
    format!("{:?}", hide_userinfo(text))
}

/// `text` with the userinfo of a URL (`user:pass@`) replaced by `***`.
pub fn hide_userinfo(text: &str) -> String {
    match text.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => text.to_string(),
            }
        }
        None => text.to_string(),
    }
}

/// An error and its sources on one line.
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s = format!("{s}: {inner}");
        src = inner.source();
    }
    s
}

/// First line of a server message (Spark appends stack traces).
pub fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
}

/// The start of a body, for messages.
pub fn snippet(s: &str) -> String {
    let s = s.trim();
    let cut: String = s.chars().take(120).collect();
    if cut.len() < s.len() {
        format!("{cut}...")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_change_the_path() {
        assert_eq!(
            path_segment("driver-20261122105255-0000").unwrap(),
            "driver-20261122105255-0000"
        );
        assert_eq!(
            path_segment("a/../../x?y#z").unwrap(),
            "a%2F..%2F..%2Fx%3Fy%23z"
        );
        assert_eq!(path_segment("%2e%2e").unwrap(), "%252e%252e");
        for bad in ["", ".", ".."] {
            assert!(path_segment(bad).is_err(), "{bad:?}");
        }
        let url = Url::parse(&format!(
            "http://m:6066/v1/submissions/status/{}",
            path_segment("../../../json/").unwrap()
        ))
        .unwrap();
        assert_eq!(url.path(), "/v1/submissions/status/..%2F..%2F..%2Fjson%2F");
    }

    #[test]
    fn userinfo_is_never_shown() {
        assert_eq!(shown("https://u:pw@h:1/p?q"), "\"https://***@h:1/p?q\"");
        assert_eq!(hide_userinfo("http://h/a@b"), "http://h/a@b");
        assert_eq!(shown("x\ny"), "\"x\\ny\"");
    }

    #[test]
    fn web_addresses_are_checked() {
        assert!(web_url("http://10.0.0.5:8081").is_ok());
        assert!(web_url("https://w.example:8481/").is_ok());
        for (bad, why) in [
            ("file:///etc/passwd", "scheme"),
            ("ftp://w:21", "scheme"),
            ("http://user:pw@w:8081", "user name or password"),
            ("http://user@w:8081", "user name or password"),
            ("w:8081", "scheme"),
            ("not a url", "not a URL"),
        ] {
            let e = web_url(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
