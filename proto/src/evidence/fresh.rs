//! The hardware-fresh header (protected header -65538): a TPM quote made after
//! the request arrived, whose qualifying data is the root of a Merkle tree over
//! a batch of requests, and this evidence's inclusion proof in that tree.
//! Encoding and decoding only; `attestd_verifier::evidence` checks it.

use ciborium::value::{Integer, Value};

use super::claims::kind;
use super::EvidenceError;

/// Largest TPM structure carried (TPMT_PUBLIC of an RSA-4096 key is ~600 bytes;
/// TPMS_ATTEST with a full PCR selection ~200).
pub const MAX_FRESH_BLOB: usize = 2048;
/// Most PCR values: four banks of 24 PCRs.
pub const MAX_FRESH_PCRS: usize = 96;
/// Longest PCR value (SHA-512).
pub const MAX_PCR_VALUE: usize = 64;
/// Longest inclusion proof (a batch has at most 2^16 leaves).
pub const MAX_FRESH_PROOF: usize = 16;
/// Largest batch a proof may claim.
pub const MAX_FRESH_LEAVES: u64 = 1 << 16;

mod key {
    pub const AK_PUBLIC: u64 = 1;
    pub const ATTEST: u64 = 2;
    pub const SIGNATURE: u64 = 3;
    pub const PCRS: u64 = 4;
    pub const LEAF_INDEX: u64 = 5;
    pub const LEAF_COUNT: u64 = 6;
    pub const PROOF: u64 = 7;
}

/// One quoted PCR: TPM_ALG_ID of its bank, index, value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshPcr {
    pub bank: u16,
    pub index: u8,
    pub value: Vec<u8>,
}

/// What the hardware-fresh header carries. Nothing in it is trusted until the
/// verifier has checked the quote's signature with an AK the node SVID names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshQuote {
    /// The AK's marshalled TPMT_PUBLIC.
    pub ak_public: Vec<u8>,
    /// Marshalled TPMS_ATTEST, exactly the bytes the AK signed.
    pub attest: Vec<u8>,
    /// Marshalled TPMT_SIGNATURE.
    pub signature: Vec<u8>,
    /// The quoted PCRs' values, in the quote's selection order.
    pub pcrs: Vec<FreshPcr>,
    /// This evidence's leaf: its position in the batch (arrival order).
    pub leaf_index: u64,
    /// How many leaves the batch had.
    pub leaf_count: u64,
    /// Sibling hashes from the leaf up to the root (RFC 9162 PATH).
    pub proof: Vec<[u8; 32]>,
}

impl FreshQuote {
    /// The header value, map keys in ascending order (deterministic).
    pub(crate) fn to_value(&self) -> Result<Value, EvidenceError> {
        self.check().map_err(EvidenceError::Encode)?;
        let uint = |n: u64| Value::Integer(Integer::from(n));
        Ok(Value::Map(vec![
            (uint(key::AK_PUBLIC), Value::Bytes(self.ak_public.clone())),
            (uint(key::ATTEST), Value::Bytes(self.attest.clone())),
            (uint(key::SIGNATURE), Value::Bytes(self.signature.clone())),
            (
                uint(key::PCRS),
                Value::Array(
                    self.pcrs
                        .iter()
                        .map(|pcr| {
                            Value::Array(vec![
                                uint(u64::from(pcr.bank)),
                                uint(u64::from(pcr.index)),
                                Value::Bytes(pcr.value.clone()),
                            ])
                        })
                        .collect(),
                ),
            ),
            (uint(key::LEAF_INDEX), uint(self.leaf_index)),
            (uint(key::LEAF_COUNT), uint(self.leaf_count)),
            (
                uint(key::PROOF),
                Value::Array(
                    self.proof
                        .iter()
                        .map(|hash| Value::Bytes(hash.to_vec()))
                        .collect(),
                ),
            ),
        ]))
    }

