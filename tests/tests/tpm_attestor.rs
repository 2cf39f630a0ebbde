//! The TPM attestor against real swtpm processes, checked by attestd-verifier:
//! quotes, AK properties, EK certificates, software MakeCredential followed by a
//! real ActivateCredential, and failure behaviour.

use std::path::Path;
use std::process::Command;

use attestd_attestors::tpm::{
    AkAlgorithm, EkAlgorithm, PcrSelection, PcrValues, Tpm, TpmConfig, TpmError,
};
use attestd_tests::swtpm::{Swtpm, SwtpmOptions, TestCa};
use attestd_verifier::ak::check_ak_attributes;
use attestd_verifier::credential::make_credential;
use attestd_verifier::ek_cert::{parse_pem_bundle, verify_ek_certificate};
use attestd_verifier::quote::{verify_quote, QuoteError};
use attestd_verifier::tpm2::{HashAlg, TpmPublic};

const NONCE: [u8; 32] = [0x5a; 32];

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn open(swtpm: &Swtpm, state: &Path, ek: EkAlgorithm, ak: AkAlgorithm) -> Tpm {
    Tpm::open(TpmConfig {
        tcti: swtpm.tcti().parse().unwrap(),
        state_dir: state.to_owned(),
        ek_algorithm: ek,
        ak_algorithm: ak,
        ..TpmConfig::default()
    })
    .await
    .unwrap()
}

fn verifier_pcrs(values: &PcrValues) -> attestd_verifier::tpm2::PcrValues {
    let mut out = attestd_verifier::tpm2::PcrValues::new();
    for bank in &values.banks {
        let hash = HashAlg::from_tpm(bank.bank.alg_id()).unwrap();
        for (index, value) in &bank.values {
            out.insert(hash, *index, value.clone());
        }
    }
    out
}

