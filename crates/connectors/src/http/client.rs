//! The client every HTTP backend uses: TLS, timeouts, redirects, auth, capped bodies, retry.
//!
//! ## Guarantees
//! - TLS is rustls, verifying against the system's roots plus [`ClientConfig::ca_pem`]; a
//!   client certificate ([`ClientConfig::identity_pem`]) is presented when the server asks.
//! - Redirects are not followed unless [`ClientConfig::redirects`] allows some: a 3xx is
//!   [`HttpError::Redirect`], so credentials never go to an address the spec did not name.
//! - [`Client::exchange`] reads at most `cap` bytes of an answer ([`super::read_capped`]) and
//!   retries only [`Safety::Idempotent`] requests ([`super::retry`]).
//! - At most [`MAX_IN_FLIGHT`] requests of one [`Client`] (and its clones) are on the wire at
//!   once; the others wait their turn before they are sent (their timeout starts when sent).
//!   The connection pool keeps at most as many idle connections per host.
//!
//! ## Caveats
//! - The pool takes a connection back a moment after its answer was read (hyper returns it
//!   when it is ready again), so a request sent in that moment may open one more: over time a
//!   few more than [`MAX_IN_FLIGHT`] connections can be opened, never more on the wire at once
//!   than requests in flight plus those returning, and never more kept idle.
//! - The bound is per [`Client`]: connectors built from different specs on the same endpoint
//!   each have their own (a worker shares one connector per spec, so that is one per spec).
use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use reqwest::header::{HeaderMap, LOCATION};
use tokio::sync::Semaphore;

use super::{
    error::{transport, HttpError},
    read_capped, retry_after, retryable, Auth, BodyError, Retry, Safety, Secret,
};
use crate::text::{self, escape_controls};

/// Most requests one [`Client`] has on the wire at once, and most idle connections its pool
/// keeps per host. Without a bound, a worker starting 10,000 runs of one spec opened ~2,500
/// connections to the one master (each ~30 KiB of buffers, most of the worker's memory), and
/// at 100,000 runs ran out of file descriptors; a backend answers no faster for it.
pub const MAX_IN_FLIGHT: usize = 64;

/// How to build a [`Client`].
#[derive(Clone)]
pub struct ClientConfig {
    /// Whole-request timeout (connect, send, answer).
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Extra trusted CA certificates (PEM), on top of the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and its private key (PEM, concatenated) for mutual TLS.
    pub identity_pem: Option<Secret>,
    /// Redirects followed (0: none, the default).
    pub redirects: usize,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("ca_pem", &self.ca_pem.as_ref().map(|p| p.len()))
            .field("identity_pem", &self.identity_pem)
            .field("redirects", &self.redirects)
            .finish()
    }
}

impl ClientConfig {
    /// `timeout` per request, connecting within `timeout` or 5 s, no extra roots, no client
    /// certificate, no redirects.
    pub fn new(timeout: Duration) -> ClientConfig {
        ClientConfig {
            timeout,
            connect_timeout: timeout.min(Duration::from_secs(5)),
            ca_pem: None,
            identity_pem: None,
            redirects: 0,
        }
    }

    /// The reqwest client. `Err`: a CA or identity that is not PEM, or no TLS backend.
    pub fn build(&self) -> Result<reqwest::Client, String> {
        let policy = match self.redirects {
            0 => reqwest::redirect::Policy::none(),
            n => reqwest::redirect::Policy::limited(n),
        };
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .pool_max_idle_per_host(MAX_IN_FLIGHT)
            .redirect(policy);
        if let Some(pem) = &self.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("is not a PEM certificate file: {e}"))?;
            if certs.is_empty() {
                return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        if let Some(pem) = &self.identity_pem {
            // reqwest's message never quotes the PEM, so the key cannot leak through it.
            let id = reqwest::Identity::from_pem(pem.expose().as_bytes()).map_err(|e| {
                format!(
                    "client certificate: {} (give a PEM certificate and its PEM private key)",
                    super::root_cause(&e)
                )
            })?;
            builder = builder.identity(id);
        }
        builder
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))
    }
}

/// An answer read to the end (at most the cap).
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body, at most the cap.
    pub body: Vec<u8>,
}

