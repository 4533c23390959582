//! STARTTLS's server side: the school's certificate and key (PEM text the caller read)
//! made into a tokio-rustls acceptor on the ring provider.

use std::sync::Arc;

/// The TLS side of STARTTLS: the server configuration (certificate, ring provider),
/// built by the caller from the files it read.
#[derive(Clone)]
pub struct Tls(pub tokio_rustls::TlsAcceptor);

/// The certificate or key of `[mail] tls_cert`/`tls_key` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the certificate file has no PEM certificate (-----BEGIN CERTIFICATE-----): {0}")]
    Certificate(String),
    #[error("the key file has no PEM private key (PKCS#8, PKCS#1 or SEC1): {0}")]
    Key(String),
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

impl Tls {
    /// From PEM text: the certificate chain (server certificate first) and its key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Tls, TlsError> {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        if certs.is_empty() {
            return Err(TlsError::Certificate("none found".into()));
        }
        let key =
            PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key(e.to_string()))?;
        // ring is the project's provider (no aws-lc-rs build). rustls 0.23.48 deprecates
        // this for its lack of post-quantum key exchange; a newer lock must not break
        // the build (the fuzz crate resolves one).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(Tls(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls(..)")
    }
}
