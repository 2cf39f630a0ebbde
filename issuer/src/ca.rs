//! The issuer's CA: loaded from two PEM files, or made on first start and written
//! there (the key with mode 0600). It signs node SVIDs and the TLS server
//! certificate; its certificate is the trust bundle daemons are configured with.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use zeroize::Zeroizing;

use crate::config::CaConfig;

/// DER prefix of a SubjectPublicKeyInfo for an uncompressed P-256 point:
/// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (66 bytes) }.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// How long a generated CA is valid.
const GENERATED_CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Certificates start this long before "now", for clocks slightly behind ours.
/// id-ce-basicConstraints (RFC 5280 §4.2.1.9).
const BASIC_CONSTRAINTS_OID: &[u64] = &[2, 5, 29, 19];
const BACKDATE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the CA needs both ca.cert and ca.key: {} exists but {} does not", present.display(), missing.display())]
    HalfPresent {
        present: std::path::PathBuf,
        missing: std::path::PathBuf,
    },
    #[error("{}: {reason}", path.display())]
    Invalid {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("{key:?} is not a P-256 public key (65 bytes, uncompressed SEC1)")]
    BadSessionKey { key: String },
    #[error("issuing a certificate: {0}")]
    Issue(String),
}

/// A certificate an issuer made: DER, and when it expires.
#[derive(Debug, Clone)]
pub struct Issued {
    pub der: Vec<u8>,
    pub not_after_unix: i64,
}

pub struct Ca {
    /// Rebuilt from the CA certificate; signs with `key`. Its DER may differ from
    /// the file's in signature bytes, so the bundle uses `cert_der`.
    signer: Certificate,
    key: KeyPair,
    cert_der: Vec<u8>,
    cert_pem: String,
}

impl std::fmt::Debug for Ca {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Ca {
    /// Loads the CA, or makes one for `trust_domain` if neither file exists.
    pub fn load_or_generate(config: &CaConfig, trust_domain: &str) -> Result<Ca, CaError> {
        match (config.cert.exists(), config.key.exists()) {
            (true, true) => Self::load(&config.cert, &config.key),
            (false, false) => Self::generate(config, trust_domain),
            (true, false) => Err(CaError::HalfPresent {
                present: config.cert.clone(),
                missing: config.key.clone(),
            }),
            (false, true) => Err(CaError::HalfPresent {
                present: config.key.clone(),
                missing: config.cert.clone(),
            }),
        }
    }

