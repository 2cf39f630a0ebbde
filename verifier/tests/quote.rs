//! Quote verification, specified against real swtpm quotes and against
//! validly signed but deliberately wrong hand-built ones.

mod common;

use attestd_verifier::tpm2::constants::alg;
use attestd_verifier::{
    pcr_composite_digest, verify_quote, HashAlg, PcrValues, QuoteError, TpmPublic,
};
use common::tpm_builder::{AttestBuilder, SoftAk, AK_ATTRIBUTES, ST_ATTEST_CERTIFY};
use common::{ak, nonce, pcr_values, quote_attest, quote_signature, AK_FIXTURES};

fn verify_fixture(stem: &str, expected_nonce: &[u8], pcrs: &PcrValues) -> Result<(), QuoteError> {
    verify_quote(
        &ak(stem),
        &quote_attest(stem),
        &quote_signature(stem),
        expected_nonce,
        pcrs,
    )
    .map(|_| ())
}

#[test]
fn accepts_real_quotes_for_every_ak_scheme() {
    for stem in AK_FIXTURES {
        let verified = verify_quote(
            &ak(stem),
            &quote_attest(stem),
            &quote_signature(stem),
            &nonce(),
            &pcr_values(),
        )
        .unwrap_or_else(|error| panic!("{stem}: {error}"));
        assert_eq!(verified.attest.extra_data, nonce());
        assert_eq!(verified.pcr_values, pcr_values(), "{stem}");
        let expected_hash = if stem == "ecc384-ecdsa" {
            HashAlg::Sha384
        } else {
            HashAlg::Sha256
        };
        assert_eq!(verified.hash, expected_hash, "{stem}");
    }
}

#[test]
fn rejects_quote_with_wrong_nonce() {
    let mut wrong = nonce();
    wrong[0] ^= 1;
    assert_eq!(
        verify_fixture("ecc256-ecdsa", &wrong, &pcr_values()),
        Err(QuoteError::NonceMismatch)
    );
    assert_eq!(
        verify_fixture("rsa2048-rsassa", &nonce()[..31], &pcr_values()),
        Err(QuoteError::NonceMismatch)
    );
}

#[test]
fn rejects_quote_when_a_claimed_pcr_value_differs() {
    let mut pcrs = pcr_values();
    pcrs.insert(HashAlg::Sha256, 16, vec![0; 32]);
    assert_eq!(
        verify_fixture("ecc256-ecdsa", &nonce(), &pcrs),
        Err(QuoteError::PcrDigestMismatch)
    );
}

#[test]
fn rejects_quote_when_a_selected_pcr_is_missing() {
    let pcrs: PcrValues = pcr_values()
        .iter()
        .filter(|(bank, index, _)| !(*bank == HashAlg::Sha1 && *index == 16))
        .map(|(bank, index, value)| (bank, index, value.to_vec()))
        .collect();
    assert_eq!(
        verify_fixture("rsa2048-rsapss", &nonce(), &pcrs),
        Err(QuoteError::MissingPcr {
            bank: HashAlg::Sha1,
            index: 16
        })
    );
}

#[test]
fn rejects_pcr_value_of_the_wrong_length() {
    let mut pcrs = pcr_values();
    pcrs.insert(HashAlg::Sha1, 0, vec![0; 32]);
    assert_eq!(
        verify_fixture("ecc256-ecdsa", &nonce(), &pcrs),
        Err(QuoteError::PcrValueLength {
            bank: HashAlg::Sha1,
            index: 0,
            expected: 20,
            actual: 32
        })
    );
}

#[test]
fn verified_quote_drops_pcr_values_the_tpm_did_not_quote() {
    let mut pcrs = pcr_values();
    pcrs.insert(HashAlg::Sha256, 23, vec![0xee; 32]);
    let verified = verify_quote(
        &ak("ecc256-ecdsa"),
        &quote_attest("ecc256-ecdsa"),
        &quote_signature("ecc256-ecdsa"),
        &nonce(),
        &pcrs,
    )
    .expect("quote verifies");
    assert_eq!(verified.pcr_values.get(HashAlg::Sha256, 23), None);
    assert_eq!(verified.pcr_values.len(), 5);
}

