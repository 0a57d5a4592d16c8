//! The one error of an HTTP exchange, and what it means for a submission.
//!
//! ## Guarantees
//! - [`HttpError::outcome`] classifies every failure as [`Outcome::Definite`] (the server, or
//!   our own check, said no: nothing was created and repeating cannot help),
//!   [`Outcome::Refused`] (nothing was sent, or nothing was done: trying later may work) or
//!   [`Outcome::Ambiguous`] (the request may have been received and acted upon).
//! - `Display` never contains a secret: addresses are shown without userinfo
//!   ([`super::shown`] for any address we did not check ourselves), reqwest's messages name
//!   the URL but never headers, and server text is escaped ([`crate::text`]).
//!
//! ## Caveats
//! - A 4xx is taken as definite even without a body (a proxy's 404 also means "not here"),
//!   except 408 and 429, which say the server did not get to the request.
use std::time::Duration;

use tether_core::connector::SubmitError;

/// What a failed exchange says about the request's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The server answered no (4xx, not the service expected, a redirect we do not follow) or
    /// we refused to send: nothing was created, and sending it again cannot help.
    Definite,
    /// Nothing was sent (connection refused, DNS, no token), or the server said it did not
    /// get to it (408, 429): nothing was created, trying later may work.
    Refused,
    /// The request may have been received and acted upon (timeout after sending, reset, 5xx).
    Ambiguous,
}

/// A failed HTTP exchange. Every `url` is one we checked (no userinfo) or passed through
/// [`super::shown`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// No connection could be made: nothing was sent.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// Address.
        url: String,
        /// The client's description of the failure (URL userinfo and secrets removed).
        reason: String,
    },
    /// Connected, but no complete answer in time: the request may have been received.
    #[error("no answer from {url} within {timeout:?}: {reason}")]
    Timeout {
        /// Address.
        url: String,
        /// The request timeout.
        timeout: Duration,
        /// The client's description of the failure (URL userinfo and secrets removed).
        reason: String,
    },
    /// Any other transport failure after connecting (reset, broken body).
    #[error("talking to {url} failed: {reason}")]
    Transport {
        /// Address.
        url: String,
        /// The client's description of the failure (URL userinfo and secrets removed).
        reason: String,
    },
    /// The server answered with an HTTP error status.
    #[error("{url} answered HTTP {status}: {message}")]
    Status {
        /// Address.
        url: String,
        /// HTTP status.
        status: u16,
        /// Server's words (first line, escaped) or our explanation.
        message: String,
    },
    /// Something answered, but not the service expected.
    #[error("{url} answered but is not a {what} ({detail})")]
    Unexpected {
        /// Address.
        url: String,
        /// What we expected (e.g. "Spark REST submission server").
        what: &'static str,
        /// HTTP status and the start of the body.
        detail: String,
    },
    /// The server answered with a redirect, and this client does not follow them.
    #[error(
        "{url} answered HTTP {status} redirecting to {location:?}: tether never follows redirects \
         (they could carry the token elsewhere); put the final address in the spec"
    )]
    Redirect {
        /// Address.
        url: String,
        /// HTTP status (3xx).
        status: u16,
        /// Where it pointed (escaped, shortened).
        location: String,
    },
    /// The body was longer than the caller reads from this kind of answer.
    #[error(
        "{url} sent more than {limit} bytes; tether stopped reading (the expected answer is far smaller: is \
         something else answering there?)"
    )]
    TooLarge {
        /// Address.
        url: String,
        /// The cap, in bytes.
        limit: usize,
    },
    /// An address we refuse to contact (userinfo, a `file:` scheme), or an id that cannot be
    /// put into a URL. Nothing was sent.
    #[error("refusing to request {url}: {reason}")]
    BadAddress {
        /// The address or id as given (escaped, userinfo hidden).
        url: String,
        /// The client's description of the failure (URL userinfo and secrets removed).
        reason: String,
    },
    /// No credentials could be had for the request (OAuth2 token endpoint failed): the request
    /// itself was never sent.
    #[error("cannot authenticate to {url}: {source}")]
    Auth {
        /// The address the request was for.
        url: String,
        /// What the token endpoint answered.
        #[source]
        source: Box<HttpError>,
    },
}

impl HttpError {
    /// What the failure says about the request's effect (see [`Outcome`]).
    pub fn outcome(&self) -> Outcome {
        match self {
            HttpError::Connect { .. } => Outcome::Refused,
            HttpError::Timeout { .. }
            | HttpError::Transport { .. }
            | HttpError::TooLarge { .. } => Outcome::Ambiguous,
            HttpError::Status {
                status: 408 | 429, ..
            } => Outcome::Refused,
            HttpError::Status { status, .. } if *status >= 500 => Outcome::Ambiguous,
            HttpError::Status { .. }
            | HttpError::Unexpected { .. }
            | HttpError::Redirect { .. }
            | HttpError::BadAddress { .. } => Outcome::Definite,
            // The request itself was not sent: a token endpoint's "no" is still definite
            // (bad client credentials stay bad), anything else may pass later.
            HttpError::Auth { source, .. } => match source.outcome() {
                Outcome::Definite => Outcome::Definite,
                _ => Outcome::Refused,
            },
        }
    }

    /// True unless the request certainly never reached the server.
    pub fn may_have_arrived(&self) -> bool {
        !matches!(
            self,
            HttpError::Connect { .. } | HttpError::BadAddress { .. } | HttpError::Auth { .. }
        )
    }

    /// The engine's reading of a failed create: definite → `Rejected`, refused →
    /// `Unavailable`, ambiguous → `Ambiguous` (the engine looks the job up before retrying).
    pub fn submit_error(&self) -> SubmitError {
        match self.outcome() {
            Outcome::Definite => SubmitError::Rejected {
                message: self.to_string(),
            },
            Outcome::Refused => SubmitError::Unavailable {
                reason: self.to_string(),
            },
            Outcome::Ambiguous => SubmitError::Ambiguous {
                reason: self.to_string(),
            },
        }
    }

    /// The HTTP status, if the server answered one.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } | HttpError::Redirect { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A reqwest failure as an [`HttpError`] for `url` (a checked address).
pub(crate) fn transport(url: &str, timeout: Duration, e: reqwest::Error) -> HttpError {
    // reqwest's Display names the URL (never headers); we strip userinfo from it anyway.
    let e = e.without_url();
    let mut reason = super::root_cause(&e);
    if url.starts_with("https:") && reason.contains("certificate") {
        reason.push_str(
            " (if the server's certificate is signed by a private CA, set ca_file in [job] to that CA's PEM file)",
        );
    }
    let url = url.to_string();
    if e.is_connect() {
        HttpError::Connect { url, reason }
    } else if e.is_timeout() {
        HttpError::Timeout {
            url,
            timeout,
            reason,
        }
    } else {
        HttpError::Transport { url, reason }
    }
}
