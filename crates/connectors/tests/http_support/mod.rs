//! Test servers for the shared HTTP layer: a minimal HTTP/1.1 server on a loopback port, plain
//! or TLS (a CA, a server certificate and optionally a required client certificate, all made
//! here with rcgen), answering the n-th request through a closure. They stand in for backends
//! and token endpoints that must misbehave on demand (429/5xx, hangs, resets, huge bodies).
#![allow(dead_code)]

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
        server::WebPkiClientVerifier,
    },
    TlsAcceptor,
};

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
}

/// A received request: request line, header block, body.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET /path`.
    pub line: String,
    /// Raw header block.
    pub head: String,
    /// Body.
    pub body: String,
}

impl Seen {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
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
    /// Requests received so far.
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    /// A copy of the requests received so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

type Handler = Arc<dyn Fn(usize, &Seen) -> Reply + Send + Sync>;

/// Starts a test server; `tls` makes it speak HTTPS (requiring a client certificate if the
/// [`TestCa`] says so). `handler` gets the request's index (0-based) and the request.
pub async fn serve(
    tls: Option<&TestCa>,
    handler: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static,
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
                    // A failed handshake (no client certificate) serves nothing.
                    Some(a) => {
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
    let mut req = Seen {
        line: String::new(),
        head,
        body: String::new(),
    };
    let length: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + 4 + length {
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    req.body = String::from_utf8_lossy(&buf[head_end + 4..]).into_owned();
    let line = req.head.lines().next().unwrap_or_default();
    req.line = line.rsplit_once(' ').map_or(line, |(l, _)| l).to_string();
    let index = {
        let mut s = seen.lock().unwrap();
        s.push(req.clone());
        s.len() - 1
    };
    match handler(index, &req) {
        Reply::Full(status, headers, body) => {
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
        Reply::Hang => tokio::time::sleep(std::time::Duration::from_secs(60)).await,
        Reply::Close => drop(io),
        Reply::Endless => {
            let _ = io
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                .await;
            let block = vec![b' '; 64 << 10];
            while io.write_all(&block).await.is_ok() {
                sent.fetch_add(block.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

/// A CA made for one test, a server certificate it signed for `127.0.0.1`, and a client
/// certificate it signed (PEM certificate + key, as a client presents it).
pub struct TestCa {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// A client certificate and its key signed by the CA, PEM.
    pub client_pem: String,
    /// Whether the server requires a client certificate signed by the CA.
    pub require_client_cert: bool,
    ca_der: CertificateDer<'static>,
    server_der: CertificateDer<'static>,
    server_key: Vec<u8>,
}

impl TestCa {
    /// Makes a fresh CA, server and client certificate.
    pub fn new(require_client_cert: bool) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "tether test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client = CertificateParams::new(vec!["tether-client".to_string()])
            .unwrap()
            .signed_by(&client_key, &ca, &ca_key)
            .unwrap();
        TestCa {
            ca_pem: ca.pem(),
            client_pem: format!("{}{}", client.pem(), client_key.serialize_pem()),
            require_client_cert,
            ca_der: ca.der().clone(),
            server_der: cert.der().clone(),
            server_key: key.serialize_der(),
        }
    }

    fn acceptor(&self) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if self.require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca_der.clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(
                vec![self.server_der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone())),
            )
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }
}
