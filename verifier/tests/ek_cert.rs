//! EK certificate chain verification and EK binding, specified against the
//! certificates swtpm_localca wrote into the TPM's NV and deliberately bad ones
//! signed by the same local CA.

mod common;

use attestd_verifier::{parse_pem_bundle, verify_ek_certificate, EkCertError, TpmPublic};
use common::{fixture, pem_fixture, NOW};

fn roots() -> Vec<Vec<u8>> {
    pem_fixture("ca-root.pem")
}

fn intermediates() -> Vec<Vec<u8>> {
    pem_fixture("ca-intermediate.pem")
}

fn ek_public(stem: &str) -> TpmPublic {
    TpmPublic::parse_tpm2b(&fixture(&format!("{stem}.pub.tpm2b"))).expect("EK parses")
}

#[test]
fn verifies_swtpm_rsa_and_ecc_ek_certificates_and_reads_the_tpm_identity() {
    for stem in ["ek-rsa2048", "ek-ecc384"] {
        let certificate = verify_ek_certificate(
            &fixture(&format!("{stem}.cert.der")),
            &intermediates(),
            &roots(),
            NOW,
        )
        .unwrap_or_else(|error| panic!("{stem}: {error}"));
        assert_eq!(certificate.tpm_manufacturer.as_deref(), Some("id:00001014"));
        assert_eq!(certificate.tpm_model.as_deref(), Some("swtpm"));
        assert_eq!(certificate.tpm_version.as_deref(), Some("id:20191023"));
        assert_eq!(certificate.matches(&ek_public(stem)), Ok(()), "{stem}");
    }
}

#[test]
fn certificate_key_equals_the_spki_built_from_the_tpm_public_area() {
    let certificate = verify_ek_certificate(
        &fixture("ek-rsa2048.cert.der"),
        &intermediates(),
        &roots(),
        NOW,
    )
    .expect("verifies");
    assert_eq!(
        ek_public("ek-rsa2048").spki_der().as_deref(),
        Some(certificate.spki_der.as_slice())
    );
    let certificate = verify_ek_certificate(
        &fixture("ek-ecc384.cert.der"),
        &intermediates(),
        &roots(),
        NOW,
    )
    .expect("verifies");
    assert_eq!(
        ek_public("ek-ecc384").spki_der().as_deref(),
        Some(certificate.spki_der.as_slice())
    );
}

#[test]
fn rejects_binding_a_certificate_to_another_tpms_ek() {
    let certificate = verify_ek_certificate(
        &fixture("ek-rsa2048.cert.der"),
        &intermediates(),
        &roots(),
        NOW,
    )
    .expect("verifies");
    // Same template, different key.
    assert_eq!(
        certificate.matches(&ek_public("soft-ek-rsa2048")),
        Err(EkCertError::KeyMismatch)
    );
    assert!(matches!(
        certificate.matches(&ek_public("ek-ecc384")),
        Err(EkCertError::KeyTypeMismatch { .. })
    ));
    let ecc_certificate = verify_ek_certificate(
        &fixture("ek-ecc384.cert.der"),
        &intermediates(),
        &roots(),
        NOW,
    )
    .expect("verifies");
    assert_eq!(
        ecc_certificate.matches(&ek_public("soft-ek-ecc384")),
        Err(EkCertError::KeyMismatch)
    );
    assert!(matches!(
        ecc_certificate.matches(&ek_public("soft-ek-ecc256")),
        Err(EkCertError::KeyTypeMismatch { .. })
    ));
}

#[test]
fn rejects_chain_missing_the_intermediate() {
    assert!(matches!(
        verify_ek_certificate(&fixture("ek-rsa2048.cert.der"), &[], &roots(), NOW),
        Err(EkCertError::IssuerNotFound { .. })
    ));
}

#[test]
fn rejects_chain_that_ends_in_an_untrusted_root() {
    // The root offered as an intermediate is not a trust anchor.
    let mut untrusted = intermediates();
    untrusted.extend(roots());
    assert!(matches!(
        verify_ek_certificate(&fixture("ek-ecc384.cert.der"), &untrusted, &[], NOW),
        Err(EkCertError::IssuerNotFound { .. })
    ));
}

#[test]
fn trusting_the_intermediate_directly_is_enough() {
    assert!(
        verify_ek_certificate(&fixture("ek-ecc384.cert.der"), &[], &intermediates(), NOW).is_ok()
    );
}

#[test]
fn rejects_certificates_before_their_validity_starts() {
    assert!(matches!(
        verify_ek_certificate(
            &fixture("ek-rsa2048.cert.der"),
            &intermediates(),
            &roots(),
            0
        ),
        Err(EkCertError::NotYetValid { .. })
    ));
}

#[test]
fn rejects_certificates_after_they_expire() {
    // notAfter of the swtpm certificates is 9999-12-31T23:59:59Z.
    let after_year_9999 = 253_402_300_800;
    assert!(matches!(
        verify_ek_certificate(
            &fixture("ek-rsa2048.cert.der"),
            &intermediates(),
            &roots(),
            after_year_9999
        ),
        Err(EkCertError::Expired { .. })
    ));
}

