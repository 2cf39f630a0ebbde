//! The attestd evidence format: EAT claims in a COSE_Sign1. See docs/evidence.md.
//!
//! Evidence is a tagged COSE_Sign1 (RFC 9052, CBOR tag 18) signed with ES256 by
//! the daemon's session key, which travels in the protected header as a
//! COSE_Key under the private-use label -65537. The payload is an EAT claims
//! set (RFC 9711) in deterministic CBOR. The schema is docs/evidence.cddl.
//!
//! This crate encodes and parses; it never verifies a signature (no crypto
//! dependency here). Signing happens in the caller's closure, verification in
//! `attestd_verifier::evidence`.

mod cbor;
mod claims;
mod cose;
mod error;
mod fresh;

#[cfg(test)]
mod claims_test;
#[cfg(test)]
mod cose_test;
#[cfg(test)]
mod fresh_test;
#[cfg(test)]
mod header_test;
#[cfg(test)]
mod never_panics_test;

pub use claims::{BinaryClaim, EvidenceClaims, HostClaims};
pub use cose::{
    parse_envelope, parse_evidence, sign_certified_evidence, sign_evidence, sign_payload,
    EvidenceEnvelope, Headers, ParsedEvidence,
};
pub use error::EvidenceError;
pub use fresh::{
    FreshPcr, FreshQuote, MAX_FRESH_BLOB, MAX_FRESH_LEAVES, MAX_FRESH_PCRS, MAX_FRESH_PROOF,
    MAX_PCR_VALUE,
};

/// Shortest nonce a verifier may ask for: below 64 bits a replay becomes guessable.
pub const NONCE_MIN: usize = 8;
/// Longest nonce: room for a SHA-512 digest, no more.
pub const NONCE_MAX: usize = 64;

/// The EAT profile (claim 265) every attestd v1 evidence carries.
pub const PROFILE: &str = "tag:attestd.dev,2026:evidence/v1";

/// COSE content type (protected header 3): the EAT unprotected claims set.
pub const CONTENT_TYPE: &str = "application/eat-ucs+cbor";

/// Verifiers refuse larger evidence before parsing anything, and the signer
/// refuses to produce it, so the two sides cannot disagree about the limit.
pub const MAX_EVIDENCE_BYTES: usize = 64 * 1024;

/// UEID length: the type byte and a SHA-256 digest.
pub const UEID_LEN: usize = 33;
/// UEID type byte RAND (RFC 9711 §4.2.1): the digest is as unique as a random number.
pub const UEID_TYPE_RAND: u8 = 0x01;

/// Length of an uncompressed SEC1 P-256 point (`0x04 || x || y`).
pub const SESSION_KEY_LEN: usize = 65;
/// Length of a raw ES256 signature (`r || s`).
pub const SIGNATURE_LEN: usize = 64;

/// Map keys of the claims set and the private-use header label.
pub mod labels {
    /// EAT `eat_nonce` (bstr).
    pub const EAT_NONCE: i64 = 10;
    /// EAT `ueid` (bstr, 33 bytes).
    pub const UEID: i64 = 256;
    /// CWT/EAT `iat` (int, seconds since the Unix epoch).
    pub const IAT: i64 = 6;
    /// EAT `eat_profile` (tstr, [`super::PROFILE`]).
    pub const EAT_PROFILE: i64 = 265;
    /// Workload selectors (array of tstr, sorted, unique).
    pub const SELECTORS: &str = "attestd.selectors";
    /// The workload's binary (map: path, sha256).
    pub const BINARY: &str = "attestd.binary";
    /// The host (map: hostname, kernel, os, boot_id).
    pub const HOST: &str = "attestd.host";
    /// The relying party the evidence was asked for (tstr).
    pub const AUDIENCE: &str = "attestd.audience";
    /// Protected header parameter holding the session key as a COSE_Key.
    /// Private-use range (RFC 9052 §3.1: labels below -65536).
    pub const SESSION_KEY: i64 = -65537;
    /// Protected header parameter `x5chain` (RFC 9360): the node SVID that
    /// certifies the session key, then any intermediates, as DER.
    pub const X5CHAIN: i64 = 33;
    /// Protected header parameter holding the hardware-fresh TPM quote and
    /// this evidence's Merkle inclusion proof (docs/evidence.md). Private use.
    pub const FRESH_QUOTE: i64 = -65538;
}

/// Most certificates an `x5chain` may hold: a node SVID and intermediates.
/// Real chains have one to three; the bound keeps hostile input cheap.
pub const MAX_X5CHAIN_CERTS: usize = 8;
