//! HTTPS on the HTTP listeners (`[server.tls]`) with rustls, for deployments without a TLS-terminating proxy.
//! The certificate chain and key are read and matched once, when the application is built, so `check-config`
//! reports a missing or broken file before anything binds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::config::TlsConfig;

/// Why the configured certificate or key cannot serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate file is missing or not PEM.
    #[error("server.tls.cert: cannot read a PEM certificate chain from {}", .path.display())]
    Cert {
        /// The configured file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("server.tls.cert: {} holds no certificate", .0.display())]
    NoCert(PathBuf),
    /// The key file is missing or holds no PEM private key.
    #[error("server.tls.key: cannot read a PEM private key from {}", .path.display())]
    Key {
        /// The configured file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// rustls refused the pair (a key that does not match the certificate, an unsupported key type).
    #[error("server.tls: the certificate and key cannot be used together")]
    Identity(#[source] rustls::Error),
}

/// The acceptor every HTTP listener wraps its connections in.
pub(crate) fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    let cert_error = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Cert { path, source }
    };
    let certs = CertificateDer::pem_file_iter(&config.cert)
        .map_err(cert_error(&config.cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(cert_error(&config.cert))?;
    if certs.is_empty() {
        return Err(TlsError::NoCert(config.cert.clone()));
    }
    let key = PrivateKeyDer::from_pem_file(&config.key).map_err(|source| TlsError::Key {
        path: config.key.clone(),
        source,
    })?;
    // Named explicitly: both rustls back ends are in the dependency tree (through reqwest and sqlx), and with
    // two compiled in, rustls will not pick a process default by itself.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Identity)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Identity)?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}
