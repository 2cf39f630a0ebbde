//! Property tests: every parser and verifier returns (Ok or Err) on arbitrary
//! bytes and on real swtpm structures with random mutations, never panics.

mod common;

use attestd_verifier::{
    parse_pem_bundle, tpm2::parse_pcr_selection_list, verify_ek_certificate, verify_quote, Attest,
    TpmPublic, TpmSignature,
};
use common::{ak, fixture, nonce, pcr_values, quote_attest, quote_signature, NOW};
use proptest::prelude::*;

/// A byte-level edit applied to a valid input.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        mask: u8,
    },
    Truncate {
        len: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Remove {
        at: usize,
        count: usize,
    },
    /// Overwrite two bytes: hits TPM2B sizes and algorithm ids.
    SetU16 {
        at: usize,
        value: u16,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..8).prop_map(|(at, count)| Mutation::Remove { at, count }),
        (any::<usize>(), any::<u16>()).prop_map(|(at, value)| Mutation::SetU16 { at, value }),
    ]
}

fn apply(original: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for mutation in mutations {
        let len = bytes.len().max(1);
        match mutation {
            Mutation::Flip { at, mask } => {
                if let Some(byte) = bytes.get_mut(at % len) {
                    *byte ^= mask;
                }
            }
            Mutation::Truncate { len: keep } => bytes.truncate(keep % len),
            Mutation::Insert {
                at,
                bytes: inserted,
            } => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, inserted.iter().copied());
            }
            Mutation::Remove { at, count } => {
                let at = at % len;
                let end = (at + count).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Mutation::SetU16 { at, value } => {
                let at = at % len;
                for (offset, byte) in value.to_be_bytes().into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + offset) {
                        *slot = byte;
                    }
                }
            }
        }
    }
    bytes
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4)
}

fn public_fixtures() -> Vec<Vec<u8>> {
    [
        "ak-ecc256-ecdsa",
        "ak-ecc384-ecdsa",
        "ak-rsa2048-rsassa",
        "ak-rsa2048-rsapss",
        "ek-rsa2048",
        "ek-ecc384",
    ]
    .iter()
    .map(|stem| fixture(&format!("{stem}.pub.tpm2b")))
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tpm_parsers_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = TpmPublic::parse(&bytes);
        let _ = TpmPublic::parse_tpm2b(&bytes);
        let _ = Attest::parse(&bytes);
        let _ = TpmSignature::parse(&bytes);
        let _ = parse_pcr_selection_list(&bytes);
    }

    #[test]
    fn public_parser_never_panics_on_mutated_swtpm_keys(index in 0usize..6, edits in mutations()) {
        let fixtures = public_fixtures();
        let mutated = apply(&fixtures[index % fixtures.len()], &edits);
        if let Ok(public) = TpmPublic::parse_tpm2b(&mutated) {
            // Whatever parses must also be usable without panicking.
            let _ = public.name();
            let _ = public.spki_der();
            let _ = attestd_verifier::check_ak_attributes(&public);
        }
        if let Some(inner) = mutated.get(2..) {
            let _ = TpmPublic::parse(inner);
        }
    }

    #[test]
    fn attest_parser_never_panics_on_mutated_swtpm_quotes(edits in mutations()) {
        let _ = Attest::parse(&apply(&quote_attest("ecc256-ecdsa"), &edits));
    }

    #[test]
    fn signature_parser_never_panics_on_mutated_swtpm_signatures(index in 0usize..4, edits in mutations()) {
        let stem = common::AK_FIXTURES[index];
        let _ = TpmSignature::parse(&apply(&quote_signature(stem), &edits));
    }

    #[test]
    fn quote_verification_rejects_any_change_to_the_signed_attest(
        index in 0usize..4,
        attest_edits in mutations(),
    ) {
        let stem = common::AK_FIXTURES[index];
        let attest = apply(&quote_attest(stem), &attest_edits);
        let result = verify_quote(&ak(stem), &attest, &quote_signature(stem), &nonce(), &pcr_values());
        prop_assert!(attest == quote_attest(stem) || result.is_err());
    }

    #[test]
    fn quote_verification_never_panics_on_mutated_signatures(
        index in 0usize..4,
        signature_edits in mutations(),
    ) {
        let stem = common::AK_FIXTURES[index];
        let signature = apply(&quote_signature(stem), &signature_edits);
        let _ = verify_quote(&ak(stem), &quote_attest(stem), &signature, &nonce(), &pcr_values());
    }
}

proptest! {
    // Certificate checks are slower (RSA-3072 issuers); fewer cases suffice.
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn certificate_verification_never_panics_on_mutated_certificates(
        ecc in any::<bool>(),
        edits in mutations(),
    ) {
        let leaf = fixture(if ecc { "ek-ecc384.cert.der" } else { "ek-rsa2048.cert.der" });
        let mutated = apply(&leaf, &edits);
        let roots = common::pem_fixture("ca-root.pem");
        let intermediates = common::pem_fixture("ca-intermediate.pem");
        if let Ok(certificate) = verify_ek_certificate(&mutated, &intermediates, &roots, NOW) {
            let _ = certificate.matches(&ak("ecc256-ecdsa"));
        }
        let _ = parse_pem_bundle(&mutated);
    }
}

#[test]
fn every_single_bit_flip_in_an_ek_certificate_is_rejected() {
    let roots = common::pem_fixture("ca-root.pem");
    let intermediates = common::pem_fixture("ca-intermediate.pem");
    for stem in ["ek-rsa2048", "ek-ecc384"] {
        let leaf = fixture(&format!("{stem}.cert.der"));
        for at in 0..leaf.len() {
            for bit in 0..8 {
                let mut flipped = leaf.clone();
                flipped[at] ^= 1 << bit;
                assert!(
                    verify_ek_certificate(&flipped, &intermediates, &roots, NOW).is_err(),
                    "{stem}: flipping bit {bit} of byte {at} was accepted"
                );
            }
        }
    }
}
