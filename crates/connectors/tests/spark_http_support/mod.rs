//! Test servers for the Spark connector's HTTP rules: a minimal HTTP/1.1 server on a loopback
//! port, plain or TLS (a CA and a server certificate for `127.0.0.1`/`localhost` made here with
//! rcgen), answering each request through a closure. They stand in for a Spark master or worker
//! only where the real cluster cannot misbehave on demand (redirects, endless bodies, hostile
//! messages, certificates).
#![allow(dead_code)]

mod spark;
pub use spark::*;

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpListener,
};
use tokio_rustls::{
    rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
    TlsAcceptor,
};

/// What a test server sends back.
pub enum Reply {
    /// A complete response: status line, headers (Content-Length and Connection: close are
    /// added), body.
    Full {
        /// e.g. `200 OK`.
        status: &'static str,
        /// Extra header lines.
        headers: Vec<String>,
        /// Body.
        body: Vec<u8>,
    },
    /// `200 OK` without a length, then spaces until the client goes away.
    Endless,
}

impl Reply {
    /// 200 with a JSON body.
    pub fn json(body: serde_json::Value) -> Reply {
        Reply::Full {
            status: "200 OK",
            headers: vec!["Content-Type: application/json".into()],
            body: body.to_string().into_bytes(),
        }
    }
    /// 200 with a text body.
    pub fn text(body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full {
            status: "200 OK",
            headers: vec![],
            body: body.into(),
        }
    }
}

/// A received request: `METHOD /path?query` and its header lines.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET /v1/...`.
    pub line: String,
    /// Raw header block.
    pub head: String,
}

/// A running test server.
pub struct TestServer {
    /// `http://127.0.0.1:<port>` or `https://...`.
    pub url: String,
    /// Every request received.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Body bytes written by [`Reply::Endless`] answers.
    pub endless_sent: Arc<AtomicU64>,
}

impl TestServer {
    /// Request lines received so far.
    pub fn lines(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.line.clone())
            .collect()
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// Starts a test server; `tls` makes it speak HTTPS with that certificate.
pub async fn serve(
    tls: Option<&TestCa>,
    handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tls.map(TestCa::acceptor);
    let handler: Handler = Arc::new(handler);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let endless_sent = Arc::new(AtomicU64::new(0));
    let (s, e) = (seen.clone(), endless_sent.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (handler, seen, sent, acceptor) =
                (handler.clone(), s.clone(), e.clone(), acceptor.clone());
            tokio::spawn(async move {
                match acceptor {
                    Some(a) => {
                        // A client that refuses our certificate ends the handshake: nothing to serve.
                        if let Ok(tls) = a.accept(tcp).await {
                            answer(tls, handler, seen, sent).await;
                        }
                    }
                    None => answer(tcp, handler, seen, sent).await,
                }
            });
        }
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    TestServer {
        url: format!("{scheme}://127.0.0.1:{port}"),
        seen,
        endless_sent,
    }
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
    sent: Arc<AtomicU64>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + 4 + length {
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let line = head.lines().next().unwrap_or_default();
    let line = line.rsplit_once(' ').map_or(line, |(l, _)| l).to_string();
    let req = Seen { line, head };
    seen.lock().unwrap().push(req.clone());
    match handler(&req) {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut out = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for h in headers {
                out.push_str(&h);
                out.push_str("\r\n");
            }
            out.push_str("\r\n");
            let mut bytes = out.into_bytes();
            bytes.extend_from_slice(&body);
            let _ = io.write_all(&bytes).await;
            let _ = io.shutdown().await;
        }
        Reply::Endless => {
            let _ = io
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
                .await;
            let block = vec![b' '; 64 << 10];
            while io.write_all(&block).await.is_ok() {
                sent.fetch_add(block.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

/// A CA made for one test, and a server certificate it signed for `127.0.0.1` and `localhost`.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    server_der: CertificateDer<'static>,
    server_key: Vec<u8>,
}

impl TestCa {
    /// Makes a fresh CA and server certificate.
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "tether test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        TestCa {
            ca_pem: ca.pem(),
            server_der: cert.der().clone(),
            server_key: key.serialize_der(),
        }
    }

    fn acceptor(&self) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![self.server_der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone())),
            )
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }
}
