//! The relying party's checks on signed evidence: key pinning, nonce, time
//! window, audience, required selectors. Each returns the error that names
//! what failed.

use super::{EvidenceError, EvidencePolicy, VerifiedNode};

/// Session keys are public, so a plain comparison is fine here.
pub(super) fn check_trusted_key(
    session_key_spki: &[u8],
    trusted_keys: Option<&[Vec<u8>]>,
) -> Result<(), EvidenceError> {
    match trusted_keys {
        None => Ok(()),
        Some(keys) if keys.iter().any(|key| key.as_slice() == session_key_spki) => Ok(()),
        Some(_) => Err(EvidenceError::UntrustedKey),
    }
}

/// The chain says which TPM the issuer attested; the claims must say the same.
pub(super) fn check_node_ueid(
    ueid: Option<&[u8]>,
    node: &VerifiedNode,
) -> Result<(), EvidenceError> {
    match ueid {
        Some(ueid) if ueid == node.ueid() => Ok(()),
        Some(_) => Err(EvidenceError::NodeMismatch(format!(
            "the ueid claim is not the EK hash in {}",
            node.spiffe_id
        ))),
        None => Err(EvidenceError::NodeMismatch(
            "the evidence has no ueid claim, but comes with a node SVID".to_owned(),
        )),
    }
}

pub(super) fn check_nonce(nonce: &[u8], expected: &[u8]) -> Result<(), EvidenceError> {
    if crate::constant_time::eq(nonce, expected) {
        Ok(())
    } else {
        Err(EvidenceError::NonceMismatch)
    }
}

/// Accepts `now - max_age <= iat <= now + max_future_skew`, both ends
/// inclusive. Computed in i128 so no combination of inputs can overflow.
pub(super) fn check_issued_at(
    issued_at: i64,
    policy: &EvidencePolicy,
) -> Result<(), EvidenceError> {
    let now = i128::from(policy.now_unix_secs);
    let iat = i128::from(issued_at);
    if iat > now + i128::from(policy.max_future_skew_secs) {
        return Err(EvidenceError::NotYetValid {
            issued_at,
            now: policy.now_unix_secs,
            max_future_skew_secs: policy.max_future_skew_secs,
        });
    }
    if now - iat > i128::from(policy.max_age_secs) {
        return Err(EvidenceError::Expired {
            issued_at,
            now: policy.now_unix_secs,
            max_age_secs: policy.max_age_secs,
        });
    }
    Ok(())
}

/// Exact match both ways (RFC 7519 §4.1.3 reasoning): evidence asked for one
/// relying party is not accepted by another, nor by one that names none.
pub(super) fn check_audience(
    found: Option<&str>,
    expected: Option<&str>,
) -> Result<(), EvidenceError> {
    if found == expected {
        Ok(())
    } else {
        Err(EvidenceError::AudienceMismatch {
            expected: expected.map(str::to_owned),
            found: found.map(str::to_owned),
        })
    }
}

/// `selectors` is sorted and unique (the claims decoder enforces it), so each
/// lookup is a binary search.
pub(super) fn check_selectors(
    selectors: &[String],
    required: &[String],
) -> Result<(), EvidenceError> {
    match required
        .iter()
        .find(|selector| selectors.binary_search(selector).is_err())
    {
        Some(selector) => Err(EvidenceError::MissingSelector {
            selector: selector.clone(),
        }),
        None => Ok(()),
    }
}
