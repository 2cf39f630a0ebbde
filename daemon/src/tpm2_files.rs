//! Files in the formats tpm2-tools reads, so operators can cross-check attestd's
//! quotes with `tpm2_checkquote` and other tools they already trust.
//!
//! - `quote.msg`: the marshalled TPMS_ATTEST, byte for byte what the AK signed;
//! - `quote.sig`: the marshalled TPMT_SIGNATURE;
//! - `quote.pcrs`: tpm2-tools' "values" PCR format, a host-endian dump of its C
//!   structures: a TPML_PCR_SELECTION (count + 16 slots of 8 bytes), a u32 count of
//!   TPML_DIGEST blocks, then that many TPML_DIGEST blocks (count + 8 slots of a
//!   u16 size and a 64-byte buffer). Each block holds at most eight digests, in
//!   selection order. Checked byte for byte against `tpm2_quote -o` in the tests.

use attestd_attestors::tpm::{PcrBank, PcrSelection, PcrValues};

const SELECTION_SLOTS: usize = 16;
const SELECTION_SLOT_BYTES: usize = 8;
const SELECTION_BYTES: usize = 4 + SELECTION_SLOTS * SELECTION_SLOT_BYTES;
const DIGESTS_PER_BLOCK: usize = 8;
const DIGEST_SLOT_BYTES: usize = 2 + 64;
const DIGEST_BLOCK_BYTES: usize = 4 + DIGESTS_PER_BLOCK * DIGEST_SLOT_BYTES;

/// Why a PCR file cannot be written or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PcrFileError {
    #[error("the selection has {0} banks; the file format holds at most 16")]
    TooManyBanks(usize),
    #[error("PCR {bank}:{index} has no value")]
    MissingValue { bank: PcrBank, index: u8 },
    #[error("PCR file is {0} bytes; too short for its header")]
    Truncated(usize),
    #[error("PCR file is malformed: {0}")]
    Malformed(String),
}

/// Serialises `values` for `selection` as `tpm2_quote -o` does.
pub fn encode_pcrs(selection: &PcrSelection, values: &PcrValues) -> Result<Vec<u8>, PcrFileError> {
    let banks = selection.banks();
    if banks.len() > SELECTION_SLOTS {
        return Err(PcrFileError::TooManyBanks(banks.len()));
    }
    let mut out = Vec::with_capacity(SELECTION_BYTES + 4 + 3 * DIGEST_BLOCK_BYTES);
    out.extend_from_slice(&(banks.len() as u32).to_le_bytes());
    for slot in 0..SELECTION_SLOTS {
        let mut entry = [0u8; SELECTION_SLOT_BYTES];
        if let Some((bank, indices)) = banks.get(slot) {
            entry[..2].copy_from_slice(&bank.alg_id().to_le_bytes());
            entry[2] = 3;
            for index in indices {
                entry[3 + usize::from(index / 8)] |= 1 << (index % 8);
            }
        }
        out.extend_from_slice(&entry);
    }
    let mut digests: Vec<&[u8]> = Vec::new();
    for (bank, indices) in banks {
        for index in indices {
            let value = values
                .get(*bank, *index)
                .ok_or(PcrFileError::MissingValue {
                    bank: *bank,
                    index: *index,
                })?;
            digests.push(value);
        }
    }
    let blocks: Vec<&[&[u8]]> = digests.chunks(DIGESTS_PER_BLOCK).collect();
    out.extend_from_slice(&(blocks.len() as u32).to_le_bytes());
    for block in blocks {
        out.extend_from_slice(&(block.len() as u32).to_le_bytes());
        for slot in 0..DIGESTS_PER_BLOCK {
            let mut entry = [0u8; DIGEST_SLOT_BYTES];
            if let Some(digest) = block.get(slot) {
                // Every bank's digest fits: SHA-512 is the largest at 64 bytes.
                entry[..2].copy_from_slice(&(digest.len() as u16).to_le_bytes());
                entry[2..2 + digest.len()].copy_from_slice(digest);
            }
            out.extend_from_slice(&entry);
        }
    }
    Ok(out)
}

