//! A CA made for one test, with a server certificate for `127.0.0.1` and `localhost` and a
//! client certificate, all signed by it (rcgen), for a [`super::FakeServer`] speaking HTTPS.
use std::sync::Arc;

use tokio_rustls::{
    rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
        server::WebPkiClientVerifier,
    },
    TlsAcceptor,
};

/// A test CA, its server certificate and a client certificate.
pub struct TestCa {
    /// The CA certificate, PEM (what a client is told to trust).
    pub ca_pem: String,
    /// A client certificate and its key signed by the CA, PEM (as a client presents it).
    pub client_pem: String,
    /// Whether the server requires a client certificate signed by the CA.
    pub require_client_cert: bool,
    /// The server certificate (for `127.0.0.1` and `localhost`) and its key, PEM: for a real
    /// server under test (`tether serve --tls-cert --tls-key`).
    pub server_pem: (String, String),
    ca_der: CertificateDer<'static>,
    server_der: CertificateDer<'static>,
    server_key: Vec<u8>,
}

impl TestCa {
    /// Makes a fresh CA, server and client certificate.
    pub fn new(require_client_cert: bool) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        // Certificate generation with fixed, valid inputs cannot fail: unwrap is a test's panic.
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "tether test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client = CertificateParams::new(vec!["tether-client".to_string()])
            .unwrap()
            .signed_by(&client_key, &ca, &ca_key)
            .unwrap();
        TestCa {
            ca_pem: ca.pem(),
            client_pem: format!("{}{}", client.pem(), client_key.serialize_pem()),
            require_client_cert,
            server_pem: (cert.pem(), key.serialize_pem()),
            ca_der: ca.der().clone(),
            server_der: cert.der().clone(),
            server_key: key.serialize_der(),
        }
    }

    pub(crate) fn acceptor(&self) -> TlsAcceptor {
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
