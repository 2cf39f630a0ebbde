//! Unit tests for certificate parsing limits and TCG identity extraction.

use super::tcg::tpm_identity;
use super::*;

const ROOT_PEM: &[u8] = include_bytes!("../../tests/fixtures/ca-root.pem");
const EK_CERT: &[u8] = include_bytes!("../../tests/fixtures/ek-rsa2048.cert.der");

#[test]
fn certificate_without_tcg_subject_alt_name_has_no_tpm_identity() {
    let root_der = parse_pem_bundle(ROOT_PEM).expect("root PEM parses");
    let root = parse_certificate(&root_der[0], "root").expect("root parses");
    let identity = tpm_identity(&root).expect("no SAN is fine");
    assert_eq!(
        (identity.manufacturer, identity.model, identity.version),
        (None, None, None)
    );
}

#[test]
fn tpm_identity_comes_from_the_directory_name_san() {
    let leaf = parse_certificate(EK_CERT, "leaf").expect("EK certificate parses");
    let identity = tpm_identity(&leaf).expect("SAN parses");
    assert_eq!(identity.manufacturer.as_deref(), Some("id:00001014"));
    assert_eq!(identity.model.as_deref(), Some("swtpm"));
}

#[test]
fn refuses_certificates_larger_than_the_limit_before_parsing() {
    let huge = vec![0x30; MAX_CERTIFICATE_LEN + 1];
    assert!(matches!(
        parse_certificate(&huge, "leaf"),
        Err(EkCertError::CertificateTooLarge { size, max: MAX_CERTIFICATE_LEN, .. })
            if size == MAX_CERTIFICATE_LEN + 1
    ));
}

#[test]
fn refuses_a_non_der_outer_tag_that_x509_parser_tolerates() {
    let mut relabelled = EK_CERT.to_vec();
    relabelled[0] = 0x10; // SEQUENCE without the constructed bit
    assert!(matches!(
        parse_certificate(&relabelled, "leaf"),
        Err(EkCertError::CertificateParse { reason, .. }) if reason.contains("canonical")
    ));
}
