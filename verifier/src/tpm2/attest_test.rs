//! Unit tests for TPMS_ATTEST parsing against swtpm quotes.

use super::*;
use crate::tpm2::constants::TPM_GENERATED_VALUE;

const QUOTE: &[u8] = include_bytes!("../../tests/fixtures/quote-ecc256-ecdsa.attest");
const NONCE_HEX: &str = include_str!("../../tests/fixtures/nonce.hex");

#[test]
fn parses_a_real_quote() {
    let attest = Attest::parse(QUOTE).expect("swtpm quote parses");
    assert_eq!(attest.magic, TPM_GENERATED_VALUE);
    assert_eq!(attest.attest_type, st::ATTEST_QUOTE);
    let nonce: String = attest
        .extra_data
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(nonce, NONCE_HEX.trim());
    assert_eq!(attest.qualified_signer.len(), 34);
    let quote = attest.quote.expect("quote body");
    assert_eq!(
        quote.pcr_select,
        vec![
            PcrSelection {
                hash: HashAlg::Sha1,
                pcrs: vec![0, 16]
            },
            PcrSelection {
                hash: HashAlg::Sha256,
                pcrs: vec![0, 1, 16]
            },
        ]
    );
    assert_eq!(quote.pcr_digest.len(), 32);
    assert!(attest.other_attested.is_empty());
}

#[test]
fn every_truncation_of_a_quote_is_an_error() {
    for len in 0..QUOTE.len() {
        assert!(
            Attest::parse(&QUOTE[..len]).is_err(),
            "prefix of {len} bytes was accepted"
        );
    }
}

#[test]
fn rejects_trailing_bytes_after_a_quote() {
    let mut long = QUOTE.to_vec();
    long.push(0);
    assert_eq!(
        Attest::parse(&long),
        Err(ParseError::TrailingBytes {
            structure: "TPMS_ATTEST",
            count: 1
        })
    );
}

#[test]
fn non_quote_attestations_keep_their_body_opaque() {
    let mut certify = QUOTE.to_vec();
    certify[4..6].copy_from_slice(&st::ATTEST_CERTIFY.to_be_bytes());
    let attest = Attest::parse(&certify).expect("header parses");
    assert_eq!(attest.quote, None);
    assert!(!attest.other_attested.is_empty());
}

#[test]
fn rejects_clock_safe_flag_other_than_yes_or_no() {
    let mut bad = QUOTE.to_vec();
    // magic(4) type(2) signer(2+34) extraData(2+32) clock(8) reset(4) restart(4)
    let safe_at = 4 + 2 + 36 + 34 + 16;
    bad[safe_at] = 2;
    assert_eq!(
        Attest::parse(&bad),
        Err(ParseError::InvalidValue {
            field: "TPMS_CLOCK_INFO.safe",
            value: 2
        })
    );
}
