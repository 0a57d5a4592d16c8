//! TLS to PostgreSQL with rustls, following libpq's `sslmode` and `sslrootcert`.
//!
//! ## Guarantees
//! - `sslmode` (a query parameter of the URL) means what it means to libpq:
//!   `disable` (clear text), `prefer` (the default: TLS if the server offers it, unverified),
//!   `require` (TLS or nothing, unverified), `verify-ca` (TLS, chain checked against the root
//!   certificates), `verify-full` (chain and host name checked).
//! - As with libpq, `require` with an explicit `sslrootcert` behaves like `verify-ca`.
//! - A certificate that fails verification is an [`StoreError::Open`] naming the problem
//!   (unknown issuer, wrong name, expired), never retried as a transient outage.
//!
//! ## Assumptions
//! - `sslrootcert` is a PEM file, or `system` for the operating system's roots. Without it,
//!   `~/.postgresql/root.crt` is used if it exists (libpq's default), else the system roots.
//!
//! ## Caveats
//! - Client certificates (`sslcert`, `sslkey`) are not supported and are refused.
//! - `sslmode=allow` (clear text first) is not supported and is refused.
use std::{path::PathBuf, sync::Arc};

use rustls::{
    client::{
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        WebPkiServerVerifier,
    },
    crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider},
    pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime},
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tether_core::store::StoreError;
use tokio_postgres::{config::SslMode as PgSslMode, Config};
pub(crate) use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values that tether supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it, certificate not checked.
    Prefer,
    /// TLS, certificate not checked.
    Require,
    /// TLS, certificate chain checked against the roots.
    VerifyCa,
    /// TLS, chain and host name checked.
    VerifyFull,
}

/// A parsed connection target: driver config (without the TLS parameters the driver does
/// not know) and the TLS connector.
pub(crate) struct Target {
    pub config: Config,
    pub tls: MakeRustlsConnect,
}

fn open_err(location: &str, message: String) -> StoreError {
    StoreError::Open {
        location: location.to_string(),
        message,
        source: None,
    }
}

/// Parses `url` (taking `sslmode`/`sslrootcert` out before the driver sees them: it rejects
/// the `verify-*` modes) and builds the TLS connector.
pub(crate) fn target(url: &str, location: &str) -> Result<Target, StoreError> {
    let mut parsed = url::Url::parse(url)
        .map_err(|e| open_err(location, format!("not a valid PostgreSQL URL: {e}")))?;
    let mut mode = None;
    let mut rootcert = None;
    let mut rest = Vec::new();
    for (k, v) in parsed.query_pairs() {
        match k.as_ref() {
            "sslmode" => mode = Some(v.into_owned()),
            "sslrootcert" => rootcert = Some(v.into_owned()),
            "sslcert" | "sslkey" | "sslpassword" => {
                return Err(open_err(
                    location,
                    format!("{k}: client certificates are not supported; remove it from the URL"),
                ))
            }
            _ => rest.push((k.into_owned(), v.into_owned())),
        }
    }
    if rest.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(rest);
    }
    let mut mode = match mode.as_deref() {
        None | Some("prefer") => SslMode::Prefer,
        Some("disable") => SslMode::Disable,
        Some("require") => SslMode::Require,
        Some("verify-ca") => SslMode::VerifyCa,
        Some("verify-full") => SslMode::VerifyFull,
        Some(other) => {
            return Err(open_err(
                location,
                format!(
                    "sslmode={other} is not supported; use disable, prefer, require, verify-ca \
                     or verify-full"
                ),
            ))
        }
    };
    if mode == SslMode::Require && rootcert.is_some() {
        mode = SslMode::VerifyCa;
    }
    let mut config: Config = parsed
        .as_str()
        .parse()
        .map_err(|e: tokio_postgres::Error| {
            open_err(location, format!("not a valid PostgreSQL URL: {e}"))
        })?;
    config.ssl_mode(match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        _ => PgSslMode::Require,
    });
    let tls = connector(mode, rootcert.as_deref(), location)?;
    Ok(Target { config, tls })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn connector(
    mode: SslMode,
    rootcert: Option<&str>,
    location: &str,
) -> Result<MakeRustlsConnect, StoreError> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(Unverified {
            provider: provider.clone(),
        }),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = roots(rootcert, location)?;
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| {
                    open_err(location, format!("cannot use the root certificates: {e}"))
                })?;
            if mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly { inner: webpki })
            }
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| open_err(location, format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn roots(rootcert: Option<&str>, location: &str) -> Result<Arc<RootCertStore>, StoreError> {
    let default = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".postgresql").join("root.crt"))
        .filter(|p| p.exists());
    let mut store = RootCertStore::empty();
    let file = match rootcert {
        Some("system") => None,
        Some(path) => Some(PathBuf::from(path)),
        None => default,
    };
    match file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
                .and_then(|it| it.collect())
                .map_err(|e| {
                    open_err(
                        location,
                        format!("cannot read sslrootcert {}: {e}", path.display()),
                    )
                })?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(open_err(
                    location,
                    format!("sslrootcert {} holds no usable certificate", path.display()),
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(open_err(
                    location,
                    "no system root certificates found; set sslrootcert=PATH in the URL".into(),
                ));
            }
        }
    }
    Ok(Arc::new(store))
}

/// `prefer`/`require`: encrypted, the certificate not checked (libpq's semantics), but the
/// handshake signatures still are (the peer must hold the key of the certificate it shows).
#[derive(Debug)]
struct Unverified {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a root; the host name is not checked.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            // webpki checks the chain first and the name last: a name error means the chain
            // was good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The rustls error behind a failed connection, if it was the TLS handshake that failed.
pub(crate) fn tls_failure(e: &tokio_postgres::Error) -> Option<String> {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<rustls::Error>() {
            return Some(r.to_string());
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(r.to_string());
            }
        }
        src = s.source();
    }
    None
}
