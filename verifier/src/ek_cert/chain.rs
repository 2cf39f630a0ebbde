//! Path building and validation from an EK certificate to a trusted root:
//! each link is named, in validity, constrained as a CA, and signed.

use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;

use super::tcg::{check_critical_extensions, subject_of};
use super::{EkCertError, MAX_CHAIN_LEN};

/// Signature algorithms whose hash is broken for collision resistance.
const WEAK_SIGNATURE_ALGORITHMS: &[(&str, &str)] = &[
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption"),
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption"),
    ("1.3.14.3.2.29", "sha1WithRSASignature"),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1"),
];

/// Walks up from `leaf`, preferring a root at each step. Issuers are matched
/// by exact subject bytes and must verify; the first candidate that passes
/// every check is taken (no backtracking: TPM vendor chains do not branch).
pub(super) fn verify_chain(
    leaf: &X509Certificate<'_>,
    intermediates: &[X509Certificate<'_>],
    roots: &[X509Certificate<'_>],
    now: i64,
) -> Result<(), EkCertError> {
    check_certificate(leaf, now)?;
    if leaf
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|constraints| constraints.value.ca)
    {
        return Err(EkCertError::LeafIsCa {
            subject: subject_of(leaf),
        });
    }

    let mut used = vec![false; intermediates.len()];
    let mut current = leaf;
    for intermediates_below in 0..MAX_CHAIN_LEN.saturating_sub(1) {
        let mut last_error = None;
        for root in roots.iter().filter(|root| names_issuer(root, current)) {
            match check_link(current, root, intermediates_below, now) {
                Ok(()) => return Ok(()),
                Err(error) => last_error = Some(error),
            }
        }
        let mut next = None;
        for (index, candidate) in intermediates.iter().enumerate() {
            let already_used = used.get(index).copied().unwrap_or(true);
            if already_used || !names_issuer(candidate, current) {
                continue;
            }
            match check_link(current, candidate, intermediates_below, now) {
                Ok(()) => {
                    next = Some((index, candidate));
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        let Some((index, issuer)) = next else {
            return Err(last_error.unwrap_or_else(|| EkCertError::IssuerNotFound {
                subject: subject_of(current),
                issuer: current.issuer().to_string(),
            }));
        };
        if let Some(flag) = used.get_mut(index) {
            *flag = true;
        }
        current = issuer;
    }
    Err(EkCertError::ChainTooLong { max: MAX_CHAIN_LEN })
}

fn names_issuer(candidate: &X509Certificate<'_>, child: &X509Certificate<'_>) -> bool {
    candidate.subject().as_raw() == child.issuer().as_raw()
}

/// Checks that `issuer` may vouch for `child`, with `intermediates_below`
/// CA certificates between `issuer` and the leaf.
fn check_link(
    child: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    intermediates_below: usize,
    now: i64,
) -> Result<(), EkCertError> {
    let subject = subject_of(issuer);
    check_certificate(issuer, now)?;
    let constraints = issuer
        .basic_constraints()
        .map_err(|_| EkCertError::MalformedExtension {
            subject: subject.clone(),
            extension: "basicConstraints",
        })?
        .map(|extension| extension.value.clone());
    let Some(constraints) = constraints.filter(|constraints| constraints.ca) else {
        return Err(EkCertError::IssuerNotCa { subject });
    };
    if let Some(max) = constraints.path_len_constraint {
        if usize::try_from(max).is_ok_and(|max| intermediates_below > max) {
            return Err(EkCertError::PathLengthExceeded { subject, max });
        }
    }
    let may_sign_certificates = issuer
        .key_usage()
        .ok()
        .flatten()
        .is_some_and(|usage| usage.value.key_cert_sign());
    if !may_sign_certificates {
        return Err(EkCertError::IssuerCannotSignCertificates { subject });
    }
    match child.verify_signature(Some(issuer.public_key())) {
        Ok(()) => Ok(()),
        Err(X509Error::SignatureUnsupportedAlgorithm) => {
            Err(EkCertError::UnsupportedSignatureAlgorithm {
                subject: subject_of(child),
                algorithm: child.signature_algorithm.algorithm.to_id_string(),
            })
        }
        Err(_) => Err(EkCertError::SignatureInvalid {
            subject: subject_of(child),
            issuer: subject,
        }),
    }
}

/// Checks that apply to every certificate on the path, trust anchors included.
fn check_certificate(certificate: &X509Certificate<'_>, now: i64) -> Result<(), EkCertError> {
    let subject = subject_of(certificate);
    check_critical_extensions(certificate)?;
    let validity = certificate.validity();
    let not_before = validity.not_before.timestamp();
    let not_after = validity.not_after.timestamp();
    if now < not_before {
        return Err(EkCertError::NotYetValid {
            subject,
            not_before,
            now,
        });
    }
    if now > not_after {
        return Err(EkCertError::Expired {
            subject,
            not_after,
            now,
        });
    }
    // The outer algorithm is unsigned; only the TBS copy is covered by the
    // signature, so the two must agree (RFC 5280 §4.1.1.2).
    if certificate.signature_algorithm != certificate.tbs_certificate.signature {
        return Err(EkCertError::SignatureAlgorithmMismatch { subject });
    }
    let algorithm = certificate.signature_algorithm.algorithm.to_id_string();
    if let Some((_, name)) = WEAK_SIGNATURE_ALGORITHMS
        .iter()
        .find(|(oid, _)| *oid == algorithm)
    {
        return Err(EkCertError::UnsupportedSignatureAlgorithm {
            subject,
            algorithm: (*name).to_string(),
        });
    }
    Ok(())
}
