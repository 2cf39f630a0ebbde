//! Unit tests for TPMT_PUBLIC parsing against swtpm output and hand-made edge cases.

use super::*;
use crate::tpm2::constants::alg;

const EK_RSA: &[u8] = include_bytes!("../../tests/fixtures/ek-rsa2048.pub.tpm2b");
const EK_ECC384: &[u8] = include_bytes!("../../tests/fixtures/ek-ecc384.pub.tpm2b");
const AK_ECC256: &[u8] = include_bytes!("../../tests/fixtures/ak-ecc256-ecdsa.pub.tpm2b");
const AK_ECC256_NAME: &[u8] = include_bytes!("../../tests/fixtures/ak-ecc256-ecdsa.name");
const AK_RSASSA: &[u8] = include_bytes!("../../tests/fixtures/ak-rsa2048-rsassa.pub.tpm2b");
const AK_RSASSA_NAME: &[u8] = include_bytes!("../../tests/fixtures/ak-rsa2048-rsassa.name");

/// TCG EK Credential Profile policy for the low-range (L-1) templates.
const POLICY_A_SHA256: &str = "837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa";
/// PolicyB SHA-384, used by the high-range H-3 template.
const POLICY_B_SHA384: &str =
    "b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn parses_swtpm_rsa_ek_as_the_tcg_l1_template() {
    let ek = TpmPublic::parse_tpm2b(EK_RSA).expect("swtpm RSA EK parses");
    assert_eq!(ek.object_type, ObjectType::Rsa);
    assert_eq!(ek.name_alg, HashAlg::Sha256);
    assert_eq!(ek.attributes.bits(), 0x0003_00b2);
    assert_eq!(hex(&ek.auth_policy), POLICY_A_SHA256);
    let PublicParameters::Rsa(params) = &ek.parameters else {
        panic!("expected RSA parameters");
    };
    assert_eq!(
        params.symmetric,
        Some(SymmetricDef {
            algorithm: alg::AES,
            key_bits: 128,
            mode: alg::CFB
        })
    );
    assert_eq!(params.scheme, AsymScheme::Null);
    assert_eq!(params.key_bits, 2048);
    let PublicKey::Rsa { modulus, exponent } = &ek.key else {
        panic!("expected an RSA key");
    };
    assert_eq!(modulus.len(), 256);
    assert_eq!(*exponent, 65_537, "exponent 0 means the default 65537");
    assert_eq!(
        ek.raw.len() + 2,
        EK_RSA.len(),
        "raw excludes the TPM2B size"
    );
}

#[test]
fn parses_swtpm_ecc_ek_as_the_tcg_h3_p384_template() {
    let ek = TpmPublic::parse_tpm2b(EK_ECC384).expect("swtpm ECC EK parses");
    assert_eq!(ek.name_alg, HashAlg::Sha384);
    assert_eq!(ek.attributes.bits(), 0x0003_00f2);
    assert_eq!(hex(&ek.auth_policy), POLICY_B_SHA384);
    let PublicParameters::Ecc(params) = &ek.parameters else {
        panic!("expected ECC parameters");
    };
    assert_eq!(params.curve, EccCurve::NistP384);
    assert_eq!(params.kdf, None);
    assert_eq!(
        params.symmetric.map(|symmetric| symmetric.key_bits),
        Some(256)
    );
    let PublicKey::Ecc { x, y, .. } = &ek.key else {
        panic!("expected an ECC key");
    };
    assert_eq!((x.len(), y.len()), (48, 48));
}

#[test]
fn name_equals_the_name_the_tpm_computed() {
    let ecc = TpmPublic::parse_tpm2b(AK_ECC256).expect("AK parses");
    assert_eq!(ecc.name(), AK_ECC256_NAME);
    let rsa = TpmPublic::parse_tpm2b(AK_RSASSA).expect("AK parses");
    assert_eq!(rsa.name(), AK_RSASSA_NAME);
}

#[test]
fn ak_attributes_and_scheme_are_decoded() {
    let ak = TpmPublic::parse_tpm2b(AK_ECC256).expect("AK parses");
    assert!(ak.attributes.restricted() && ak.attributes.sign());
    assert!(ak.attributes.fixed_tpm() && ak.attributes.fixed_parent());
    assert!(!ak.attributes.decrypt());
    assert_eq!(ak.parameters.scheme(), AsymScheme::Ecdsa(HashAlg::Sha256));
    assert_eq!(ak.parameters.symmetric(), None);
}

#[test]
fn spki_der_of_a_p256_key_is_the_standard_91_byte_encoding() {
    let ak = TpmPublic::parse_tpm2b(AK_ECC256).expect("AK parses");
    let spki = ak.spki_der().expect("P-256 has an SPKI form");
    assert_eq!(spki.len(), 91);
    assert_eq!(
        &spki[..27],
        &[
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04
        ]
    );
}

#[test]
fn rejects_tpm2b_whose_size_disagrees_with_the_payload() {
    let mut short = EK_RSA.to_vec();
    short.pop();
    assert!(matches!(
        TpmPublic::parse_tpm2b(&short),
        Err(ParseError::Truncated { .. })
    ));
    let mut long = EK_RSA.to_vec();
    long.push(0);
    assert!(matches!(
        TpmPublic::parse_tpm2b(&long),
        Err(ParseError::TrailingBytes {
            structure: "TPM2B_PUBLIC",
            ..
        })
    ));
}

#[test]
fn rejects_rsa_modulus_shorter_than_key_bits() {
    let ek = TpmPublic::parse_tpm2b(EK_RSA).expect("parses");
    let mut raw = ek.raw.clone();
    // keyBits sits 2 (size) + 256 (modulus) + 4 (exponent) + 2 bytes from the end.
    let key_bits_at = raw.len() - 264;
    raw[key_bits_at..key_bits_at + 2].copy_from_slice(&3072u16.to_be_bytes());
    assert_eq!(
        TpmPublic::parse(&raw),
        Err(ParseError::LengthMismatch {
            field: "TPM2B_PUBLIC_KEY_RSA",
            expected: 384,
            actual: 256
        })
    );
}

#[test]
fn rejects_a_template_without_an_ecc_point() {
    let ek = TpmPublic::parse_tpm2b(EK_ECC384).expect("parses");
    let mut raw = ek.raw[..ek.raw.len() - 100].to_vec();
    raw.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(
        TpmPublic::parse(&raw),
        Err(ParseError::InvalidValue {
            field: "TPMS_ECC_POINT.x",
            value: 0
        })
    );
}

#[test]
fn rejects_keyedhash_objects() {
    let ak = TpmPublic::parse_tpm2b(AK_ECC256).expect("parses");
    let mut raw = ak.raw.clone();
    raw[..2].copy_from_slice(&alg::KEYEDHASH.to_be_bytes());
    assert_eq!(
        TpmPublic::parse(&raw),
        Err(ParseError::UnsupportedAlgorithm {
            field: "TPMT_PUBLIC.type",
            alg: alg::KEYEDHASH
        })
    );
}

#[test]
fn rejects_auth_policy_not_sized_like_the_name_digest() {
    // type ECC, nameAlg SHA-256, attributes, authPolicy of 3 bytes.
    let raw = [0x00, 0x23, 0x00, 0x0b, 0, 0, 0, 0, 0x00, 0x03, 1, 2, 3];
    assert_eq!(
        TpmPublic::parse(&raw),
        Err(ParseError::LengthMismatch {
            field: "TPMT_PUBLIC.authPolicy",
            expected: 32,
            actual: 3
        })
    );
}
