//! A scripted **fake** HTTP/1.1 server on a loopback port, for the tests of HTTP connectors and
//! of the shared HTTP layer. It is not a backend: it answers what it is told, nothing else.
//! hyper speaks the protocol (no hand-rolled parsing); plain or, with the `tls` feature, HTTPS
//! with a CA made in the test ([`TestCa`]).
//!
//! - **Expectations, in order** ([`FakeServer::expect`]): each request is compared with the
//!   oldest expectation left (method + [`PathMatch`]); if it matches, the expectation is used up
//!   and its [`Reply`] sent.
//! - **Fallback routes** ([`Builder::fallback`]): a closure answering whatever no expectation
//!   takes, for stateful fakes (see [`crate::fakes`]). Without one, an unexpected request gets a
//!   `500` naming it, and [`FakeServer::assert_done`] fails.
//! - **Faults** are replies: `429` with `Retry-After` ([`Reply::too_many_requests`]), 5xx
//!   ([`Reply::server_error`]), a delay ([`Reply::after`], longer than the client's timeout for a
//!   timeout), [`Reply::Hang`], [`Reply::Drop`] (connection closed after reading the request: a
//!   lost response), [`Reply::Endless`]; and connection refused once [`FakeServer::stop`]ped.
//! - **Records** every request ([`Request`]: method, path, query, headers, body).
//!
//! ## Caveats
//! - HTTP/1.1 only; keep-alive unless [`Builder::keep_alive`]`(false)`.
//! - Dropping the server aborts its accept loop and every open connection.
use std::{
    collections::VecDeque,
    convert::Infallible,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::Notify,
    task::{JoinHandle, JoinSet},
};

mod script;
#[cfg(feature = "tls")]
mod tls;

pub use script::{Expect, PathMatch, Reply, Request};
#[cfg(feature = "tls")]
pub use tls::TestCa;

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// How to start a [`FakeServer`].
#[derive(Default)]
pub struct Builder {
    fallback: Option<Handler>,
    close_after_each: bool,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Builder {
    /// Answers every request no expectation takes.
    pub fn fallback(mut self, f: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Builder {
        self.fallback = Some(Arc::new(f));
        self
    }
    /// `false`: `connection: close` after every response (each request on a new connection).
    pub fn keep_alive(mut self, keep: bool) -> Builder {
        self.close_after_each = !keep;
        self
    }
    /// Speaks HTTPS with `ca`'s server certificate (requiring a client certificate if it says so).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, ca: &TestCa) -> Builder {
        self.tls = Some(ca.acceptor());
        self
    }
    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(self) -> std::io::Result<FakeServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        #[cfg(feature = "tls")]
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        #[cfg(not(feature = "tls"))]
        let scheme = "http";
        let shared = Arc::new(Shared {
            script: Mutex::default(),
            requests: Mutex::default(),
            fallback: self.fallback.clone(),
            close_after_each: self.close_after_each,
            streamed: Arc::default(),
            open: AtomicUsize::new(0),
            total: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone(), self));
        Ok(FakeServer {
            url: format!("{scheme}://{addr}"),
            addr,
            shared,
            task: Some(task),
        })
    }
}

#[derive(Default)]
struct Script {
    expected: VecDeque<Expect>,
    unexpected: Vec<String>,
}

struct Shared {
    script: Mutex<Script>,
    requests: Mutex<Vec<Request>>,
    fallback: Option<Handler>,
    close_after_each: bool,
    streamed: Arc<AtomicU64>,
    open: AtomicUsize,
    total: AtomicU64,
}

/// A running fake server. See the [module docs](self).
pub struct FakeServer {
    url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// A plain HTTP server with no fallback: expectations only.
    pub async fn start() -> std::io::Result<FakeServer> {
        Builder::default().start().await
    }
    /// A builder (fallback routes, TLS, keep-alive).
    pub fn builder() -> Builder {
        Builder::default()
    }
    /// `http://127.0.0.1:<port>` (or `https://`).
    pub fn url(&self) -> &str {
        &self.url
    }
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Adds an expectation after those left.
    pub fn expect(&self, e: Expect) -> &FakeServer {
        lock(&self.shared.script).expected.push_back(e);
        self
    }
    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }
    /// How many requests were received.
    pub fn count(&self) -> usize {
        lock(&self.shared.requests).len()
    }
    /// The counter of body bytes handed out by [`Reply::Endless`] answers (shared, live).
    pub fn streamed(&self) -> Arc<AtomicU64> {
        self.shared.streamed.clone()
    }
    /// Connections open now, and accepted in all.
    pub fn connections(&self) -> (usize, u64) {
        let s = &self.shared;
        (
            s.open.load(Ordering::Relaxed),
            s.total.load(Ordering::Relaxed),
        )
    }
    /// Panics, saying which, if expectations are left or a request matched none.
    pub fn assert_done(&self) {
        let s = lock(&self.shared.script);
        let left: Vec<String> = s.expected.iter().map(Expect::describe).collect();
        if !left.is_empty() || !s.unexpected.is_empty() {
            panic!(
                "fake HTTP server at {}: {} expectation(s) never met: [{}]; {} unexpected request(s): [{}]",
                self.url,
                left.len(),
                left.join(", "),
                s.unexpected.len(),
                s.unexpected.join("; ")
            );
        }
    }
    /// Stops listening and closes every connection: later requests are refused.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not hide its own failure behind ours.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// Without the `tls` feature, `b` only carries plain settings already in `shared`.
