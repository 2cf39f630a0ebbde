//! Unit tests for KDFa and KDFe framing.

use super::*;

#[test]
fn kdfa_output_has_requested_length_and_spans_blocks() {
    let out = kdfa(
        HashAlg::Sha256,
        b"seed",
        b"STORAGE",
        b"name",
        b"",
        512 + 128,
    );
    assert_eq!(out.len(), 80);
    // The first block is the same whatever the total length, except that the
    // length is itself hashed in: so a different `bits` gives a new stream.
    let shorter = kdfa(HashAlg::Sha256, b"seed", b"STORAGE", b"name", b"", 256);
    assert_ne!(&out[..32], &shorter[..]);
}

#[test]
fn kdfa_first_block_is_hmac_of_counter_label_nul_contexts_and_bits() {
    let out = kdfa(HashAlg::Sha256, b"key", b"INTEGRITY", b"u", b"v", 256);
    let mut message = Vec::new();
    message.extend_from_slice(&1u32.to_be_bytes());
    message.extend_from_slice(b"INTEGRITY\0uv");
    message.extend_from_slice(&256u32.to_be_bytes());
    let expected = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"key"),
        &message,
    );
    assert_eq!(&out[..], expected.as_ref());
}

#[test]
fn kdfe_first_block_is_hash_of_counter_z_label_nul_and_party_infos() {
    let out = kdfe(HashAlg::Sha384, b"Z", b"IDENTITY", b"U", b"V", 384);
    let mut message = Vec::new();
    message.extend_from_slice(&1u32.to_be_bytes());
    message.extend_from_slice(b"ZIDENTITY\0UV");
    assert_eq!(&out[..], HashAlg::Sha384.digest(&message).as_slice());
}

#[test]
fn labels_separate_derived_keys() {
    let storage = kdfa(HashAlg::Sha256, b"seed", b"STORAGE", b"n", b"", 128);
    let integrity = kdfa(HashAlg::Sha256, b"seed", b"INTEGRITY", b"n", b"", 128);
    assert_ne!(storage, integrity);
}
