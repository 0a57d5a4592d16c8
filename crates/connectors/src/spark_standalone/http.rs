//! HTTP plumbing of the Spark connector: the client, bounded body reading, address checks and
//! path encoding. (A later issue moves this into a module shared by all HTTP backends.)
//!
//! ## Guarantees
//! - Redirects are never followed: a 3xx is an answer, reported as such by the caller.
//! - `https://` is verified against the system's trust store plus the spec's `ca_file`.
//! - [`read_capped`] reads a body chunk by chunk and stops at the cap: memory never holds more
//!   than the cap plus one chunk, whatever the server sends (or keeps sending).
//! - [`path_segment`] percent-encodes an id for a URL path and refuses `.`, `..` and the empty
//!   id: an id cannot change which resource is asked for.
//! - [`web_url`] accepts only `http`/`https` with a host and no userinfo (`user:pass@`): such
//!   addresses (in a spec, or worker UIs reported by the master) are refused, never stripped, so
//!   no credential is ever printed, stored or sent to a host the spec did not name.
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Url;

/// Cap of a JSON answer (REST messages, the master's `/json/`): Spark's are kilobytes.
pub const JSON_CAP: usize = 8 << 20;

/// Room for the header line of a worker's log page, on top of the bytes asked for.
pub const LOG_PAGE_SLACK: usize = 64 << 10;

/// An HTTP client: rustls, no redirects, `timeout` per request, extra roots from `ca_pem`.
pub fn client(timeout: Duration, ca_pem: Option<&[u8]>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        // Spark never redirects API calls; a redirect means something else answers, and
        // following it would send the bearer token (or our requests) where the spec never said.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("is not a PEM certificate file: {e}"))?;
        if certs.is_empty() {
            return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
        }
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
    }
    builder
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Longer than the cap (announced or sent).
    TooLarge,
    /// The transport failed while reading.
    Transport(reqwest::Error),
}

/// The body of `resp`, at most `cap` bytes; more is [`BodyError::TooLarge`] and the rest is
/// never read (the connection is dropped).
pub async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Everything but unreserved characters (RFC 3986) is encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `id` as one URL path segment. `Err`: an id that would name another path.
pub fn path_segment(id: &str) -> Result<String, String> {
    if matches!(id, "" | "." | "..") {
        return Err(format!("{id:?} is not a valid driver id"));
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

/// A URL for a message: quoted, with any userinfo replaced by `***`.
pub fn shown(text: &str) -> String {
    match text.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("\"{scheme}://***@{}\"", &rest[at + 1..]),
                None => format!("{text:?}"),
            }
        }
        None => format!("{text:?}"),
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