    fn load(cert_path: &Path, key_path: &Path) -> Result<Ca, CaError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CaError::Io { path, source }
        };
        let invalid = |path: &Path, reason: String| CaError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let mode = std::fs::metadata(key_path)
            .map_err(io(key_path))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(invalid(
                key_path,
                format!(
                    "the CA key is readable by others (mode {:o}); chmod 600 it",
                    mode & 0o777
                ),
            ));
        }
        let key_pem = Zeroizing::new(std::fs::read_to_string(key_path).map_err(io(key_path))?);
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| invalid(key_path, format!("not a PKCS#8 PEM private key: {e}")))?;
        let cert_pem = std::fs::read_to_string(cert_path).map_err(io(cert_path))?;
        let cert_der = pem::parse(&cert_pem)
            .map_err(|e| invalid(cert_path, format!("not PEM: {e}")))?
            .into_contents();
        let params = CertificateParams::from_ca_cert_pem(&cert_pem)
            .map_err(|e| invalid(cert_path, format!("not a CA certificate: {e}")))?;
        if !matches!(params.is_ca, IsCa::Ca(_)) {
            return Err(invalid(
                cert_path,
                "the certificate is not a CA (basicConstraints)".into(),
            ));
        }
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|e| invalid(cert_path, format!("not X.509: {e}")))?;
        if parsed.public_key().raw != key.public_key_der().as_slice() {
            return Err(invalid(
                key_path,
                "the key does not match the CA certificate".into(),
            ));
        }
        let signer = params
            .self_signed(&key)
            .map_err(|e| invalid(cert_path, e.to_string()))?;
        Ok(Ca {
            signer,
            key,
            cert_der,
            cert_pem,
        })
    }

    fn generate(config: &CaConfig, trust_domain: &str) -> Result<Ca, CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CaError::Issue(e.to_string()))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            format!("attestd issuer CA for {trust_domain}"),
        );
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.subject_alt_names = vec![SanType::URI(
            format!("spiffe://{trust_domain}")
                .try_into()
                .map_err(|e: rcgen::Error| CaError::Issue(e.to_string()))?,
        )];
        let now = SystemTime::now();
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + GENERATED_CA_LIFETIME).into();
        let signer = params
            .self_signed(&key)
            .map_err(|e| CaError::Issue(e.to_string()))?;
        let cert_pem = signer.pem();
        write_private(&config.key, key.serialize_pem().as_bytes())?;
        write_public(&config.cert, cert_pem.as_bytes())?;
        tracing::info!(cert = %config.cert.display(), "generated a new CA");
        Ok(Ca {
            cert_der: signer.der().to_vec(),
            signer,
            key,
            cert_pem,
        })
    }

    /// The CA certificate, DER: the trust bundle.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key, PKCS#8 DER, for deriving other secrets from it.
    pub(crate) fn key_der(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.key.serialize_der())
    }

    /// An X.509-SVID for `session_key` (uncompressed SEC1 P-256), naming `spiffe_id`.
    pub fn issue_svid(
        &self,
        spiffe_id: &str,
        session_key: &[u8],
        ttl: Duration,
    ) -> Result<Issued, CaError> {
        if session_key.len() != 65 || session_key[0] != 0x04 {
            return Err(CaError::BadSessionKey {
                key: hex::encode(session_key),
            });
        }
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(session_key);
        let public =
            rcgen::SubjectPublicKeyInfo::from_der(&spki).map_err(|_| CaError::BadSessionKey {
                key: hex::encode(session_key),
            })?;
        let mut params = CertificateParams::default();
        // A subject, because RFC 5280 §4.2.1.6 requires a critical SAN when
        // the subject is empty, and rcgen does not mark it critical; strict
        // validators (pyca/cryptography) refuse such certificates.
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "attestd");
        params.subject_alt_names = vec![SanType::URI(
            spiffe_id
                .try_into()
                .map_err(|e: rcgen::Error| CaError::Issue(e.to_string()))?,
        )];
        // SPIFFE X509-SVID §4.1: a leaf says cA false. rcgen's ExplicitNoCa
        // encodes that FALSE, which DER forbids (a DEFAULT value), and strict
        // parsers refuse the certificate; so write basicConstraints ourselves:
        // critical, and an empty SEQUENCE, which is how DER says cA false.
        params.is_ca = IsCa::NoCa;
        let mut basic_constraints =
            CustomExtension::from_oid_content(BASIC_CONSTRAINTS_OID, vec![0x30, 0x00]);
        basic_constraints.set_criticality(true);
        params.custom_extensions = vec![basic_constraints];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let (not_before, not_after) = validity(ttl);
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let cert = params
            .signed_by(&public, &self.signer, &self.key)
            .map_err(|e| CaError::Issue(e.to_string()))?;
        Ok(Issued {
            der: cert.der().to_vec(),
            not_after_unix: unix(not_after),
        })
    }

    /// A TLS server certificate for `names` with a fresh key, both in memory.
    pub fn issue_tls_server(
        &self,
        names: &[String],
        ttl: Duration,
    ) -> Result<(String, Zeroizing<String>), CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CaError::Issue(e.to_string()))?;
        let mut params =
            CertificateParams::new(names.to_vec()).map_err(|e| CaError::Issue(e.to_string()))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "attestd issuer");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let (not_before, not_after) = validity(ttl);
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let cert = params
            .signed_by(&key, &self.signer, &self.key)
            .map_err(|e| CaError::Issue(e.to_string()))?;
        Ok((cert.pem(), Zeroizing::new(key.serialize_pem())))
    }
}

fn validity(ttl: Duration) -> (SystemTime, SystemTime) {
    let now = SystemTime::now();
    (now - BACKDATE, now + ttl)
}

fn unix(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Writes a new file with mode 0600 (never following or replacing an existing one).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CaError> {
    write_new(path, bytes, 0o600)
}

fn write_public(path: &Path, bytes: &[u8]) -> Result<(), CaError> {
    write_new(path, bytes, 0o644)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let io = |source| CaError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}
