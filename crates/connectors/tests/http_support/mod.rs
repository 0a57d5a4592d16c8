//! Test servers for the shared HTTP layer: the test kit's fake HTTP server
//! ([`tether_testkit::http::FakeServer`]) on a loopback port, plain or TLS (a CA, a server
//! certificate and optionally a required client certificate made in the test), answering the n-th
//! request through a closure. They stand in for backends and token endpoints that must misbehave
//! on demand (429/5xx, hangs, resets, huge bodies). This file only keeps the tests' vocabulary.
#![allow(dead_code)]

use std::sync::{atomic::AtomicU64, Arc};

use tether_testkit::http::{FakeServer, Reply as Kit};
pub use tether_testkit::http::{Request as Seen, TestCa};

/// What a test server does with a request.
pub enum Reply {
    /// A complete response: status (`503 Service Unavailable`), extra header lines, body.
    Full(&'static str, Vec<String>, Vec<u8>),
    /// Reads the request, never answers (the client times out after sending).
    Hang,
    /// Reads the request, then closes the connection without a word (a reset mid-request).
    Close,
    /// `200 OK` without a length, then spaces until the client goes away.
    Endless,
}

impl Reply {
    /// `status` with a text body and extra headers.
    pub fn with(status: &'static str, headers: &[&str], body: &str) -> Reply {
        Reply::Full(
            status,
            headers.iter().map(|h| h.to_string()).collect(),
            body.as_bytes().to_vec(),
        )
    }
    /// 200 with a JSON body.
    pub fn json(body: serde_json::Value) -> Reply {
        Reply::with(
            "200 OK",
            &["Content-Type: application/json"],
            &body.to_string(),
        )
    }
    /// 200 with a text body.
    pub fn text(body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full("200 OK", vec![], body.into())
    }

    fn into_kit(self) -> Kit {
        match self {
            Reply::Full(status, headers, body) => {
                let code = status.split(' ').next().and_then(|c| c.parse().ok());
                let mut r = Kit::text(code.expect("a status line like `200 OK`"), body);
                for h in headers {
                    let (k, v) = h.split_once(':').expect("a header line `Name: value`");
                    r = r.header(k.trim(), v.trim());
                }
                r
            }
            Reply::Hang => Kit::Hang,
            Reply::Close => Kit::Drop,
            Reply::Endless => Kit::Endless,
        }
    }
}

/// A running test server (stopped when dropped).
pub struct TestServer {
    /// `http://127.0.0.1:<port>` or `https://...`.
    pub url: String,
    /// Body bytes written by [`Reply::Endless`] answers.
    pub endless_sent: Arc<AtomicU64>,
    server: FakeServer,
}

impl TestServer {
    /// Requests received so far.
    pub fn count(&self) -> usize {
        self.server.count()
    }
    /// A copy of the requests received so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.server.requests()
    }
    /// `METHOD /path?query` of the requests received so far.
    pub fn lines(&self) -> Vec<String> {
        self.requests().iter().map(Seen::line).collect()
    }
}

/// Starts a test server; `tls` makes it speak HTTPS (requiring a client certificate if the
/// [`TestCa`] says so). `handler` gets the request's index (0-based) and the request.
pub async fn serve(
    tls: Option<&TestCa>,
    handler: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static,
) -> TestServer {
    let mut b = FakeServer::builder()
        .keep_alive(false)
        .fallback(move |r| handler(r.index, r).into_kit());
    if let Some(ca) = tls {
        b = b.tls(ca);
    }
    let server = b
        .start()
        .await
        .expect("a loopback port for the test server");
    TestServer {
        url: server.url().to_string(),
        endless_sent: server.streamed(),
        server,
    }
}
