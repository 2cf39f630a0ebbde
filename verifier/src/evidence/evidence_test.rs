//! verify_evidence against tampering: every change to signed bytes, every
//! header that must not be trusted, every structural defect is refused.

use attestd_proto::evidence::{labels, EvidenceError, MAX_EVIDENCE_BYTES};
use ciborium::value::Value;
use coset::iana;
use coset::{
    CborSerializable, CoseSign1, Label, RegisteredLabelWithPrivate, TaggedCborSerializable,
};
use p256::pkcs8::EncodePublicKey;
use proptest::prelude::*;

use super::test_support::{claims, cose_key, policy, SessionKey, NONCE};
use super::verify_evidence;

/// Decodes evidence, lets `edit` change it, re-encodes without re-signing.
fn edited(evidence: &[u8], edit: impl FnOnce(&mut CoseSign1)) -> Vec<u8> {
    let mut sign1 = CoseSign1::from_tagged_slice(evidence).expect("evidence decodes");
    edit(&mut sign1);
    sign1.to_tagged_vec().expect("re-encodes")
}

/// Makes the protected header re-encode from its parsed form.
fn edit_protected(sign1: &mut CoseSign1, edit: impl FnOnce(&mut coset::Header)) {
    sign1.protected.original_data = None;
    edit(&mut sign1.protected.header);
}

#[test]
fn accepts_untampered_evidence_and_returns_its_claims() {
    let key = SessionKey::generate();
    let verified = verify_evidence(&key.sign(&claims()), &policy()).expect("accepted");
    assert_eq!(verified.claims, claims());
}

#[test]
fn returns_the_session_key_as_standard_p256_spki_der() {
    let key = SessionKey::generate();
    let verified = verify_evidence(&key.sign(&claims()), &policy()).expect("accepted");
    // An independent encoder (RustCrypto's) must produce the same DER.
    let expected = p256::PublicKey::from_sec1_bytes(&key.public_point())
        .expect("valid point")
        .to_public_key_der()
        .expect("encodes");
    assert_eq!(verified.session_key_spki, expected.as_bytes());
}

#[test]
fn a_flipped_payload_byte_is_a_bad_signature() {
    let key = SessionKey::generate();
    let mut evidence = key.sign(&claims());
    let at = evidence
        .windows(NONCE.len())
        .position(|window| window == NONCE)
        .expect("nonce is in the payload");
    evidence[at] ^= 0x01;
    assert_eq!(
        verify_evidence(&evidence, &policy()),
        Err(EvidenceError::SignatureInvalid)
    );
}

#[test]
fn every_single_bit_flip_anywhere_is_refused() {
    let key = SessionKey::generate();
    let evidence = key.sign(&claims());
    for at in 0..evidence.len() {
        for bit in [0x01, 0x80] {
            let mut tampered = evidence.clone();
            tampered[at] ^= bit;
            assert!(
                verify_evidence(&tampered, &policy()).is_err(),
                "flipping bit {bit:#04x} of byte {at} was accepted"
            );
        }
    }
}

#[test]
fn an_added_protected_header_parameter_is_a_bad_signature() {
    let key = SessionKey::generate();
    let evidence = edited(&key.sign(&claims()), |sign1| {
        edit_protected(sign1, |header| {
            header.rest.push((Label::Int(99), Value::Bool(true)))
        });
    });
    assert_eq!(
        verify_evidence(&evidence, &policy()),
        Err(EvidenceError::SignatureInvalid)
    );
}

#[test]
fn a_session_key_swapped_for_another_is_a_bad_signature() {
    let key = SessionKey::generate();
    let other = SessionKey::generate();
    let evidence = edited(&key.sign(&claims()), |sign1| {
        edit_protected(sign1, |header| {
            header.rest = vec![(
                Label::Int(labels::SESSION_KEY),
                cose_key(&other.public_point()),
            )];
        });
    });
    assert_eq!(
        verify_evidence(&evidence, &policy()),
        Err(EvidenceError::SignatureInvalid)
    );
}

#[test]
fn a_session_key_off_the_curve_is_a_bad_signature() {
    let key = SessionKey::generate();
    let off_curve: Vec<u8> = std::iter::once(0x04).chain([0x01; 64]).collect();
    let mut protected = key.protected_header();
    protected.rest = vec![(Label::Int(labels::SESSION_KEY), cose_key(&off_curve))];
    let evidence = key.sign_with_header(protected, &claims());
    assert_eq!(
        verify_evidence(&evidence, &policy()),
        Err(EvidenceError::SignatureInvalid)
    );
}

#[test]
fn a_flipped_signature_byte_is_a_bad_signature() {
    let key = SessionKey::generate();
    let mut evidence = key.sign(&claims());
    let last = evidence.len() - 1;
    evidence[last] ^= 0x01;
    assert_eq!(
        verify_evidence(&evidence, &policy()),
        Err(EvidenceError::SignatureInvalid)
    );
}

