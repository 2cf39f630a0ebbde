//! PCR selections (TPML_PCR_SELECTION) and a map of PCR values keyed by
//! bank and index, the two inputs to a quote's PCR digest.

use std::collections::BTreeMap;

use super::reader::Reader;
use super::{HashAlg, ParseError};

/// At most this many banks in one selection list; real TPMs have 1–4.
const MAX_BANKS: usize = 16;
/// A u8 PCR index addresses at most 256 PCRs, i.e. 32 bitmap bytes.
const MAX_SELECT_BYTES: usize = 32;

/// The PCRs of one bank that a quote covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrSelection {
    pub hash: HashAlg,
    /// PCR indices in ascending order, the order the TPM digests them.
    pub pcrs: Vec<u8>,
}

/// Parses a TPML_PCR_SELECTION that must span all of `bytes`.
pub fn parse_pcr_selection_list(bytes: &[u8]) -> Result<Vec<PcrSelection>, ParseError> {
    let mut reader = Reader::new(bytes);
    let list = read_pcr_selection_list(&mut reader)?;
    reader.finish("TPML_PCR_SELECTION")?;
    Ok(list)
}

pub(crate) fn read_pcr_selection_list(
    reader: &mut Reader<'_>,
) -> Result<Vec<PcrSelection>, ParseError> {
    let count = usize::try_from(reader.u32("TPML_PCR_SELECTION.count")?).unwrap_or(usize::MAX);
    if count > MAX_BANKS {
        return Err(ParseError::TooLarge {
            field: "TPML_PCR_SELECTION.count",
            size: count,
            max: MAX_BANKS,
        });
    }
    let mut selections = Vec::with_capacity(count);
    for _ in 0..count {
        let hash = HashAlg::read(reader, "TPMS_PCR_SELECTION.hash")?;
        let size = usize::from(reader.u8("TPMS_PCR_SELECTION.sizeofSelect")?);
        if size > MAX_SELECT_BYTES {
            return Err(ParseError::TooLarge {
                field: "TPMS_PCR_SELECTION.sizeofSelect",
                size,
                max: MAX_SELECT_BYTES,
            });
        }
        let bitmap = reader.take(size, "TPMS_PCR_SELECTION.pcrSelect")?;
        selections.push(PcrSelection {
            hash,
            pcrs: bitmap_to_indices(bitmap),
        });
    }
    Ok(selections)
}

/// Bit `i` of byte `j` selects PCR `8*j + i` (TPM 2.0 Part 2, TPMS_PCR_SELECT).
fn bitmap_to_indices(bitmap: &[u8]) -> Vec<u8> {
    let mut indices = Vec::new();
    for (byte_index, byte) in bitmap.iter().enumerate() {
        for bit in 0..8u8 {
            if byte & (1 << bit) != 0 {
                // byte_index < 32, so the index fits in a u8.
                if let Ok(index) = u8::try_from(byte_index * 8 + usize::from(bit)) {
                    indices.push(index);
                }
            }
        }
    }
    indices
}

/// PCR values claimed by an attester, keyed by (bank, index). Values are only
/// trustworthy once a verified quote's digest covers them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PcrValues {
    values: BTreeMap<(HashAlg, u8), Vec<u8>>,
}

impl PcrValues {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one PCR value, returning the previous one. Lengths are checked
    /// when a quote is verified, where a mismatch can be reported usefully.
    pub fn insert(&mut self, bank: HashAlg, index: u8, value: Vec<u8>) -> Option<Vec<u8>> {
        self.values.insert((bank, index), value)
    }

    pub fn get(&self, bank: HashAlg, index: u8) -> Option<&[u8]> {
        self.values.get(&(bank, index)).map(Vec::as_slice)
    }

    /// All values in (bank, index) order.
    pub fn iter(&self) -> impl Iterator<Item = (HashAlg, u8, &[u8])> {
        self.values
            .iter()
            .map(|((bank, index), value)| (*bank, *index, value.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl FromIterator<(HashAlg, u8, Vec<u8>)> for PcrValues {
    fn from_iter<I: IntoIterator<Item = (HashAlg, u8, Vec<u8>)>>(iter: I) -> Self {
        Self {
            values: iter
                .into_iter()
                .map(|(bank, index, value)| ((bank, index), value))
                .collect(),
        }
    }
}

#[cfg(test)]
#[path = "pcr_test.rs"]
mod tests;
