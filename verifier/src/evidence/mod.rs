//! Verification of attestd evidence (COSE_Sign1 over EAT claims, see
//! docs/evidence.md): signature first, then key trust, then the claims
//! against the relying party's policy.

mod fresh;
mod node;
mod policy;

#[cfg(test)]
mod evidence_test;
#[cfg(test)]
mod fresh_test;
#[cfg(test)]
mod node_test;
#[cfg(test)]
mod policy_test;
#[cfg(test)]
#[path = "support_test.rs"]
mod test_support;

use attestd_proto::evidence::{parse_envelope, EvidenceClaims, NONCE_MAX, NONCE_MIN};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

use crate::der;

pub use attestd_proto::evidence::EvidenceError;
pub use fresh::{FreshPolicy, VerifiedFresh};
pub use node::{ak_name_extension_value, NodeTrust, VerifiedNode, AK_NAME_OID};

/// What the relying party requires of evidence. There is no default: each
/// field is a decision the caller must make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidencePolicy {
    /// The nonce the relying party sent, [`NONCE_MIN`]..=[`NONCE_MAX`] bytes.
    pub expected_nonce: Vec<u8>,
    /// The verifier's clock, seconds since the Unix epoch (passed in: the
    /// verifier does no I/O, and tests choose their time).
    pub now_unix_secs: i64,
    /// Oldest acceptable `iat`: `now - max_age_secs`.
    pub max_age_secs: u64,
    /// How far `iat` may lie ahead of `now` (clock skew between hosts).
    pub max_future_skew_secs: u64,
    /// The relying party's own name. Evidence bound to an audience is
    /// accepted only by a verifier naming exactly that audience, and a
    /// verifier naming one accepts only evidence bound to it.
    pub audience: Option<String>,
    /// SubjectPublicKeyInfo DER of the accepted session keys. `None` accepts
    /// the embedded key: without `node_trust` the check is then integrity
    /// only, since the key is self-asserted.
    pub trusted_keys: Option<Vec<Vec<u8>>>,
    /// The issuer CA bundle and trust domain. When set, the evidence must
    /// carry a node SVID chain (`x5chain`) that verifies to the bundle at
    /// `now_unix_secs`, certifies the session key, and names the node whose
    /// EK hash is the evidence's `ueid`.
    pub node_trust: Option<NodeTrust>,
    /// Selectors the evidence must all carry.
    pub required_selectors: Vec<String>,
    /// When set, the evidence must be hardware-fresh: carry a TPM quote made
    /// after the request, by the AK the node SVID names, over a batch that
    /// includes this evidence (docs/evidence.md). Needs `node_trust`, which
    /// is what ties the AK to an attested node.
    pub hardware_fresh: Option<FreshPolicy>,
}

/// Evidence that passed every check of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvidence {
    pub claims: EvidenceClaims,
    /// The session key as SubjectPublicKeyInfo DER (what `trusted_keys` pins).
    pub session_key_spki: Vec<u8>,
    /// The attested node, when the policy asked for `node_trust`.
    pub node: Option<VerifiedNode>,
    /// The verified quote, when the policy asked for hardware-fresh evidence.
    pub fresh: Option<VerifiedFresh>,
}

/// Verifies attestd evidence against `policy`.
///
/// Order matters: size and structure, then the ES256 signature over the
/// Sig_structure, then key trust (pins, node SVID chain); only signed bytes
/// from a trusted key are decoded as claims, which are then held to the
/// nonce, time window, audience and selectors. Hardware-fresh evidence is
/// checked last: the AK, the inclusion proof, the quote and its PCRs.
pub fn verify_evidence(
    bytes: &[u8],
    policy: &EvidencePolicy,
) -> Result<VerifiedEvidence, EvidenceError> {
    // A misconfigured verifier is reported as such, whatever the evidence.
    let nonce_len = policy.expected_nonce.len();
    if !(NONCE_MIN..=NONCE_MAX).contains(&nonce_len) {
        return Err(EvidenceError::InvalidPolicy(format!(
            "expected nonce is {nonce_len} bytes; {NONCE_MIN} to {NONCE_MAX} are allowed"
        )));
    }
    if policy.hardware_fresh.is_some() && policy.node_trust.is_none() {
        return Err(EvidenceError::InvalidPolicy(
            "hardware-fresh evidence needs node_trust: only the node SVID says which AK is the node's"
                .to_owned(),
        ));
    }

    let envelope = parse_envelope(bytes)?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &envelope.session_public_key)
        .verify(&envelope.tbs, &envelope.signature)
        .map_err(|_| EvidenceError::SignatureInvalid)?;

    let session_key_spki = p256_spki_der(&envelope.session_public_key);
    policy::check_trusted_key(&session_key_spki, policy.trusted_keys.as_deref())?;
    let node = policy
        .node_trust
        .as_ref()
        .map(|trust| {
            node::check_node_chain(
                &envelope.x5chain,
                &session_key_spki,
                trust,
                policy.now_unix_secs,
            )
        })
        .transpose()?;

    let claims = EvidenceClaims::from_cbor(&envelope.payload)?;
    if let Some(node) = &node {
        policy::check_node_ueid(claims.ueid.as_deref(), node)?;
    }
    policy::check_nonce(&claims.nonce, &policy.expected_nonce)?;
    policy::check_issued_at(claims.issued_at, policy)?;
    policy::check_audience(claims.audience.as_deref(), policy.audience.as_deref())?;
    policy::check_selectors(&claims.selectors, &policy.required_selectors)?;
    let fresh = match (&policy.hardware_fresh, &node) {
        (Some(fresh_policy), Some(node)) => {
            let header = envelope
                .fresh
                .as_ref()
                .ok_or(EvidenceError::NotHardwareFresh)?;
            Some(fresh::check_fresh(
                header,
                node,
                &envelope.payload,
                &claims.nonce,
                fresh_policy,
            )?)
        }
        _ => None,
    };
    Ok(VerifiedEvidence {
        claims,
        session_key_spki,
        node,
        fresh,
    })
}

/// SubjectPublicKeyInfo for a P-256 key (RFC 5480): id-ecPublicKey with the
/// prime256v1 parameter, and the uncompressed point as the BIT STRING.
pub fn p256_spki_der(point: &[u8]) -> Vec<u8> {
    let algorithm = der::sequence(&[
        &der::object_id(der::oid::EC_PUBLIC_KEY),
        &der::object_id(der::oid::NIST_P256),
    ]);
    der::sequence(&[&algorithm, &der::bit_string(point)])
}
