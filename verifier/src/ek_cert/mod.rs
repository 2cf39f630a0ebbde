//! EK certificate verification: chains a TPM manufacturer's EK certificate to
//! trusted roots and ties it to the EK public area the TPM reported.

mod chain;
mod envelope;
mod key_match;
mod pem;
mod tcg;

use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

pub use pem::parse_pem_bundle;

/// Bounds on hostile input: real EK certificates are 1–2 KiB and chains are
/// two or three certificates deep.
pub const MAX_CERTIFICATE_LEN: usize = 16 * 1024;
pub const MAX_INTERMEDIATES: usize = 16;
pub const MAX_ROOTS: usize = 1024;
/// Leaf, at most four intermediates, and the root.
pub const MAX_CHAIN_LEN: usize = 6;

/// Why an EK certificate (or its chain, or its key) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EkCertError {
    #[error("{role} certificate is {size} bytes; at most {max} are accepted")]
    CertificateTooLarge {
        role: String,
        size: usize,
        max: usize,
    },
    #[error("{count} {what} given; at most {max} are accepted")]
    TooManyCertificates {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("{role} certificate does not parse: {reason}")]
    CertificateParse { role: String, reason: String },
    #[error("certificate {subject:?} has unsupported critical extension {oid}")]
    UnknownCriticalExtension { subject: String, oid: String },
    #[error("certificate {subject:?} has a malformed {extension} extension")]
    MalformedExtension {
        subject: String,
        extension: &'static str,
    },
    #[error("certificate {subject:?} is not valid before {not_before} (now {now}, Unix seconds)")]
    NotYetValid {
        subject: String,
        not_before: i64,
        now: i64,
    },
    #[error("certificate {subject:?} expired at {not_after} (now {now}, Unix seconds)")]
    Expired {
        subject: String,
        not_after: i64,
        now: i64,
    },
    #[error("certificate {subject:?} has different inner and outer signature algorithms")]
    SignatureAlgorithmMismatch { subject: String },
    #[error("certificate {subject:?} is signed with {algorithm}, which is not accepted")]
    UnsupportedSignatureAlgorithm { subject: String, algorithm: String },
    #[error("no certificate named {issuer:?} to vouch for {subject:?}")]
    IssuerNotFound { subject: String, issuer: String },
    #[error("signature on {subject:?} does not verify with the key of {issuer:?}")]
    SignatureInvalid { subject: String, issuer: String },
    #[error("issuer {subject:?} is not a CA (basicConstraints)")]
    IssuerNotCa { subject: String },
    #[error("issuer {subject:?} may not sign certificates (keyUsage lacks keyCertSign)")]
    IssuerCannotSignCertificates { subject: String },
    #[error("issuer {subject:?} allows {max} intermediate(s) below it; the chain has more")]
    PathLengthExceeded { subject: String, max: u32 },
    #[error("EK certificate {subject:?} is a CA certificate")]
    LeafIsCa { subject: String },
    #[error("no chain to a root within {max} certificates")]
    ChainTooLong { max: usize },
    #[error("PEM input is invalid: {0}")]
    PemInvalid(String),
    #[error("no certificate found in the input")]
    NoCertificates,
    #[error("EK certificate holds {cert_key}, the EK public area holds {tpm_key}")]
    KeyTypeMismatch { cert_key: String, tpm_key: String },
    #[error("EK certificate key differs from the EK public area")]
    KeyMismatch,
    #[error("EK certificate key cannot be read: {0}")]
    UnreadableCertificateKey(String),
}

/// A verified EK certificate: its key and the TPM identity it asserts (from
/// the TCG directoryName subjectAltName, when present).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EkCertificate {
    pub spki_der: Vec<u8>,
    /// TPMManufacturer (2.23.133.2.1), e.g. "id:00001014".
    pub tpm_manufacturer: Option<String>,
    /// TPMModel (2.23.133.2.2).
    pub tpm_model: Option<String>,
    /// TPMVersion (2.23.133.2.3), e.g. "id:20191023".
    pub tpm_version: Option<String>,
}

/// Verifies `leaf_der` up to one of `roots` through `intermediates`, all DER,
/// at time `now_unix_secs`: signatures, validity, issuer/subject linkage, CA
/// constraints on issuers, and critical extensions.
pub fn verify_ek_certificate(
    leaf_der: &[u8],
    intermediates: &[Vec<u8>],
    roots: &[Vec<u8>],
    now_unix_secs: i64,
) -> Result<EkCertificate, EkCertError> {
    for (what, count, max) in [
        ("intermediates", intermediates.len(), MAX_INTERMEDIATES),
        ("roots", roots.len(), MAX_ROOTS),
    ] {
        if count > max {
            return Err(EkCertError::TooManyCertificates { what, count, max });
        }
    }
    let leaf = parse_certificate(leaf_der, "leaf")?;
    let intermediates = parse_all(intermediates, "intermediate")?;
    let roots = parse_all(roots, "root")?;
    chain::verify_chain(&leaf, &intermediates, &roots, now_unix_secs)?;
    let identity = tcg::tpm_identity(&leaf)?;
    Ok(EkCertificate {
        spki_der: leaf.public_key().raw.to_vec(),
        tpm_manufacturer: identity.manufacturer,
        tpm_model: identity.model,
        tpm_version: identity.version,
    })
}

fn parse_all<'a>(ders: &'a [Vec<u8>], role: &str) -> Result<Vec<X509Certificate<'a>>, EkCertError> {
    ders.iter()
        .enumerate()
        .map(|(index, der)| parse_certificate(der, &format!("{role} #{index}")))
        .collect()
}

pub(crate) fn parse_certificate<'a>(
    der: &'a [u8],
    role: &str,
) -> Result<X509Certificate<'a>, EkCertError> {
    if der.len() > MAX_CERTIFICATE_LEN {
        return Err(EkCertError::CertificateTooLarge {
            role: role.to_string(),
            size: der.len(),
            max: MAX_CERTIFICATE_LEN,
        });
    }
    let parse_error = |reason: String| EkCertError::CertificateParse {
        role: role.to_string(),
        reason,
    };
    let (rest, certificate) =
        X509Certificate::from_der(der).map_err(|error| parse_error(error.to_string()))?;
    if !rest.is_empty() {
        return Err(parse_error(format!("{} trailing byte(s)", rest.len())));
    }
    if !envelope::is_canonical(der, &certificate) {
        return Err(parse_error(
            "not canonical DER outside the signed part".into(),
        ));
    }
    Ok(certificate)
}

#[cfg(test)]
#[path = "ek_cert_test.rs"]
mod tests;