#[test]
fn rejects_quote_signed_by_a_different_ak() {
    let other_p256_key = SoftAk::new(AK_ATTRIBUTES);
    assert_eq!(
        verify_quote(
            &other_p256_key.public,
            &quote_attest("ecc256-ecdsa"),
            &quote_signature("ecc256-ecdsa"),
            &nonce(),
            &pcr_values(),
        ),
        Err(QuoteError::SignatureInvalid)
    );
    let other_rsa_key = with_null_scheme(&ak("rsa2048-rsapss"));
    assert_eq!(
        verify_quote(
            &other_rsa_key,
            &quote_attest("rsa2048-rsassa"),
            &quote_signature("rsa2048-rsassa"),
            &nonce(),
            &pcr_values(),
        ),
        Err(QuoteError::SignatureInvalid)
    );
}

#[test]
fn rejects_every_single_bit_flip_in_the_signed_attest() {
    let attest = quote_attest("ecc256-ecdsa");
    for byte in 0..attest.len() {
        let mut tampered = attest.clone();
        tampered[byte] ^= 0x01;
        assert_eq!(
            verify_quote(
                &ak("ecc256-ecdsa"),
                &tampered,
                &quote_signature("ecc256-ecdsa"),
                &nonce(),
                &pcr_values(),
            ),
            Err(QuoteError::SignatureInvalid),
            "flip in byte {byte} was not caught"
        );
    }
}

#[test]
fn rejects_signature_in_a_scheme_the_ak_does_not_declare() {
    // The RSASSA AK's quote presented with a signature claiming RSAPSS.
    let mut signature = quote_signature("rsa2048-rsassa");
    signature[..2].copy_from_slice(&alg::RSAPSS.to_be_bytes());
    assert!(matches!(
        verify_quote(
            &ak("rsa2048-rsassa"),
            &quote_attest("rsa2048-rsassa"),
            &signature,
            &nonce(),
            &pcr_values(),
        ),
        Err(QuoteError::SchemeMismatch { .. })
    ));
}

#[test]
fn rejects_ecdsa_signature_for_an_rsa_ak() {
    // With no declared scheme, the key type alone must rule the signature out.
    assert!(matches!(
        verify_quote(
            &with_null_scheme(&ak("rsa2048-rsassa")),
            &quote_attest("ecc256-ecdsa"),
            &quote_signature("ecc256-ecdsa"),
            &nonce(),
            &pcr_values(),
        ),
        Err(QuoteError::UnsupportedScheme { .. })
    ));
}

/// An RSA AK's public area with its scheme set to TPM_ALG_NULL, as a key
/// created without a scheme would have.
fn with_null_scheme(rsa_ak: &TpmPublic) -> TpmPublic {
    let raw = &rsa_ak.raw;
    // type, nameAlg, attributes, authPolicy (empty), symmetric NULL, scheme.
    let scheme_at = 2 + 2 + 4 + 2 + 2;
    assert!(matches!(raw[scheme_at..scheme_at + 2], [0x00, 0x14 | 0x16]));
    let mut rebuilt = raw[..scheme_at].to_vec();
    rebuilt.extend_from_slice(&[0x00, 0x10]);
    rebuilt.extend_from_slice(&raw[scheme_at + 4..]);
    TpmPublic::parse(&rebuilt).expect("rebuilt public area parses")
}

#[test]
fn rejects_quote_from_a_key_that_is_not_restricted() {
    let unrestricted = SoftAk::new(AK_ATTRIBUTES & !(1 << 16));
    let attest = AttestBuilder::quote(&nonce(), vec![], HashAlg::Sha256.digest(b"")).build();
    assert_eq!(
        verify_quote(
            &unrestricted.public,
            &attest,
            &unrestricted.sign(&attest),
            &nonce(),
            &PcrValues::new()
        ),
        Err(QuoteError::AkNotRestrictedSigningKey)
    );
}

