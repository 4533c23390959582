//! The school's inspection CA: made once by `hallpass ca init` (an ECDSA P-256 key and a
//! self-signed CA certificate the school installs on its managed devices), loaded by
//! the proxy, which mints a short-lived leaf certificate per inspected host from it.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// How long the CA certificate made by [`generate`] is valid.
const CA_DAYS: i64 = 3650;
/// A leaf is valid from a day before it is minted (clients' clocks drift) to this many
/// days after; the cache mints again well before that.
pub const LEAF_DAYS: i64 = 30;

/// Why a CA could not be made, loaded, or sign.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("the CA key is not a PEM private key rcgen can use: {0}")]
    Key(rcgen::Error),
    #[error("the CA certificate is not a PEM certificate: {0}")]
    Certificate(rcgen::Error),
    #[error("the CA key does not belong to the CA certificate")]
    Mismatch,
    #[error("making a certificate: {0}")]
    Sign(rcgen::Error),
    #[error("the time {0} is out of a certificate's range")]
    Time(jiff::Timestamp),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// A new CA, as PEM: (certificate, private key).
pub fn generate(school: &str, now: jiff::Timestamp) -> Result<(String, String), CaError> {
    let key = KeyPair::generate().map_err(CaError::Sign)?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(
        DnType::CommonName,
        format!("{school} web filter inspection CA"),
    );
    name.push(DnType::OrganizationName, school.to_string());
    params.distinguished_name = name;
    // It signs leaves only, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = offset(now, -1)?;
    params.not_after = offset(now, CA_DAYS)?;
    let certificate = params.self_signed(&key).map_err(CaError::Sign)?;
    Ok((certificate.pem(), key.serialize_pem()))
}

/// `now` plus `days`, as rcgen's time type.
fn offset(now: jiff::Timestamp, days: i64) -> Result<time::OffsetDateTime, CaError> {
    let seconds = now.as_second().saturating_add(days.saturating_mul(86_400));
    time::OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| CaError::Time(now))
}

/// A loaded CA that mints leaf certificates.
pub struct SchoolCa {
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for SchoolCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SchoolCa")
    }
}

impl SchoolCa {
    /// The CA from its PEM certificate and key (as [`generate`] writes them).
    pub fn load(certificate_pem: &str, key_pem: &str) -> Result<SchoolCa, CaError> {
        let key = KeyPair::from_pem(key_pem).map_err(CaError::Key)?;
        // A key that is not the certificate's would mint leaves no device trusts.
        let der = pem_der(certificate_pem)?;
        let (_, x509) = x509_parser::parse_x509_certificate(&der)
            .map_err(|_| CaError::Certificate(rcgen::Error::CouldNotParseCertificate))?;
        if x509.public_key().raw != rcgen::PublicKeyData::subject_public_key_info(&key) {
            return Err(CaError::Mismatch);
        }
        let issuer =
            Issuer::from_ca_cert_pem(certificate_pem, key).map_err(CaError::Certificate)?;
        Ok(SchoolCa { issuer })
    }

    /// A certificate for `host` (a name or an IP address) signed by the CA, valid from a
    /// day before `now` for [`LEAF_DAYS`], with its new key, as rustls serves it.
    pub fn mint(
        &self,
        host: &str,
        now: jiff::Timestamp,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), CaError> {
        let key = KeyPair::generate().map_err(CaError::Sign)?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, host.to_string());
        params.distinguished_name = name;
        params.subject_alt_names = vec![match host.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.to_string().try_into().map_err(CaError::Sign)?),
        }];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = offset(now, -1)?;
        params.not_after = offset(now, LEAF_DAYS)?;
        let leaf = params
            .signed_by(&key, &self.issuer)
            .map_err(CaError::Sign)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((vec![leaf.der().clone()], key))
    }
}

/// The DER of the first certificate in a PEM text.
fn pem_der(pem: &str) -> Result<Vec<u8>, CaError> {
    use rustls::pki_types::pem::PemObject as _;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .map(|der| der.to_vec())
        .ok_or(CaError::Certificate(rcgen::Error::CouldNotParseCertificate))
}

/// A rustls server configuration presenting `host`'s leaf from `ca` (HTTP/2 or 1.1).
pub fn server_config(
    ca: &SchoolCa,
    host: &str,
    now: jiff::Timestamp,
) -> Result<Arc<rustls::ServerConfig>, CaError> {
    let (chain, key) = ca.mint(host, now)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_generated_ca_loads_and_mints_leaves_it_signed() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let (cert, key) = generate("Example School", now).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.contains("PRIVATE KEY"));
        let ca = SchoolCa::load(&cert, &key).unwrap();
        let (chain, _key) = ca.mint("www.google.com", now).unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
        let ca_der = pem_der(&cert).unwrap();
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert_eq!(leaf.issuer(), ca_cert.subject());
        leaf.verify_signature(Some(ca_cert.public_key())).unwrap();
        assert_eq!(
            leaf.validity().not_after.timestamp(),
            now.as_second() + LEAF_DAYS * 86_400
        );
        assert!(ca.mint("192.0.2.7", now).is_ok());
        assert!(server_config(&ca, "www.bing.com", now).is_ok());
    }

    #[test]
    fn a_key_of_another_ca_is_refused() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let (cert, _) = generate("A", now).unwrap();
        let (_, other_key) = generate("B", now).unwrap();
        assert!(matches!(
            SchoolCa::load(&cert, &other_key),
            Err(CaError::Mismatch)
        ));
        assert!(SchoolCa::load("not pem", &other_key).is_err());
        assert!(SchoolCa::load(&cert, "not a key").is_err());
    }
}
