//! Reading EK certificates and their chain out of TPM NV storage.

use tss_esapi::abstraction::nv;
use tss_esapi::constants::CapabilityType;
use tss_esapi::handles::{NvIndexTpmHandle, TpmHandle};
use tss_esapi::interface_types::resource_handles::NvAuth;
use tss_esapi::structures::CapabilityData;
use tss_esapi::Context;

use super::error::TpmError;

/// NV indices reserved by the TCG EK Credential Profile for the EK certificate chain.
pub(crate) const EK_CHAIN_FIRST_INDEX: u32 = 0x01c0_0100;
pub(crate) const EK_CHAIN_LAST_INDEX: u32 = 0x01c0_01ff;
/// Refuse NV contents beyond this; no certificate or chain index is this large.
const MAX_NV_CERT_BYTES: usize = 64 * 1024;

pub(crate) fn defined_nv_indices(ctx: &mut Context) -> Result<Vec<u32>, TpmError> {
    let mut found = Vec::new();
    let mut next = 0x01c0_0000u32;
    // Bounded: the range holds at most 512 indices we care about.
    for _ in 0..16 {
        let (data, more) = ctx
            .get_capability(CapabilityType::Handles, next, 64)
            .map_err(TpmError::esapi("listing NV indices"))?;
        let CapabilityData::Handles(handles) = data else {
            break;
        };
        let batch: Vec<u32> = handles.iter().map(|h| u32::from(*h)).collect();
        let Some(last) = batch.last().copied() else {
            break;
        };
        found.extend(batch.into_iter().filter(|h| *h <= EK_CHAIN_LAST_INDEX));
        if !more || last >= EK_CHAIN_LAST_INDEX {
            break;
        }
        next = last + 1;
    }
    Ok(found)
}

pub(crate) fn read_nv(ctx: &mut Context, index: u32) -> Result<Vec<u8>, TpmError> {
    let handle = NvIndexTpmHandle::new(index).map_err(TpmError::esapi("NV index"))?;
    let esys_handle = ctx
        .execute_without_session(|ctx| ctx.tr_from_tpm_public(TpmHandle::NvIndex(handle)))
        .map_err(TpmError::esapi("opening an NV index"))?;
    // read_full looks the index up again and closes the ESYS handle itself.
    let data = ctx
        .execute_with_nullauth_session(|ctx| {
            nv::read_full(ctx, NvAuth::NvIndex(esys_handle.into()), handle)
        })
        .map_err(TpmError::esapi("reading an NV index"))?;
    if data.len() > MAX_NV_CERT_BYTES {
        return Err(TpmError::MalformedEkCertificate {
            index,
            reason: format!("{} bytes is more than any certificate", data.len()),
        });
    }
    Ok(data)
}

/// Splits NV contents into DER certificates. NV indices are often larger than the
/// certificate and padded with 0x00 or 0xff; the DER length tells where each ends.
pub(crate) fn split_der_certificates(raw: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut certs = Vec::new();
    let mut rest = raw;
    while let Some(&tag) = rest.first() {
        if tag == 0x00 || tag == 0xff {
            if rest.iter().all(|b| *b == tag) {
                break;
            }
            return Err("padding followed by more data".into());
        }
        if tag != 0x30 {
            return Err(format!("expected a DER SEQUENCE, found tag 0x{tag:02x}"));
        }
        let (header, length) = der_length(rest)?;
        let total = header
            .checked_add(length)
            .filter(|t| *t <= rest.len())
            .ok_or_else(|| "certificate is truncated".to_string())?;
        certs.push(rest[..total].to_vec());
        rest = &rest[total..];
    }
    Ok(certs)
}

/// (header length, content length) of the DER element at the start of `der`.
fn der_length(der: &[u8]) -> Result<(usize, usize), String> {
    let first = *der.get(1).ok_or("certificate is truncated")?;
    if first < 0x80 {
        return Ok((2, usize::from(first)));
    }
    let octets = usize::from(first & 0x7f);
    if octets == 0 || octets > 3 {
        return Err("unsupported DER length form".into());
    }
    let bytes = der.get(2..2 + octets).ok_or("certificate is truncated")?;
    let length = bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Ok((2 + octets, length))
}

#[cfg(test)]
#[path = "nv_test.rs"]
mod tests;
