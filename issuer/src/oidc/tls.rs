//! The discovery listener's TLS certificate: a publicly trusted one from PEM
//! files (e.g. from ACME, re-read on SIGHUP so a renewal needs no restart),
//! or one the issuer's CA issues at start-up for the issuer URL's host.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::crypto::{ring, CryptoProvider};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::ServerConfig;
use zeroize::Zeroizing;

use super::OidcError;
use crate::ca::{check_private_mode, Ca, CaError};

/// How long the CA-issued certificate is valid; a restart issues a new one.
const ISSUED_CERT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// Where the certificate comes from.
#[derive(Debug, Clone)]
enum Source {
    Files { cert: PathBuf, key: PathBuf },
    IssuedByCa,
}

/// The certificate in force; handshakes read it, SIGHUP replaces it.
#[derive(Debug)]
pub struct OidcCertificate {
    source: Source,
    current: RwLock<Arc<CertifiedKey>>,
}

impl OidcCertificate {
    /// From `cert` and `key` if given, or else issued by `ca` for `host`.
    pub fn load(
        cert: Option<&Path>,
        key: Option<&Path>,
        ca: &Ca,
        host: &str,
    ) -> Result<OidcCertificate, OidcError> {
        let (source, certified) = match (cert, key) {
            (Some(cert), Some(key)) => (
                Source::Files {
                    cert: cert.to_owned(),
                    key: key.to_owned(),
                },
                from_files(cert, key)?,
            ),
            _ => (Source::IssuedByCa, issued_by(ca, host)?),
        };
        Ok(OidcCertificate {
            source,
            current: RwLock::new(Arc::new(certified)),
        })
    }

    /// Re-reads the certificate files; returns false for a CA-issued
    /// certificate, which stays. On error the certificate in force stays.
    pub fn reload(&self) -> Result<bool, OidcError> {
        let Source::Files { cert, key } = &self.source else {
            return Ok(false);
        };
        let fresh = from_files(cert, key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
        Ok(true)
    }

    /// A rustls server config that serves HTTP/1.1 with this certificate.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, OidcError> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| OidcError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for OidcCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn from_files(cert: &Path, key: &Path) -> Result<CertifiedKey, OidcError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| {
            OidcError::File(CaError::Io {
                path: path.to_owned(),
                source,
            })
        })
    };
    let invalid = |path: &Path, reason: String| OidcError::Certificate {
        path: path.to_owned(),
        reason,
    };
    check_private_mode(key, "the OIDC TLS key")?;
    let chain = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(cert, format!("not PEM certificates: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(cert, "holds no certificate".into()));
    }
    let key_pem = Zeroizing::new(read(key)?);
    let private = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| invalid(key, format!("not a PEM private key: {e}")))?;
    CertifiedKey::from_der(chain, private, &provider())
        .map_err(|e| invalid(key, format!("does not go with {}: {e}", cert.display())))
}

fn issued_by(ca: &Ca, host: &str) -> Result<CertifiedKey, OidcError> {
    let (cert_pem, key_pem) = ca.issue_tls_server(&[host.to_owned()], ISSUED_CERT_LIFETIME)?;
    let internal = |e: String| OidcError::Tls(format!("the CA-issued certificate: {e}"));
    let leaf =
        CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| internal(e.to_string()))?;
    // The chain: ours, then the CA, so clients holding only the CA verify it.
    let chain = vec![leaf, CertificateDer::from(ca.cert_der().to_vec())];
    let private =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| internal(e.to_string()))?;
    CertifiedKey::from_der(chain, private, &provider()).map_err(|e| internal(e.to_string()))
}