/// Parses a tpm2-tools "values" PCR file. The input is untrusted: every count and
/// size is checked before use.
pub fn decode_pcrs(bytes: &[u8]) -> Result<(PcrSelection, PcrValues), PcrFileError> {
    if bytes.len() < SELECTION_BYTES + 4 {
        return Err(PcrFileError::Truncated(bytes.len()));
    }
    let u32_at = |offset: usize| -> Result<u32, PcrFileError> {
        bytes
            .get(offset..offset + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or(PcrFileError::Truncated(bytes.len()))
    };
    let bank_count = u32_at(0)? as usize;
    if bank_count > SELECTION_SLOTS {
        return Err(PcrFileError::TooManyBanks(bank_count));
    }
    let mut banks = Vec::with_capacity(bank_count);
    for slot in 0..bank_count {
        let entry = &bytes[4 + slot * SELECTION_SLOT_BYTES..4 + (slot + 1) * SELECTION_SLOT_BYTES];
        let alg = u16::from_le_bytes([entry[0], entry[1]]);
        let bank = [
            PcrBank::Sha1,
            PcrBank::Sha256,
            PcrBank::Sha384,
            PcrBank::Sha512,
        ]
        .into_iter()
        .find(|b| b.alg_id() == alg)
        .ok_or_else(|| PcrFileError::Malformed(format!("unknown hash algorithm 0x{alg:04x}")))?;
        let size = usize::from(entry[2]);
        if size > 4 {
            return Err(PcrFileError::Malformed(format!("sizeofSelect {size} > 4")));
        }
        let indices: Vec<u8> = (0u8..32)
            .filter(|i| {
                usize::from(i / 8) < size && entry[3 + usize::from(i / 8)] & (1 << (i % 8)) != 0
            })
            .collect();
        banks.push((bank, indices));
    }
    let selection = PcrSelection::new(banks).map_err(PcrFileError::Malformed)?;
    let block_count = u32_at(SELECTION_BYTES)? as usize;
    let expected = SELECTION_BYTES + 4 + block_count.saturating_mul(DIGEST_BLOCK_BYTES);
    if block_count > 64 || bytes.len() != expected {
        return Err(PcrFileError::Malformed(format!(
            "{block_count} digest blocks do not match a file of {} bytes",
            bytes.len()
        )));
    }
    let mut digests = Vec::new();
    for block in 0..block_count {
        let start = SELECTION_BYTES + 4 + block * DIGEST_BLOCK_BYTES;
        let count = u32_at(start)? as usize;
        if count > DIGESTS_PER_BLOCK {
            return Err(PcrFileError::Malformed(format!(
                "digest block holds {count} > 8"
            )));
        }
        for slot in 0..count {
            let entry = &bytes
                [start + 4 + slot * DIGEST_SLOT_BYTES..start + 4 + (slot + 1) * DIGEST_SLOT_BYTES];
            let size = usize::from(u16::from_le_bytes([entry[0], entry[1]]));
            if size > 64 {
                return Err(PcrFileError::Malformed(format!("digest of {size} bytes")));
            }
            digests.push(entry[2..2 + size].to_vec());
        }
    }
    let mut values = PcrValues::default();
    let mut next = digests.into_iter();
    for (bank, indices) in selection.banks() {
        let mut bank_values = Vec::with_capacity(indices.len());
        for index in indices {
            let digest = next.next().ok_or(PcrFileError::MissingValue {
                bank: *bank,
                index: *index,
            })?;
            if digest.len() != bank.digest_len() {
                return Err(PcrFileError::Malformed(format!(
                    "PCR {bank}:{index} has a {}-byte value",
                    digest.len()
                )));
            }
            bank_values.push((*index, digest));
        }
        values.banks.push(attestd_attestors::tpm::PcrBankValues {
            bank: *bank,
            values: bank_values,
        });
    }
    if next.next().is_some() {
        return Err(PcrFileError::Malformed(
            "more digests than selected PCRs".into(),
        ));
    }
    Ok((selection, values))
}

#[cfg(test)]
#[path = "tpm2_files_test.rs"]
mod tests;
