//! Why evidence could not be produced, parsed or accepted.
//!
//! One enum for the signer, the parser and the verifier: an issuer maps a single
//! type to its answer, and the variants a verifier adds (nonce, time, audience,
//! key, selectors) read the same wherever they surface.

/// Why evidence could not be produced, parsed or accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    #[error("evidence is {len} bytes; at most {max} are accepted")]
    TooLarge { len: usize, max: usize },
    #[error("malformed evidence: {0}")]
    Malformed(String),
    #[error("claim {claim} is missing")]
    MissingClaim { claim: &'static str },
    #[error("claim {claim} is invalid: {reason}")]
    InvalidClaim { claim: &'static str, reason: String },
    #[error("signature algorithm {found} is not accepted; attestd evidence is signed with ES256")]
    UnsupportedAlgorithm { found: String },
    #[error("critical header parameter {label} is not understood")]
    UnknownCriticalHeader { label: String },
    #[error("session key (protected header -65537) is invalid: {0}")]
    InvalidSessionKey(String),
    #[error("encoding evidence failed: {0}")]
    Encode(String),
    #[error("signing evidence failed: {0}")]
    Signing(String),
    #[error("the signature does not verify with the embedded session key")]
    SignatureInvalid,
    #[error("the session key is not one of the trusted keys")]
    UntrustedKey,
    #[error("the evidence nonce does not match the expected nonce")]
    NonceMismatch,
    #[error("evidence issued at {issued_at} is more than {max_age_secs} s old at {now}")]
    Expired {
        issued_at: i64,
        now: i64,
        max_age_secs: u64,
    },
    #[error("evidence issued at {issued_at} lies more than {max_future_skew_secs} s after {now}")]
    NotYetValid {
        issued_at: i64,
        now: i64,
        max_future_skew_secs: u64,
    },
    #[error("evidence audience {found:?} differs from the expected {expected:?}")]
    AudienceMismatch {
        expected: Option<String>,
        found: Option<String>,
    },
    #[error("required selector {selector:?} is not among the evidence selectors")]
    MissingSelector { selector: String },
    #[error("the evidence carries no node SVID chain (x5chain): it does not come from a node the issuer attested")]
    NodeNotCertified,
    #[error("the node SVID chain does not verify against the trust bundle: {0}")]
    NodeChain(String),
    #[error("the node SVID does not match the evidence: {0}")]
    NodeMismatch(String),
    #[error("the policy requires hardware-fresh evidence, and this evidence carries no TPM quote")]
    NotHardwareFresh,
    #[error("the hardware-fresh quote's AK is refused: {0}")]
    FreshAk(String),
    #[error("the hardware-fresh inclusion proof is refused: {0}")]
    FreshProof(String),
    #[error("the hardware-fresh quote is refused: {0}")]
    FreshQuote(String),
    #[error("the quoted PCRs do not satisfy the policy: {0}")]
    PcrPolicy(String),
    #[error("invalid verification policy: {0}")]
    InvalidPolicy(String),
}