/// The shared client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    auth: Auth,
    retry: Retry,
    timeout: Duration,
    /// Bounds the requests on the wire ([`MAX_IN_FLIGHT`]); shared by the clones.
    gate: Arc<Semaphore>,
}

impl Client {
    /// A client from `config`, authenticating with `auth`, retrying idempotent requests with
    /// `retry`.
    pub fn new(config: &ClientConfig, auth: Auth, retry: Retry) -> Result<Client, String> {
        Ok(Client {
            http: config.build()?,
            auth,
            retry,
            timeout: config.timeout,
            gate: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        })
    }

    /// A client on an existing reqwest client (e.g. shared by endpoint in a
    /// [`crate::pool::ClientPool`]) built by [`ClientConfig::build`] with `timeout`.
    pub fn from_reqwest(
        http: reqwest::Client,
        timeout: Duration,
        auth: Auth,
        retry: Retry,
    ) -> Client {
        Client {
            http,
            auth,
            retry,
            timeout,
            gate: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// The underlying reqwest client, to build requests for [`Client::exchange`].
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.http
    }

    /// The credentials, e.g. to scrub their secrets out of backend text.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Sends the request `make` builds (once per attempt) to `url` (the address errors name,
    /// its userinfo hidden), with credentials, and reads at most `cap` bytes of the answer. A redirect (when
    /// not followed) is an error; any other status is the caller's to read. 429/502/503/504 are
    /// retried if `safety` allows; when attempts run out the last one is returned as an answer.
    pub async fn exchange(
        &self,
        safety: Safety,
        url: &str,
        cap: usize,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Answer, HttpError> {
        let url = &super::hide_userinfo(url);
        let start = Instant::now();
        let mut attempt = 1;
        loop {
            let answer = self.once(url, cap, make(&self.http)).await?;
            if safety == Safety::Idempotent && retryable(answer.status) {
                let server = retry_after(&answer.headers, SystemTime::now());
                if let Some(wait) = self.retry.next_wait(attempt, server, start.elapsed()) {
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    continue;
                }
            }
            return Ok(answer);
        }
    }

    /// `answer` if its status is 2xx; otherwise [`HttpError::Status`] with the first line of
    /// the body, escaped and scrubbed of this client's secrets (a server may echo them).
    pub fn success(&self, url: &str, answer: Answer) -> Result<Answer, HttpError> {
        if (200..300).contains(&answer.status) {
            return Ok(answer);
        }
        let url = &super::hide_userinfo(url);
        let secrets = self.auth.secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let body = String::from_utf8_lossy(&answer.body);
        Err(HttpError::Status {
            url: url.into(),
            status: answer.status,
            message: text::clean(&super::snippet(&super::first_line(&body)), &secrets),
        })
    }

    async fn once(
        &self,
        url: &str,
        cap: usize,
        req: reqwest::RequestBuilder,
    ) -> Result<Answer, HttpError> {
        // Held until the answer is read: the connection goes back to the pool only then. The
        // semaphore is never closed, so acquiring only waits.
        let _turn = self.gate.acquire().await.ok();
        let req = match &self.auth {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t.expose()),
            Auth::Basic { user, password } => req.basic_auth(user, Some(password.expose())),
            Auth::OAuth2(o) => {
                let token =
                    o.token(&self.http, self.timeout)
                        .await
                        .map_err(|e| HttpError::Auth {
                            url: url.into(),
                            source: Box::new(e),
                        })?;
                req.bearer_auth(token.expose())
            }
        };
        let resp = req
            .send()
            .await
            .map_err(|e| transport(url, self.timeout, e))?;
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            let location = resp
                .headers()
                .get(LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            return Err(HttpError::Redirect {
                url: url.into(),
                status,
                location: escape_controls(&super::snippet(&super::hide_userinfo(&location))),
            });
        }
        if status == 401 {
            if let Auth::OAuth2(o) = &self.auth {
                // The token was revoked or expired early: the next request fetches a new one.
                o.forget().await;
            }
        }
        let headers = resp.headers().clone();
        match read_capped(resp, cap).await {
            Ok(body) => Ok(Answer {
                status,
                headers,
                body,
            }),
            Err(BodyError::TooLarge) => Err(HttpError::TooLarge {
                url: url.into(),
                limit: cap,
            }),
            Err(BodyError::Transport(e)) => Err(transport(url, self.timeout, e)),
        }
    }
}
