//! The issuer's CA: loaded from two PEM files, or made on first start and written
//! there (the key with mode 0600). It signs node SVIDs, workload X.509-SVIDs and
//! the TLS server certificate; its certificate is the trust bundle daemons are
//! configured with.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
    PKCS_ECDSA_P256_SHA256,
};
use ring::rand::SecureRandom;
use zeroize::Zeroizing;

use attestd_verifier::evidence::p256_spki_der;

use crate::config::CaConfig;

/// How long a generated CA is valid.
const GENERATED_CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// id-ce-basicConstraints (RFC 5280 §4.2.1.9).
const BASIC_CONSTRAINTS_OID: &[u64] = &[2, 5, 29, 19];
/// Certificates start this long before "now", for clocks slightly behind ours.
const BACKDATE: Duration = Duration::from_secs(60);
/// Serial numbers: random, positive, 16 bytes (RFC 5280 §4.1.2.2 allows 20).
const SERIAL_LEN: usize = 16;
/// Most DNS SANs on a workload SVID.
pub const MAX_DNS_NAMES: usize = 32;

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
    #[error("public_key is not an ECDSA P-256 SubjectPublicKeyInfo (DER, named curve, uncompressed point on the curve): {reason}")]
    BadPublicKey { reason: String },
    #[error("{name:?} is not a DNS name for a certificate")]
    BadDnsName { name: String },
    #[error("the CA certificate expired at {not_after} (unix); nothing can be issued under it")]
    Expired { not_after: i64 },
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
    /// The CA certificate's notAfter, Unix seconds: no certificate outlives it.
    not_after: i64,
    rng: ring::rand::SystemRandom,
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
        check_private_mode(key_path, "the CA key")?;
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
        let not_after = parsed.validity().not_after.timestamp();
        let signer = params
            .self_signed(&key)
            .map_err(|e| invalid(cert_path, e.to_string()))?;
        Ok(Ca {
            signer,
            key,
            cert_der,
            cert_pem,
            not_after,
            rng: ring::rand::SystemRandom::new(),
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
        let not_after = now + GENERATED_CA_LIFETIME;
        params.not_after = not_after.into();
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
            not_after: unix(not_after),
            rng: ring::rand::SystemRandom::new(),
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

    /// The CA certificate's notAfter, Unix seconds.
    pub fn not_after_unix(&self) -> i64 {
        self.not_after
    }

    /// An X.509-SVID for `session_key` (uncompressed SEC1 P-256), naming
    /// `spiffe_id`, with no node selectors. Node attestation uses
    /// [`Ca::issue_node_svid`].
    pub fn issue_svid(
        &self,
        spiffe_id: &str,
        session_key: &[u8],
        ttl: Duration,
    ) -> Result<Issued, CaError> {
        self.issue_node_svid(spiffe_id, session_key, ttl, &[], None)
    }

    /// A node SVID: an X.509-SVID for `session_key` (uncompressed SEC1
    /// P-256) naming `spiffe_id`, carrying `node_selectors` in the
    /// node-selector extension ([`crate::node_selectors`]) when there are any,
    /// and the attested AK's TPM Name in the attested-AK extension
    /// ([`attestd_verifier::evidence::AK_NAME_OID`]), which is what lets a
    /// verifier accept the node's hardware-fresh quotes.
    pub fn issue_node_svid(
        &self,
        spiffe_id: &str,
        session_key: &[u8],
        ttl: Duration,
        node_selectors: &[String],
        ak_name: Option<&[u8]>,
    ) -> Result<Issued, CaError> {
        if session_key.len() != 65 || session_key[0] != 0x04 {
            return Err(CaError::BadSessionKey {
                key: hex::encode(session_key),
            });
        }
        let spki = p256_spki_der(session_key);
        let public =
            rcgen::SubjectPublicKeyInfo::from_der(&spki).map_err(|_| CaError::BadSessionKey {
                key: hex::encode(session_key),
            })?;
        let (mut params, not_after) = self.leaf_params(spiffe_id, ttl)?;
        if !node_selectors.is_empty() {
            params
                .custom_extensions
                .push(crate::node_selectors::extension(node_selectors));
        }
        if let Some(name) = ak_name {
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    attestd_verifier::evidence::AK_NAME_OID,
                    attestd_verifier::evidence::ak_name_extension_value(name),
                ));
        }
        self.sign_leaf(params, &public, not_after)
    }

    /// A workload X.509-SVID for `spki_der` (an ECDSA P-256
    /// SubjectPublicKeyInfo), naming `spiffe_id`, with `dns_names` as DNS
    /// SANs. It expires after `ttl`, or with the CA if that is sooner.
    pub fn issue_workload_svid(
        &self,
        spiffe_id: &str,
        spki_der: &[u8],
        dns_names: &[String],
        ttl: Duration,
    ) -> Result<Issued, CaError> {
        check_p256_spki(spki_der)?;
        let public =
            rcgen::SubjectPublicKeyInfo::from_der(spki_der).map_err(|e| CaError::BadPublicKey {
                reason: e.to_string(),
            })?;
        if dns_names.len() > MAX_DNS_NAMES {
            return Err(CaError::Issue(format!(
                "{} DNS names; at most {MAX_DNS_NAMES}",
                dns_names.len()
            )));
        }
        let (mut params, not_after) = self.leaf_params(spiffe_id, ttl)?;
        for name in dns_names {
            let dns = name
                .as_str()
                .try_into()
                .map_err(|_| CaError::BadDnsName { name: name.clone() })?;
            params.subject_alt_names.push(SanType::DnsName(dns));
        }
        self.sign_leaf(params, &public, not_after)
    }

    /// What every SVID this CA issues has in common (SPIFFE X509-SVID §4):
    /// one URI SAN, a non-CA leaf that signs, client and server auth, a random
    /// serial, valid from a minute ago for `ttl` but never past the CA.
    /// Returns the params and the notAfter, Unix seconds.
    fn leaf_params(
        &self,
        spiffe_id: &str,
        ttl: Duration,
    ) -> Result<(CertificateParams, i64), CaError> {
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
        // rcgen's default serial is a hash of the public key, so two
        // certificates for one key (several SVIDs, a renewal) would share a
        // serial, which RFC 5280 §4.1.2.2 forbids.
        params.serial_number = Some(self.random_serial()?);
        let (not_before, not_after) = validity(ttl);
        let not_after = unix(not_after).min(self.not_after);
        if not_after <= unix(not_before) {
            return Err(CaError::Expired {
                not_after: self.not_after,
            });
        }
        params.not_before = not_before.into();
        params.not_after = (UNIX_EPOCH + Duration::from_secs(not_after as u64)).into();
        Ok((params, not_after))
    }

    fn sign_leaf(
        &self,
        params: CertificateParams,
        public: &rcgen::SubjectPublicKeyInfo,
        not_after_unix: i64,
    ) -> Result<Issued, CaError> {
        let cert = params
            .signed_by(public, &self.signer, &self.key)
            .map_err(|e| CaError::Issue(e.to_string()))?;
        Ok(Issued {
            der: cert.der().to_vec(),
            not_after_unix,
        })
    }

    fn random_serial(&self) -> Result<SerialNumber, CaError> {
        let mut serial = [0u8; SERIAL_LEN];
        self.rng
            .fill(&mut serial)
            .map_err(|_| CaError::Issue("the system random generator failed".into()))?;
        // Positive, and exactly SERIAL_LEN bytes in DER.
        serial[0] = (serial[0] & 0x7f) | 0x01;
        Ok(SerialNumber::from_slice(&serial))
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
    // A TTL too large to add is capped by the CA's notAfter anyway.
    let not_after = now
        .checked_add(ttl)
        .unwrap_or(now + GENERATED_CA_LIFETIME * 100);
    (now - BACKDATE, not_after)
}