#[test]
fn rejects_a_tampered_certificate_signature() {
    let mut tampered = fixture("ek-ecc384.cert.der");
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    assert!(matches!(
        verify_ek_certificate(&tampered, &intermediates(), &roots(), NOW),
        Err(EkCertError::SignatureInvalid { .. })
    ));
}

#[test]
fn rejects_a_tampered_certificate_body() {
    let mut tampered = fixture("ek-rsa2048.cert.der");
    // Inside the subject public key, well within the TBS certificate.
    tampered[300] ^= 0x01;
    assert!(matches!(
        verify_ek_certificate(&tampered, &intermediates(), &roots(), NOW),
        Err(EkCertError::SignatureInvalid { .. })
    ));
}

#[test]
fn rejects_a_leaf_with_an_unknown_critical_extension() {
    assert_eq!(
        verify_ek_certificate(
            &fixture("bad-unknown-critical.cert.der"),
            &intermediates(),
            &roots(),
            NOW
        ),
        Err(EkCertError::UnknownCriticalExtension {
            subject: "CN=attestd test unknown critical".into(),
            oid: "1.3.6.1.4.1.55555.1".into(),
        })
    );
}

#[test]
fn rejects_sha1_signed_certificates() {
    assert!(matches!(
        verify_ek_certificate(&fixture("bad-sha1-signed.cert.der"), &intermediates(), &roots(), NOW),
        Err(EkCertError::UnsupportedSignatureAlgorithm { algorithm, .. })
            if algorithm == "sha1WithRSAEncryption"
    ));
}

#[test]
fn rejects_an_issuer_that_is_not_a_ca() {
    let mut chain = intermediates();
    chain.push(fixture("bad-not-a-ca.cert.der"));
    assert_eq!(
        verify_ek_certificate(
            &fixture("bad-leaf-under-not-a-ca.cert.der"),
            &chain,
            &roots(),
            NOW
        ),
        Err(EkCertError::IssuerNotCa {
            subject: "CN=attestd test not a CA".into()
        })
    );
}

#[test]
fn rejects_an_issuer_without_key_cert_sign() {
    let mut chain = intermediates();
    chain.push(fixture("bad-no-cert-sign.cert.der"));
    assert_eq!(
        verify_ek_certificate(
            &fixture("bad-leaf-under-no-cert-sign.cert.der"),
            &chain,
            &roots(),
            NOW
        ),
        Err(EkCertError::IssuerCannotSignCertificates {
            subject: "CN=attestd test CA without keyCertSign".into()
        })
    );
}

#[test]
fn rejects_a_ca_certificate_presented_as_the_ek_certificate() {
    assert!(matches!(
        verify_ek_certificate(&intermediates()[0], &[], &roots(), NOW),
        Err(EkCertError::LeafIsCa { .. })
    ));
}

#[test]
fn rejects_garbage_and_trailing_bytes_as_unparseable() {
    assert!(matches!(
        verify_ek_certificate(b"not a certificate", &[], &roots(), NOW),
        Err(EkCertError::CertificateParse { .. })
    ));
    let mut trailing = fixture("ek-rsa2048.cert.der");
    trailing.push(0);
    assert!(matches!(
        verify_ek_certificate(&trailing, &intermediates(), &roots(), NOW),
        Err(EkCertError::CertificateParse { reason, .. }) if reason.contains("trailing")
    ));
}

#[test]
fn rejects_oversized_root_lists() {
    let many_roots = vec![roots()[0].clone(); 1025];
    assert!(matches!(
        verify_ek_certificate(
            &fixture("ek-rsa2048.cert.der"),
            &intermediates(),
            &many_roots,
            NOW
        ),
        Err(EkCertError::TooManyCertificates { what: "roots", .. })
    ));
}

#[test]
fn pem_bundle_yields_each_certificate_in_order_and_ignores_other_text() {
    // Starts with '0' (0x30, the DER SEQUENCE tag) to show text is not taken for DER.
    let mut bundle = b"0 - swtpm local CA\n".to_vec();
    bundle.extend(fixture("ca-intermediate.pem"));
    bundle.extend(b"\nsome comment between blocks\n");
    bundle.extend(fixture("ca-root.pem"));
    let certificates = parse_pem_bundle(&bundle).expect("bundle parses");
    assert_eq!(certificates, [intermediates(), roots()].concat());
}

#[test]
fn pem_bundle_accepts_a_single_der_certificate() {
    let der = fixture("ek-ecc384.cert.der");
    assert_eq!(parse_pem_bundle(&der), Ok(vec![der]));
}

#[test]
fn pem_bundle_without_certificates_is_an_error() {
    assert_eq!(parse_pem_bundle(b"hello"), Err(EkCertError::NoCertificates));
    let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        parse_pem_bundle(broken),
        Err(EkCertError::PemInvalid(_))
    ));
}
