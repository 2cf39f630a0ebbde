//! The TPM key derivation functions (TPM 2.0 Part 1 §11.4.10): KDFa, the
//! HMAC-based SP 800-108 counter-mode KDF, and KDFe, the SP 800-56A hash KDF.

use zeroize::Zeroizing;

use crate::tpm2::HashAlg;

/// KDFa(hash, key, label, contextU, contextV, bits). `label` is given without
/// its terminating NUL, which the TPM always hashes.
pub(crate) fn kdfa(
    hash: HashAlg,
    key: &[u8],
    label: &[u8],
    context_u: &[u8],
    context_v: &[u8],
    bits: u32,
) -> Zeroizing<Vec<u8>> {
    let hmac_key = ring::hmac::Key::new(hash.ring_hmac(), key);
    expand(hash, bits, |counter| {
        let mut context = ring::hmac::Context::with_key(&hmac_key);
        context.update(&counter.to_be_bytes());
        context.update(label);
        context.update(&[0]);
        context.update(context_u);
        context.update(context_v);
        context.update(&bits.to_be_bytes());
        context.sign().as_ref().to_vec()
    })
}

/// KDFe(hash, Z, label, partyUInfo, partyVInfo, bits), `label` without NUL.
pub(crate) fn kdfe(
    hash: HashAlg,
    shared_secret: &[u8],
    label: &[u8],
    party_u_info: &[u8],
    party_v_info: &[u8],
    bits: u32,
) -> Zeroizing<Vec<u8>> {
    expand(hash, bits, |counter| {
        let mut context = ring::digest::Context::new(hash.ring_algorithm());
        context.update(&counter.to_be_bytes());
        context.update(shared_secret);
        context.update(label);
        context.update(&[0]);
        context.update(party_u_info);
        context.update(party_v_info);
        context.finish().as_ref().to_vec()
    })
}

/// Concatenates block(1), block(2), … and keeps the leftmost `bits`; callers
/// only ask for whole bytes, so no bit masking is needed.
fn expand(hash: HashAlg, bits: u32, mut block: impl FnMut(u32) -> Vec<u8>) -> Zeroizing<Vec<u8>> {
    let wanted = usize::try_from(bits.div_ceil(8)).unwrap_or(0);
    let mut output = Zeroizing::new(Vec::with_capacity(wanted + hash.digest_len()));
    let mut counter: u32 = 1;
    while output.len() < wanted {
        let next = Zeroizing::new(block(counter));
        output.extend_from_slice(&next);
        counter = counter.wrapping_add(1);
    }
    output.truncate(wanted);
    output
}

#[cfg(test)]
#[path = "kdf_test.rs"]
mod tests;