    /// Reads the header value strictly: exactly the seven keys, each of its
    /// type and within its bound.
    pub(crate) fn from_value(value: &Value) -> Result<FreshQuote, EvidenceError> {
        let Value::Map(entries) = value else {
            return Err(malformed(format!("is a CBOR {}, not a map", kind(value))));
        };
        if entries.len() != 7 {
            return Err(malformed(format!(
                "has {} entries; it has exactly 7",
                entries.len()
            )));
        }
        let field = |wanted: u64| {
            entries
                .iter()
                .find(|(label, _)| matches!(label, Value::Integer(n) if u64::try_from(*n).ok() == Some(wanted)))
                .map(|(_, value)| value)
                .ok_or_else(|| malformed(format!("has no key {wanted}")))
        };
        let blob = |wanted: u64, name: &str| -> Result<Vec<u8>, EvidenceError> {
            match field(wanted)? {
                Value::Bytes(bytes) if !bytes.is_empty() && bytes.len() <= MAX_FRESH_BLOB => {
                    Ok(bytes.clone())
                }
                Value::Bytes(bytes) => Err(malformed(format!(
                    "{name} is {} bytes; 1 to {MAX_FRESH_BLOB} are accepted",
                    bytes.len()
                ))),
                other => Err(malformed(format!("{name} is a CBOR {}", kind(other)))),
            }
        };
        let unsigned = |wanted: u64, name: &str| -> Result<u64, EvidenceError> {
            match field(wanted)? {
                Value::Integer(n) => {
                    u64::try_from(*n).map_err(|_| malformed(format!("{name} is negative")))
                }
                other => Err(malformed(format!("{name} is a CBOR {}", kind(other)))),
            }
        };
        let fresh = FreshQuote {
            ak_public: blob(key::AK_PUBLIC, "the AK public area")?,
            attest: blob(key::ATTEST, "the quote")?,
            signature: blob(key::SIGNATURE, "the quote signature")?,
            pcrs: pcrs(field(key::PCRS)?)?,
            leaf_index: unsigned(key::LEAF_INDEX, "the leaf index")?,
            leaf_count: unsigned(key::LEAF_COUNT, "the leaf count")?,
            proof: proof(field(key::PROOF)?)?,
        };
        fresh.check().map_err(malformed)?;
        Ok(fresh)
    }

    fn check(&self) -> Result<(), String> {
        if self.leaf_count == 0 || self.leaf_count > MAX_FRESH_LEAVES {
            return Err(format!(
                "the batch has {} leaves; 1 to {MAX_FRESH_LEAVES} are possible",
                self.leaf_count
            ));
        }
        if self.leaf_index >= self.leaf_count {
            return Err(format!(
                "leaf {} is outside a batch of {}",
                self.leaf_index, self.leaf_count
            ));
        }
        if self.proof.len() > MAX_FRESH_PROOF {
            return Err(format!(
                "the proof has {} hashes; at most {MAX_FRESH_PROOF}",
                self.proof.len()
            ));
        }
        if self.pcrs.len() > MAX_FRESH_PCRS {
            return Err(format!(
                "{} PCR values; at most {MAX_FRESH_PCRS}",
                self.pcrs.len()
            ));
        }
        if let Some(pcr) = self
            .pcrs
            .iter()
            .find(|pcr| pcr.value.is_empty() || pcr.value.len() > MAX_PCR_VALUE)
        {
            return Err(format!(
                "PCR {} has a value of {} bytes",
                pcr.index,
                pcr.value.len()
            ));
        }
        for blob in [&self.ak_public, &self.attest, &self.signature] {
            if blob.is_empty() || blob.len() > MAX_FRESH_BLOB {
                return Err(format!(
                    "a TPM structure of {} bytes; 1 to {MAX_FRESH_BLOB} are accepted",
                    blob.len()
                ));
            }
        }
        Ok(())
    }
}

fn pcrs(value: &Value) -> Result<Vec<FreshPcr>, EvidenceError> {
    let Value::Array(items) = value else {
        return Err(malformed(format!("PCRs are a CBOR {}", kind(value))));
    };
    if items.len() > MAX_FRESH_PCRS {
        return Err(malformed(format!(
            "{} PCR values; at most {MAX_FRESH_PCRS}",
            items.len()
        )));
    }
    items
        .iter()
        .map(|item| match item {
            Value::Array(parts) => match parts.as_slice() {
                [Value::Integer(bank), Value::Integer(index), Value::Bytes(value)] => {
                    Ok(FreshPcr {
                        bank: u16::try_from(*bank)
                            .map_err(|_| malformed("a PCR bank is not a TPM_ALG_ID".into()))?,
                        index: u8::try_from(*index)
                            .ok()
                            .filter(|index| *index < 32)
                            .ok_or_else(|| malformed("a PCR index is not 0-31".into()))?,
                        value: value.clone(),
                    })
                }
                _ => Err(malformed("a PCR is not [bank, index, value]".into())),
            },
            other => Err(malformed(format!("a PCR is a CBOR {}", kind(other)))),
        })
        .collect()
}

fn proof(value: &Value) -> Result<Vec<[u8; 32]>, EvidenceError> {
    let Value::Array(items) = value else {
        return Err(malformed(format!("the proof is a CBOR {}", kind(value))));
    };
    if items.len() > MAX_FRESH_PROOF {
        return Err(malformed(format!(
            "the proof has {} hashes; at most {MAX_FRESH_PROOF}",
            items.len()
        )));
    }
    items
        .iter()
        .map(|item| match item {
            Value::Bytes(hash) => <[u8; 32]>::try_from(hash.as_slice())
                .map_err(|_| malformed(format!("a proof hash is {} bytes, not 32", hash.len()))),
            other => Err(malformed(format!("a proof hash is a CBOR {}", kind(other)))),
        })
        .collect()
}

fn malformed(reason: String) -> EvidenceError {
    EvidenceError::Malformed(format!("hardware-fresh header (-65538) {reason}"))
}
