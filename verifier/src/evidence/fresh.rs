//! Hardware-fresh evidence: the TPM quote in protected header -65538 signs the
//! root of a Merkle tree, and this evidence's leaf (its nonce and the digest of
//! its claims) is in that tree. Checked in this order, each step only on what
//! the previous ones proved:
//! 1. the AK in the header is the one the issuer attested (its TPM Name equals
//!    the node SVID's attested-AK extension) and has AK attributes;
//! 2. the leaf, recomputed from the signed payload and nonce, with the
//!    inclusion proof, leads to a root;
//! 3. the quote's signature verifies with that AK, it is a quote, its
//!    qualifying data is exactly that root, and the PCR values hash to its digest;
//! 4. the quoted PCRs hold the values the policy expects.

use attestd_proto::evidence::{EvidenceError, FreshQuote};

use super::VerifiedNode;
use crate::merkle::{self, Hash};
use crate::quote::{verify_quote, QuoteError};
use crate::tpm2::{HashAlg, PcrValues, TpmPublic};

/// What a relying party requires of hardware-fresh evidence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FreshPolicy {
    /// PCR values the quote must cover, each equal to the value given. Empty:
    /// any PCR state is accepted, as long as the quote is genuine.
    pub expected_pcrs: PcrValues,
}

/// A hardware-fresh quote that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedFresh {
    /// The quoted PCRs (only those the TPM signed).
    pub pcrs: PcrValues,
    /// The batch's Merkle root: the quote's qualifying data.
    pub root: Hash,
    /// This evidence's position in its batch, and the batch size.
    pub leaf_index: u64,
    pub leaf_count: u64,
    /// The TPM's clock (ms) and reset/restart counters when it quoted.
    pub clock: u64,
    pub reset_count: u32,
    pub restart_count: u32,
}

pub(super) fn check_fresh(
    fresh: &FreshQuote,
    node: &VerifiedNode,
    payload: &[u8],
    nonce: &[u8],
    policy: &FreshPolicy,
) -> Result<VerifiedFresh, EvidenceError> {
    let attested = node.ak_name.as_deref().ok_or_else(|| {
        EvidenceError::FreshAk(format!(
            "the node SVID of {} names no attested AK",
            node.spiffe_id
        ))
    })?;
    let ak = TpmPublic::parse(&fresh.ak_public)
        .map_err(|error| EvidenceError::FreshAk(format!("the AK public area: {error}")))?;
    // Equal names mean equal public areas: the name is a hash of all of it.
    if !crate::constant_time::eq(&ak.name(), attested) {
        return Err(EvidenceError::FreshAk(format!(
            "the quote's AK is not the AK the issuer attested for {}",
            node.spiffe_id
        )));
    }
    crate::ak::check_ak_attributes(&ak)
        .map_err(|error| EvidenceError::FreshAk(error.to_string()))?;

    let leaf = merkle::leaf_hash(nonce, &merkle::claims_digest(payload))
        .map_err(|error| EvidenceError::FreshProof(error.to_string()))?;
    let root = merkle::root_from_inclusion(&leaf, fresh.leaf_index, fresh.leaf_count, &fresh.proof)
        .map_err(|error| EvidenceError::FreshProof(error.to_string()))?;

    let mut values = PcrValues::new();
    for pcr in &fresh.pcrs {
        let bank = HashAlg::from_tpm(pcr.bank).ok_or_else(|| {
            EvidenceError::FreshQuote(format!("PCR bank {:#06x} is not supported", pcr.bank))
        })?;
        values.insert(bank, pcr.index, pcr.value.clone());
    }
    let quote =
        verify_quote(&ak, &fresh.attest, &fresh.signature, &root, &values).map_err(|error| {
            match error {
                // The TPM signed another root: this leaf is not in its batch.
                QuoteError::NonceMismatch => EvidenceError::FreshProof(
                    "the inclusion proof leads to another root than the one the quote signs"
                        .to_owned(),
                ),
                other => EvidenceError::FreshQuote(other.to_string()),
            }
        })?;

    for (bank, index, expected) in policy.expected_pcrs.iter() {
        match quote.pcr_values.get(bank, index) {
            Some(value) if value == expected => {}
            Some(_) => {
                return Err(EvidenceError::PcrPolicy(format!(
                    "PCR {bank}:{index} differs from the expected value"
                )))
            }
            None => {
                return Err(EvidenceError::PcrPolicy(format!(
                    "PCR {bank}:{index} is not quoted"
                )))
            }
        }
    }
    Ok(VerifiedFresh {
        pcrs: quote.pcr_values,
        root,
        leaf_index: fresh.leaf_index,
        leaf_count: fresh.leaf_count,
        clock: quote.attest.clock_info.clock,
        reset_count: quote.attest.clock_info.reset_count,
        restart_count: quote.attest.clock_info.restart_count,
    })
}