#[test]
fn a_replaced_payload_is_a_bad_signature() {
    let key = SessionKey::generate();
    let mut forged = claims();
    forged.selectors.push("unix:uid:0".to_owned());
    let evidence = edited(&key.sign(&claims()), |sign1| {
        sign1.payload = Some(forged.to_cbor().expect("encodes"));
    });
    assert_eq!(
        verify_evidence(&evidence, &policy()),
        Err(EvidenceError::SignatureInvalid)
    );
}

#[test]
fn an_unprotected_header_parameter_does_not_affect_the_verdict() {
    // The unprotected bucket is unsigned: harmless parameters there are
    // ignored, but nothing from there is believed.
    let key = SessionKey::generate();
    let evidence = edited(&key.sign(&claims()), |sign1| {
        sign1.unprotected.key_id = b"kid".to_vec()
    });
    assert!(verify_evidence(&evidence, &policy()).is_ok());
}

#[test]
fn a_correctly_signed_evidence_with_another_algorithm_is_refused() {
    let key = SessionKey::generate();
    let mut protected = key.protected_header();
    protected.alg = Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES384));
    assert_eq!(
        verify_evidence(&key.sign_with_header(protected, &claims()), &policy()),
        Err(EvidenceError::UnsupportedAlgorithm {
            found: "-35".to_owned()
        })
    );
}

#[test]
fn a_correctly_signed_evidence_with_an_unknown_critical_header_is_refused() {
    let key = SessionKey::generate();
    let mut protected = key.protected_header();
    protected.rest.push((Label::Int(-70000), Value::Bool(true)));
    protected.crit = vec![RegisteredLabelWithPrivate::PrivateUse(-70000)];
    assert_eq!(
        verify_evidence(&key.sign_with_header(protected, &claims()), &policy()),
        Err(EvidenceError::UnknownCriticalHeader {
            label: "-70000".to_owned()
        })
    );
}

#[test]
fn a_correctly_signed_evidence_marking_only_understood_headers_critical_is_accepted() {
    let key = SessionKey::generate();
    let mut protected = key.protected_header();
    protected.crit = vec![RegisteredLabelWithPrivate::PrivateUse(labels::SESSION_KEY)];
    assert!(verify_evidence(&key.sign_with_header(protected, &claims()), &policy()).is_ok());
}

#[test]
fn correctly_signed_but_malformed_claims_are_refused_as_such() {
    let key = SessionKey::generate();
    let mut truncated_claims = claims().to_cbor().expect("encodes");
    // Cut the claims short: signed garbage is still garbage.
    truncated_claims.truncate(truncated_claims.len() - 1);
    let evidence = key.sign_payload(truncated_claims);
    assert!(matches!(
        verify_evidence(&evidence, &policy()),
        Err(EvidenceError::Malformed(_))
    ));
}

#[test]
fn every_truncation_of_the_evidence_is_refused() {
    let key = SessionKey::generate();
    let evidence = key.sign(&claims());
    for len in 0..evidence.len() {
        assert!(
            verify_evidence(&evidence[..len], &policy()).is_err(),
            "prefix of {len} bytes"
        );
    }
}

#[test]
fn oversized_evidence_is_refused_before_parsing() {
    let key = SessionKey::generate();
    let mut evidence = key.sign(&claims());
    evidence.resize(MAX_EVIDENCE_BYTES + 1, 0);
    assert_eq!(
        verify_evidence(&evidence, &policy()),
        Err(EvidenceError::TooLarge {
            len: MAX_EVIDENCE_BYTES + 1,
            max: MAX_EVIDENCE_BYTES
        })
    );
}

#[test]
fn untagged_evidence_is_refused() {
    let key = SessionKey::generate();
    let sign1 = CoseSign1::from_tagged_slice(&key.sign(&claims())).expect("decodes");
    let untagged = sign1.to_vec().expect("encodes");
    assert!(matches!(
        verify_evidence(&untagged, &policy()),
        Err(EvidenceError::Malformed(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_evidence_never_panics_and_never_verifies_with_other_claims(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..5)
    ) {
        let key = SessionKey::generate();
        let mut evidence = key.sign(&claims());
        for (at, byte, kind) in edits {
            let len = evidence.len().max(1);
            match kind {
                0 => if let Some(slot) = evidence.get_mut(at % len) { *slot ^= byte.max(1) },
                1 => evidence.insert(at % (evidence.len() + 1), byte),
                _ => evidence.truncate(at % len),
            }
        }
        if let Ok(verified) = verify_evidence(&evidence, &policy()) {
            // Only the unsigned parts (tag, array head, unprotected header)
            // can change without breaking the signature; the claims cannot.
            prop_assert_eq!(verified.claims, claims());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_verifier(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = verify_evidence(&bytes, &policy());
    }
}