#[cfg_attr(not(feature = "tls"), allow(unused_variables))]
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, b: Builder) {
    // Owned here: aborting this task drops the set, which aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let shared = shared.clone();
                #[cfg(feature = "tls")]
                if let Some(acceptor) = b.tls.clone() {
                    conns.spawn(async move {
                        // A failed handshake (say, no client certificate) serves nothing.
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            serve_conn(tls, shared).await;
                        }
                    });
                    continue;
                }
                conns.spawn(serve_conn(tcp, shared));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve_conn<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    io: S,
    shared: Arc<Shared>,
) {
    shared.open.fetch_add(1, Ordering::Relaxed);
    shared.total.fetch_add(1, Ordering::Relaxed);
    let kill = Arc::new(Notify::new());
    let (sh, k) = (shared.clone(), kill.clone());
    let service = hyper::service::service_fn(move |req| answer(req, sh.clone(), k.clone()));
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(!shared.close_after_each)
        .serve_connection(TokioIo::new(io), service);
    tokio::select! {
        _ = conn => {}
        // A `Reply::Drop`: dropping the connection closes the socket with nothing written.
        _ = kill.notified() => {}
    }
    shared.open.fetch_sub(1, Ordering::Relaxed);
}

type Body = BoxBody<Bytes, Infallible>;

async fn answer(
    req: hyper::Request<Incoming>,
    shared: Arc<Shared>,
    kill: Arc<Notify>,
) -> Result<hyper::Response<Body>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes().to_vec();
    let request = {
        let mut all = lock(&shared.requests);
        let r = Request {
            index: all.len(),
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_string),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect(),
            body,
        };
        all.push(r.clone());
        r
    };
    let mut reply = choose(&shared, &request);
    loop {
        match reply {
            Reply::Delayed(wait, next) => {
                tokio::time::sleep(wait).await;
                reply = *next;
            }
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let mut resp = hyper::Response::builder().status(status);
                for (k, v) in headers {
                    resp = resp.header(k, v);
                }
                let body = Full::new(Bytes::from(body)).boxed();
                return Ok(resp
                    .body(body)
                    .expect("a scripted reply is a valid response"));
            }
            Reply::Endless => {
                let body = Endless(shared.streamed.clone()).boxed();
                return Ok(hyper::Response::new(body));
            }
            Reply::Drop => {
                kill.notify_one();
                std::future::pending::<()>().await;
            }
            Reply::Hang => std::future::pending::<()>().await,
        }
    }
}

fn choose(shared: &Shared, r: &Request) -> Reply {
    let mut script = lock(&shared.script);
    if script.expected.front().is_some_and(|e| e.accepts(r)) {
        return script
            .expected
            .pop_front()
            .map(|e| e.reply)
            .unwrap_or(Reply::Hang);
    }
    drop(script);
    if let Some(f) = &shared.fallback {
        return f(r);
    }
    let mut script = lock(&shared.script);
    let next = script
        .expected
        .front()
        .map_or("nothing".to_string(), Expect::describe);
    let what = format!("{} (expected {next})", r.line());
    script.unexpected.push(what.clone());
    Reply::text(
        500,
        format!("tether fake HTTP server: unexpected request {what}"),
    )
}

/// Spaces, 64 KiB at a time, for as long as hyper asks (it stops asking when the socket
/// buffers are full, and for good when the client hangs up).
struct Endless(Arc<AtomicU64>);

static BLOCK: [u8; 64 << 10] = [b' '; 64 << 10];

impl hyper::body::Body for Endless {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.fetch_add(BLOCK.len() as u64, Ordering::Relaxed);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&BLOCK)))))
    }
}

#[cfg(test)]
mod tests;