fn unix(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Refuses an ECDSA P-256 SubjectPublicKeyInfo in any form but the one
/// RFC 5480 prescribes (named curve, uncompressed point), or with a point that
/// is not on the curve.
pub fn check_p256_spki(spki_der: &[u8]) -> Result<(), CaError> {
    let bad = |reason: &str| CaError::BadPublicKey {
        reason: reason.to_owned(),
    };
    // The one encoding: the SPKI the verifier builds from its last 65 bytes.
    let point = spki_der
        .len()
        .checked_sub(65)
        .map(|start| &spki_der[start..])
        .filter(|point| p256_spki_der(point) == spki_der)
        .ok_or_else(|| bad("not a P-256 key with a named curve and an uncompressed point"))?;
    p256::PublicKey::from_sec1_bytes(point)
        .map(|_| ())
        .map_err(|_| bad("the point is not on the curve"))
}

/// Refuses a private key file that anyone but its owner may read or write.
pub(crate) fn check_private_mode(path: &Path, what: &str) -> Result<(), CaError> {
    let mode = std::fs::metadata(path)
        .map_err(|source| CaError::Io {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(CaError::Invalid {
            path: path.to_owned(),
            reason: format!(
                "{what} is readable by others (mode {:o}); chmod 600 it",
                mode & 0o777
            ),
        });
    }
    Ok(())
}

/// Writes a new file with mode 0600 (never following or replacing an existing one).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CaError> {
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
