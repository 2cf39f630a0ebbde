//! The parsers face bytes from other processes: whatever they get, they answer
//! with a value or an error, never a panic.

use proptest::prelude::*;

use super::claims_test::full_claims;
use super::{parse_evidence, sign_evidence, EvidenceClaims};

fn valid_evidence() -> Vec<u8> {
    let point: Vec<u8> = std::iter::once(0x04).chain(1..=64).collect();
    sign_evidence(&full_claims(), &point, |_| Ok(vec![0x5a; 64])).expect("signs")
}

fn valid_claims() -> Vec<u8> {
    full_claims().to_cbor().expect("encodes")
}

/// One edit of a byte string: the shapes of corruption a parser meets in practice.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bits: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=u8::MAX).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let len = bytes.len().max(1);
        match *mutation {
            Mutation::Flip { at, bits } => {
                if let Some(byte) = bytes.get_mut(at % len) {
                    *byte ^= bits;
                }
            }
            Mutation::Set { at, byte } => {
                if let Some(slot) = bytes.get_mut(at % len) {
                    *slot = byte;
                }
            }
            Mutation::Insert { at, byte } => bytes.insert(at % (bytes.len() + 1), byte),
            Mutation::Remove { at } => {
                if !bytes.is_empty() {
                    bytes.remove(at % len);
                }
            }
            Mutation::Truncate { at } => bytes.truncate(at % len),
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn parse_evidence_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_evidence(&bytes);
    }

    #[test]
    fn claims_decoding_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = EvidenceClaims::from_cbor(&bytes);
    }

    #[test]
    fn parse_evidence_never_panics_on_mutated_evidence(mutations in proptest::collection::vec(mutation(), 1..6)) {
        let _ = parse_evidence(&apply(valid_evidence(), &mutations));
    }

    #[test]
    fn claims_decoding_never_panics_on_mutated_claims(mutations in proptest::collection::vec(mutation(), 1..6)) {
        let _ = EvidenceClaims::from_cbor(&apply(valid_claims(), &mutations));
    }

    #[test]
    fn a_single_flipped_bit_in_the_claims_never_decodes_to_the_same_claims(at in any::<usize>(), bit in 0u8..8) {
        let original = valid_claims();
        let mutated = apply(original.clone(), &[Mutation::Flip { at, bits: 1 << bit }]);
        if let Ok(decoded) = EvidenceClaims::from_cbor(&mutated) {
            // A bit flip may still decode (inside a string, say), but never to
            // the claims it started from: one encoding per claims set.
            prop_assert_ne!(decoded, EvidenceClaims::from_cbor(&original).expect("decodes"));
        }
    }
}
