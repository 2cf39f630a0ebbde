//! Unit tests for TPMT_SIGNATURE parsing against swtpm signatures.

use super::*;

const ECDSA: &[u8] = include_bytes!("../../tests/fixtures/quote-ecc256-ecdsa.sig");
const ECDSA_P384: &[u8] = include_bytes!("../../tests/fixtures/quote-ecc384-ecdsa.sig");
const RSASSA: &[u8] = include_bytes!("../../tests/fixtures/quote-rsa2048-rsassa.sig");
const RSAPSS: &[u8] = include_bytes!("../../tests/fixtures/quote-rsa2048-rsapss.sig");

#[test]
fn parses_each_scheme_swtpm_produced() {
    let TpmSignature::Ecdsa { hash, r, s } = TpmSignature::parse(ECDSA).expect("parses") else {
        panic!("expected ECDSA");
    };
    assert_eq!((hash, r.len(), s.len()), (HashAlg::Sha256, 32, 32));
    let p384 = TpmSignature::parse(ECDSA_P384).expect("parses");
    assert_eq!(p384.hash(), HashAlg::Sha384);
    assert!(matches!(
        TpmSignature::parse(RSASSA),
        Ok(TpmSignature::RsaSsa { hash: HashAlg::Sha256, sig }) if sig.len() == 256
    ));
    assert!(matches!(
        TpmSignature::parse(RSAPSS),
        Ok(TpmSignature::RsaPss { hash: HashAlg::Sha256, sig }) if sig.len() == 256
    ));
}

#[test]
fn display_names_scheme_and_hash() {
    let signature = TpmSignature::parse(RSAPSS).expect("parses");
    assert_eq!(signature.to_string(), "RSASSA-PSS/sha256");
}

#[test]
fn rejects_hmac_and_other_schemes() {
    let mut hmac = ECDSA.to_vec();
    hmac[..2].copy_from_slice(&alg::HMAC.to_be_bytes());
    assert_eq!(
        TpmSignature::parse(&hmac),
        Err(ParseError::UnsupportedAlgorithm {
            field: "TPMT_SIGNATURE.sigAlg",
            alg: alg::HMAC
        })
    );
}

#[test]
fn rejects_signature_with_trailing_bytes() {
    let mut long = RSASSA.to_vec();
    long.extend_from_slice(&[0, 0]);
    assert!(matches!(
        TpmSignature::parse(&long),
        Err(ParseError::TrailingBytes { .. })
    ));
}