#[test]
fn accepts_a_correct_hand_built_quote() {
    // Guards the builder: the rejections below are for the defect alone.
    let ak = SoftAk::new(AK_ATTRIBUTES);
    let pcrs = pcr_values();
    let selection = vec![(alg::SHA256, vec![0x03, 0x00, 0x01])];
    let digest = HashAlg::Sha256.digest(
        &[
            pcrs.get(HashAlg::Sha256, 0).unwrap(),
            pcrs.get(HashAlg::Sha256, 1).unwrap(),
            pcrs.get(HashAlg::Sha256, 16).unwrap(),
        ]
        .concat(),
    );
    let attest = AttestBuilder::quote(&nonce(), selection, digest).build();
    let verified = verify_quote(&ak.public, &attest, &ak.sign(&attest), &nonce(), &pcrs)
        .expect("hand-built quote verifies");
    assert_eq!(verified.pcr_values.len(), 3);
}

#[test]
fn rejects_signed_attest_without_tpm_generated_magic() {
    let ak = SoftAk::new(AK_ATTRIBUTES);
    let mut builder = AttestBuilder::quote(&nonce(), vec![], HashAlg::Sha256.digest(b""));
    builder.magic = 0x1234_5678;
    let attest = builder.build();
    assert_eq!(
        verify_quote(
            &ak.public,
            &attest,
            &ak.sign(&attest),
            &nonce(),
            &PcrValues::new()
        ),
        Err(QuoteError::BadMagic(0x1234_5678))
    );
}

#[test]
fn rejects_signed_attestation_that_is_not_a_quote() {
    let ak = SoftAk::new(AK_ATTRIBUTES);
    let mut builder = AttestBuilder::quote(&nonce(), vec![], HashAlg::Sha256.digest(b""));
    builder.attest_type = ST_ATTEST_CERTIFY;
    let attest = builder.build();
    assert_eq!(
        verify_quote(
            &ak.public,
            &attest,
            &ak.sign(&attest),
            &nonce(),
            &PcrValues::new()
        ),
        Err(QuoteError::NotAQuote(ST_ATTEST_CERTIFY))
    );
}

#[test]
fn pcr_digest_uses_the_signature_hash_not_the_bank_hash() {
    // A SHA-1 bank quoted with a SHA-256 signature: digest must be SHA-256.
    let ak = SoftAk::new(AK_ATTRIBUTES);
    let pcrs = pcr_values();
    let sha1_digest = HashAlg::Sha1.digest(pcrs.get(HashAlg::Sha1, 16).unwrap());
    let attest = AttestBuilder::quote(
        &nonce(),
        vec![(alg::SHA1, vec![0x00, 0x00, 0x01])],
        sha1_digest,
    )
    .build();
    assert_eq!(
        verify_quote(&ak.public, &attest, &ak.sign(&attest), &nonce(), &pcrs),
        Err(QuoteError::PcrDigestMismatch)
    );
}

#[test]
fn rejects_expected_nonce_longer_than_64_bytes() {
    assert_eq!(
        verify_fixture("ecc256-ecdsa", &[0; 65], &pcr_values()),
        Err(QuoteError::QualifyingDataTooLong { len: 65, max: 64 })
    );
}

#[test]
fn rejects_malformed_signature_bytes() {
    assert!(matches!(
        verify_quote(
            &ak("ecc256-ecdsa"),
            &quote_attest("ecc256-ecdsa"),
            &[0x00, 0x18, 0x00],
            &nonce(),
            &pcr_values()
        ),
        Err(QuoteError::Malformed(_))
    ));
}

#[test]
fn composite_digest_matches_what_swtpm_signed() {
    let attest = attestd_verifier::Attest::parse(&quote_attest("ecc384-ecdsa")).expect("parses");
    let quote = attest.quote.expect("quote body");
    let digest = pcr_composite_digest(HashAlg::Sha384, &quote.pcr_select, &pcr_values())
        .expect("all PCRs present");
    assert_eq!(digest, quote.pcr_digest);
}

#[test]
fn rejects_oversized_attest_before_checking_the_signature() {
    let huge = vec![0u8; 4097];
    assert!(matches!(
        verify_quote(
            &ak("ecc256-ecdsa"),
            &huge,
            &quote_signature("ecc256-ecdsa"),
            &nonce(),
            &pcr_values()
        ),
        Err(QuoteError::Malformed(
            attestd_verifier::ParseError::TooLarge { .. }
        ))
    ));
}
