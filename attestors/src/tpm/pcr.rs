//! PCR selections and values in TPM terms: building TPML_PCR_SELECTION in the
//! caller's order, reading values eight at a time, and the quote's composite digest.

use std::convert::TryFrom;

use tss_esapi::structures::PcrSelectionList;
use tss_esapi::tss2_esys::{TPML_PCR_SELECTION, TPMS_PCR_SELECTION};
use tss_esapi::Context;

use super::error::TpmError;
use super::types::{PcrBank, PcrBankValues, PcrSelection, PcrValues};

/// Builds the TPM selection in our order (tss-esapi's builder reorders banks).
pub(crate) fn selection_list(selection: &PcrSelection) -> Result<PcrSelectionList, TpmError> {
    let mut raw = TPML_PCR_SELECTION::default();
    for (slot, (bank, indices)) in selection.banks().iter().enumerate() {
        let entry = raw.pcrSelections.get_mut(slot).ok_or_else(|| {
            TpmError::InvalidRequest("too many PCR banks in one selection".into())
        })?;
        let mut select = [0u8; 4];
        for index in indices {
            if let Some(byte) = select.get_mut(usize::from(index / 8)) {
                *byte |= 1 << (index % 8);
            }
        }
        *entry = TPMS_PCR_SELECTION {
            hash: bank.alg_id(),
            sizeofSelect: 3,
            pcrSelect: select,
        };
        raw.count += 1;
    }
    PcrSelectionList::try_from(raw).map_err(TpmError::esapi("building the PCR selection"))
}

pub(crate) fn from_selection_list(list: &PcrSelectionList) -> Result<PcrSelection, TpmError> {
    let mut banks = Vec::new();
    for selection in list.get_selections() {
        let bank = PcrBank::from_hashing_algorithm(selection.hashing_algorithm())
            .ok_or_else(|| TpmError::InvalidRequest("the TPM quoted an unknown PCR bank".into()))?;
        let indices = selection
            .selected()
            .into_iter()
            .map(|slot| (slot as u32).trailing_zeros() as u8)
            .collect();
        banks.push((bank, indices));
    }
    PcrSelection::new(banks).map_err(TpmError::InvalidRequest)
}

/// Reads PCR values bank by bank. TPM2_PCR_Read returns at most eight digests per
/// call, so loop, but never more often than there are PCRs: a TPM that returns
/// nothing for a bank would otherwise spin us forever.
pub(crate) fn read_pcrs(
    ctx: &mut Context,
    selection: &PcrSelection,
) -> Result<PcrValues, TpmError> {
    let mut out = PcrValues::default();
    for (bank, indices) in selection.banks() {
        let mut remaining = indices.clone();
        let mut values: Vec<(u8, Vec<u8>)> = Vec::with_capacity(indices.len());
        for _ in 0..=indices.len() {
            if remaining.is_empty() {
                break;
            }
            let request = PcrSelection::new(vec![(*bank, remaining.clone())])
                .map_err(TpmError::InvalidRequest)?;
            let (_, read, digests) = ctx
                .pcr_read(selection_list(&request)?)
                .map_err(TpmError::esapi("reading PCRs"))?;
            let read = from_selection_list(&read).ok();
            let got: Vec<u8> = read
                .iter()
                .flat_map(|s| s.banks().iter())
                .filter(|(b, _)| b == bank)
                .flat_map(|(_, i)| i.iter().copied())
                .collect();
            if got.is_empty() || got.len() != digests.len() {
                return Err(TpmError::InvalidRequest(format!(
                    "the TPM returned {} digests for {} PCRs of bank {bank}",
                    digests.len(),
                    got.len()
                )));
            }
            for (index, digest) in got.iter().zip(digests.value()) {
                if digest.value().len() != bank.digest_len() {
                    return Err(TpmError::InvalidRequest(format!(
                        "PCR {bank}:{index} has a {}-byte value",
                        digest.value().len()
                    )));
                }
                values.push((*index, digest.value().to_vec()));
                remaining.retain(|r| r != index);
            }
        }
        if !remaining.is_empty() {
            return Err(TpmError::InvalidRequest(format!(
                "the TPM did not return PCRs {remaining:?} of bank {bank}"
            )));
        }
        values.sort_by_key(|(index, _)| *index);
        out.banks.push(PcrBankValues {
            bank: *bank,
            values,
        });
    }
    Ok(out)
}

/// The quote's pcrDigest: SHA-256 (our AKs' scheme hash) over the selected values in order.
pub(crate) fn composite_digest(
    selection: &PcrSelection,
    values: &PcrValues,
) -> Result<Vec<u8>, TpmError> {
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    for (bank, indices) in selection.banks() {
        for index in indices {
            let value = values.get(*bank, *index).ok_or_else(|| {
                TpmError::InvalidRequest(format!("PCR {bank}:{index} was not read"))
            })?;
            hasher.update(value);
        }
    }
    Ok(hasher.finish().as_ref().to_vec())
}