fn selection(text: &str) -> PcrSelection {
    text.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn our_verifier_accepts_a_quote_and_rejects_each_kind_of_tampering() {
    let swtpm = Swtpm::start().unwrap();
    let state = tempfile::tempdir().unwrap();
    let tpm = open(
        &swtpm,
        state.path(),
        EkAlgorithm::Rsa2048,
        AkAlgorithm::EccP256,
    )
    .await;
    let quote = tpm
        .quote(NONCE.to_vec(), selection("sha256:0,1,2,3,4,5,6,7"))
        .await
        .unwrap();
    let ak = TpmPublic::parse(&tpm.ak().public).unwrap();
    let pcrs = verifier_pcrs(&quote.pcrs);

    verify_quote(&ak, &quote.attest, &quote.signature, &NONCE, &pcrs).unwrap();

    let wrong_nonce = verify_quote(&ak, &quote.attest, &quote.signature, &[0x5b; 32], &pcrs);
    assert!(
        matches!(wrong_nonce, Err(QuoteError::NonceMismatch)),
        "{wrong_nonce:?}"
    );

    let mut tampered = quote.attest.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x80;
    let bad_attest = verify_quote(&ak, &tampered, &quote.signature, &NONCE, &pcrs);
    assert!(
        matches!(bad_attest, Err(QuoteError::SignatureInvalid)),
        "{bad_attest:?}"
    );

    let mut wrong_pcr = attestd_verifier::tpm2::PcrValues::new();
    for (bank, index, value) in pcrs.iter() {
        let mut value = value.to_vec();
        if index == 7 {
            value[0] ^= 0xff;
        }
        wrong_pcr.insert(bank, index, value);
    }
    let bad_pcr = verify_quote(&ak, &quote.attest, &quote.signature, &NONCE, &wrong_pcr);
    assert!(
        matches!(bad_pcr, Err(QuoteError::PcrDigestMismatch)),
        "{bad_pcr:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn real_aks_pass_the_attribute_check_and_an_unrestricted_one_fails() {
    let swtpm = Swtpm::start().unwrap();
    let state = tempfile::tempdir().unwrap();
    for ak_algorithm in [AkAlgorithm::EccP256, AkAlgorithm::Rsa2048] {
        let tpm = open(&swtpm, state.path(), EkAlgorithm::Rsa2048, ak_algorithm).await;
        let public = tpm.ak().public.clone();
        check_ak_attributes(&TpmPublic::parse(&public).unwrap()).unwrap();

        // TPMT_PUBLIC: type (2), nameAlg (2), then objectAttributes (4, big-endian);
        // bit 16 is `restricted`.
        let mut unrestricted = public.clone();
        unrestricted[5] &= !0x01;
        let unrestricted = TpmPublic::parse(&unrestricted).unwrap();
        let error = check_ak_attributes(&unrestricted).unwrap_err();
        assert!(error.to_string().contains("restricted"), "{error}");

        // The same key without `restricted` could sign a forged TPMS_ATTEST, so even
        // a genuine quote is refused when checked against it.
        let quote = tpm
            .quote(NONCE.to_vec(), selection("sha256:0"))
            .await
            .unwrap();
        let refused = verify_quote(
            &unrestricted,
            &quote.attest,
            &quote.signature,
            &NONCE,
            &verifier_pcrs(&quote.pcrs),
        );
        assert!(
            matches!(refused, Err(QuoteError::AkNotRestrictedSigningKey)),
            "{refused:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn quote_covers_every_requested_bank_and_refuses_inactive_ones() {
    let swtpm = Swtpm::start_with(SwtpmOptions {
        pcr_banks: vec!["sha1".into(), "sha256".into()],
        ..SwtpmOptions::default()
    })
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let tpm = open(
        &swtpm,
        state.path(),
        EkAlgorithm::Rsa2048,
        AkAlgorithm::EccP256,
    )
    .await;
    let quote = tpm
        .quote(
            NONCE.to_vec(),
            selection("sha1:0,7+sha256:0,1,2,3,4,5,6,7,8,9,10,23"),
        )
        .await
        .unwrap();
    assert_eq!(
        quote.selection.to_string(),
        "sha1:0,7+sha256:0,1,2,3,4,5,6,7,8,9,10,23"
    );
    let ak = TpmPublic::parse(&tpm.ak().public).unwrap();
    verify_quote(
        &ak,
        &quote.attest,
        &quote.signature,
        &NONCE,
        &verifier_pcrs(&quote.pcrs),
    )
    .unwrap();

    let error = tpm
        .quote(NONCE.to_vec(), selection("sha384:0"))
        .await
        .unwrap_err();
    assert!(matches!(error, TpmError::BankNotActive { .. }), "{error}");
    assert!(error.to_string().contains("sha384"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn qualifying_data_above_64_bytes_is_refused() {
    let swtpm = Swtpm::start().unwrap();
    let state = tempfile::tempdir().unwrap();
    let tpm = open(
        &swtpm,
        state.path(),
        EkAlgorithm::Rsa2048,
        AkAlgorithm::EccP256,
    )
    .await;
    tpm.quote(vec![1; 64], selection("sha256:0")).await.unwrap();
    let error = tpm
        .quote(vec![1; 65], selection("sha256:0"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("at most 64"), "{error}");
}

async fn make_and_activate(ek_algorithm: EkAlgorithm) {
    let swtpm = Swtpm::start().unwrap();
    let state = tempfile::tempdir().unwrap();
    let tpm = open(&swtpm, state.path(), ek_algorithm, AkAlgorithm::EccP256).await;
    let ek = tpm.ek(ek_algorithm).await.unwrap();
    let ek_public = TpmPublic::parse(&ek.public).unwrap();
    let secret = *b"issuer challenge: 32 bytes long!";

    let credential =
        make_credential(&ek_public, &tpm.ak().name, &secret, &mut rand_core::OsRng).unwrap();
    let recovered = tpm
        .activate_credential(credential.credential_blob, credential.encrypted_secret)
        .await
        .unwrap();
    assert_eq!(recovered.as_slice(), &secret[..]);

    // The same secret bound to another object's name must not activate with our AK.
    let mut other_name = tpm.ak().name.clone();
    other_name[5] ^= 0x01;
    let foreign = make_credential(&ek_public, &other_name, &secret, &mut rand_core::OsRng).unwrap();
    let error = tpm
        .activate_credential(foreign.credential_blob, foreign.encrypted_secret)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("integrity check failed"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn software_make_credential_activates_with_an_rsa_2048_ek() {
    make_and_activate(EkAlgorithm::Rsa2048).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn software_make_credential_activates_with_an_ecc_p256_ek() {
    make_and_activate(EkAlgorithm::EccP256).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn software_make_credential_activates_with_an_ecc_p384_ek() {
    make_and_activate(EkAlgorithm::EccP384).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ek_certificates_verify_against_the_test_ca_and_not_another() {
    let swtpm = Swtpm::start().unwrap();
    let stranger = TestCa::new().unwrap();
    let state = tempfile::tempdir().unwrap();
    let tpm = open(
        &swtpm,
        state.path(),
        EkAlgorithm::Rsa2048,
        AkAlgorithm::EccP256,
    )
    .await;
    let roots = parse_pem_bundle(&std::fs::read(swtpm.ca().root_cert_pem()).unwrap()).unwrap();
    let intermediates =
        parse_pem_bundle(&std::fs::read(swtpm.ca().intermediate_cert_pem()).unwrap()).unwrap();
    let other_roots = parse_pem_bundle(&std::fs::read(stranger.root_cert_pem()).unwrap()).unwrap();
    let other_intermediates =
        parse_pem_bundle(&std::fs::read(stranger.intermediate_cert_pem()).unwrap()).unwrap();

    // swtpm_setup certifies an RSA-2048 and an ECC P-384 EK.
    for algorithm in [EkAlgorithm::Rsa2048, EkAlgorithm::EccP384] {
        let ek = tpm.ek(algorithm).await.unwrap();
        let cert = ek.certificate.expect("swtpm_setup wrote an EK certificate");
        let verified = verify_ek_certificate(&cert, &intermediates, &roots, now())
            .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        verified
            .matches(&TpmPublic::parse(&ek.public).unwrap())
            .unwrap_or_else(|e| panic!("{algorithm}: certificate is for another key: {e}"));

        let refused = verify_ek_certificate(&cert, &other_intermediates, &other_roots, now());
        assert!(refused.is_err(), "{algorithm}: accepted by an unrelated CA");

        let truncated =
            verify_ek_certificate(&cert[..cert.len() / 2], &intermediates, &roots, now());
        assert!(
            truncated.is_err(),
            "{algorithm}: truncated certificate accepted"
        );
    }
    // swtpm_setup makes no P-256 certificate; its absence is reported, not an error.
    assert!(tpm
        .ek(EkAlgorithm::EccP256)
        .await
        .unwrap()
        .certificate
        .is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_swtpm_gives_a_readable_error_and_a_restarted_one_is_reconnected() {
    let mut swtpm = Swtpm::start().unwrap();
    let state = tempfile::tempdir().unwrap();
    let tpm = open(
        &swtpm,
        state.path(),
        EkAlgorithm::Rsa2048,
        AkAlgorithm::EccP256,
    )
    .await;
    tpm.quote(NONCE.to_vec(), selection("sha256:0"))
        .await
        .unwrap();

    swtpm.kill();
    let error = tpm
        .quote(NONCE.to_vec(), selection("sha256:0"))
        .await
        .unwrap_err();
    assert!(error.is_connection_failure(), "{error}");
    assert!(
        error.to_string().contains("TPM connection (TCTI)"),
        "{error}"
    );

    swtpm.restart().unwrap();
    let quote = tpm
        .quote(NONCE.to_vec(), selection("sha256:0"))
        .await
        .unwrap();
    let ak = TpmPublic::parse(&tpm.ak().public).unwrap();
    verify_quote(
        &ak,
        &quote.attest,
        &quote.signature,
        &NONCE,
        &verifier_pcrs(&quote.pcrs),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_stays_loaded_in_the_tpm_between_requests() {
    let swtpm = Swtpm::start().unwrap();
    let state = tempfile::tempdir().unwrap();
    let tpm = open(
        &swtpm,
        state.path(),
        EkAlgorithm::Rsa2048,
        AkAlgorithm::EccP256,
    )
    .await;
    let ek_public = TpmPublic::parse(&tpm.ek(EkAlgorithm::Rsa2048).await.unwrap().public).unwrap();
    // More operations than swtpm has object slots: a single leak would fail here.
    for _ in 0..5 {
        tpm.quote(NONCE.to_vec(), selection("sha256:0,1"))
            .await
            .unwrap();
        let credential = make_credential(
            &ek_public,
            &tpm.ak().name,
            b"0123456789abcdef",
            &mut rand_core::OsRng,
        )
        .unwrap();
        tpm.activate_credential(credential.credential_blob, credential.encrypted_secret)
            .await
            .unwrap();
    }
    for capability in ["handles-transient", "handles-loaded-session"] {
        let output = Command::new("tpm2_getcap")
            .env("TPM2TOOLS_TCTI", swtpm.tcti())
            .arg(capability)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).trim().is_empty(),
            "{capability} left behind: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}
