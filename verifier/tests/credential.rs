//! Software MakeCredential, specified by round trips through an independent
//! software ActivateCredential, which is itself checked against credentials
//! made by `tpm2_makecredential` (tpm2-tools, OpenSSL) for the same EK keys.

mod common;

use attestd_verifier::{make_credential, CredentialError, HashAlg, TpmPublic};
use common::activate::{activate, split_tpm2_tools_credential, EkPrivate};
use common::{ak, fixture, fixture_text};
use rand_core::OsRng;

/// EK-shaped keys whose private halves the fixtures hold, by fixture stem.
const SOFT_EKS: [&str; 3] = ["soft-ek-rsa2048", "soft-ek-ecc256", "soft-ek-ecc384"];

fn soft_ek(stem: &str) -> (TpmPublic, EkPrivate) {
    let public = TpmPublic::parse_tpm2b(&fixture(&format!("{stem}.pub.tpm2b"))).expect("parses");
    let private = if stem.contains("rsa") {
        EkPrivate::rsa_from_pkcs8(&fixture(&format!("{stem}.key.pkcs8.der")))
    } else {
        EkPrivate::ecc_from_hex(&fixture_text(&format!("{stem}.key.hex")))
    };
    (public, private)
}

fn object_name() -> Vec<u8> {
    fixture("credential-object.name")
}

fn secret() -> Vec<u8> {
    fixture("credential-secret.bin")
}

#[test]
fn software_activation_recovers_tpm2_tools_credentials() {
    // Establishes that `activate` implements the TPM's side correctly.
    for stem in SOFT_EKS {
        let (ek, private) = soft_ek(stem);
        let (blob, encrypted_secret) =
            split_tpm2_tools_credential(&fixture(&format!("credential-{stem}.out")));
        assert_eq!(
            activate(&ek, &private, &object_name(), &blob, &encrypted_secret),
            Ok(secret()),
            "{stem}"
        );
    }
}

#[test]
fn made_credentials_activate_to_the_secret_for_rsa_p256_and_p384_eks() {
    for stem in SOFT_EKS {
        let (ek, private) = soft_ek(stem);
        let made = make_credential(&ek, &object_name(), &secret(), &mut OsRng).expect(stem);
        assert_eq!(
            activate(
                &ek,
                &private,
                &object_name(),
                &made.credential_blob,
                &made.encrypted_secret
            ),
            Ok(secret()),
            "{stem}"
        );
    }
}

#[test]
fn made_credential_has_the_layout_tpm2_tools_produces() {
    for stem in SOFT_EKS {
        let (ek, _) = soft_ek(stem);
        let made = make_credential(&ek, &object_name(), &secret(), &mut OsRng).expect(stem);
        let (tools_blob, tools_secret) =
            split_tpm2_tools_credential(&fixture(&format!("credential-{stem}.out")));
        assert_eq!(made.credential_blob.len(), tools_blob.len(), "{stem} blob");
        assert_eq!(
            made.credential_blob[..2],
            tools_blob[..2],
            "{stem} HMAC size"
        );
        assert_eq!(
            made.encrypted_secret.len(),
            tools_secret.len(),
            "{stem} secret"
        );
        let file = made.to_tpm2_tools_format().expect("fits");
        assert_eq!(
            split_tpm2_tools_credential(&file),
            (made.credential_blob, made.encrypted_secret)
        );
    }
}

#[test]
fn credential_for_another_object_name_fails_activation() {
    let (ek, private) = soft_ek("soft-ek-ecc384");
    let made = make_credential(&ek, &object_name(), &secret(), &mut OsRng).expect("made");
    let other_name = ak("rsa2048-rsassa").name();
    assert_eq!(
        activate(
            &ek,
            &private,
            &other_name,
            &made.credential_blob,
            &made.encrypted_secret
        ),
        Err("integrity HMAC mismatch".to_string())
    );
}

#[test]
fn credential_for_another_ek_fails_activation() {
    // Made for swtpm's RSA EK; the soft EK has the same template, another key.
    let swtpm_ek = TpmPublic::parse_tpm2b(&fixture("ek-rsa2048.pub.tpm2b")).expect("parses");
    let made = make_credential(&swtpm_ek, &object_name(), &secret(), &mut OsRng).expect("made");
    let (soft_public, soft_private) = soft_ek("soft-ek-rsa2048");
    let result = activate(
        &soft_public,
        &soft_private,
        &object_name(),
        &made.credential_blob,
        &made.encrypted_secret,
    );
    assert!(
        result
            .as_ref()
            .is_err_and(|error| error.starts_with("OAEP decryption failed")),
        "{result:?}"
    );
}

#[test]
fn each_credential_uses_a_fresh_seed() {
    let (ek, _) = soft_ek("soft-ek-ecc256");
    let first = make_credential(&ek, &object_name(), &secret(), &mut OsRng).expect("made");
    let second = make_credential(&ek, &object_name(), &secret(), &mut OsRng).expect("made");
    assert_ne!(first.encrypted_secret, second.encrypted_secret);
    assert_ne!(first.credential_blob, second.credential_blob);
}

#[test]
fn works_for_the_real_swtpm_eks() {
    let rsa = TpmPublic::parse_tpm2b(&fixture("ek-rsa2048.pub.tpm2b")).expect("parses");
    let made = make_credential(&rsa, &object_name(), &secret(), &mut OsRng).expect("RSA EK");
    assert_eq!(made.encrypted_secret.len(), 256);
    // TPM2B HMAC (2 + 32) then AES-128-CFB of TPM2B secret (2 + 32).
    assert_eq!(made.credential_blob.len(), 68);
    let ecc = TpmPublic::parse_tpm2b(&fixture("ek-ecc384.pub.tpm2b")).expect("parses");
    let made = make_credential(&ecc, &object_name(), &secret(), &mut OsRng).expect("ECC EK");
    // TPMS_ECC_POINT of P-384 and a SHA-384 HMAC.
    assert_eq!(made.encrypted_secret.len(), 2 + 48 + 2 + 48);
    assert_eq!(made.credential_blob.len(), 2 + 48 + 2 + 32);
}

#[test]
fn rejects_secret_longer_than_the_ek_name_digest() {
    let (ek, _) = soft_ek("soft-ek-rsa2048");
    assert_eq!(
        make_credential(&ek, &object_name(), &[0; 33], &mut OsRng),
        Err(CredentialError::SecretTooLong { len: 33, max: 32 })
    );
    assert_eq!(
        make_credential(&ek, &object_name(), &[], &mut OsRng),
        Err(CredentialError::EmptySecret)
    );
}

#[test]
fn rejects_a_signing_key_as_the_ek() {
    assert_eq!(
        make_credential(&ak("ecc256-ecdsa"), &object_name(), &secret(), &mut OsRng),
        Err(CredentialError::EkNotRestrictedDecryptionKey)
    );
}

#[test]
fn rejects_object_names_that_are_not_digest_names() {
    let (ek, _) = soft_ek("soft-ek-ecc256");
    for name in [
        vec![],
        vec![0x40, 0x00, 0x00, 0x01],
        [&HashAlg::Sha256.to_tpm().to_be_bytes()[..], &[0; 20]].concat(),
    ] {
        assert_eq!(
            make_credential(&ek, &name, &secret(), &mut OsRng),
            Err(CredentialError::InvalidObjectName { len: name.len() })
        );
    }
}

#[test]
fn rejects_an_ek_point_that_is_not_on_the_curve() {
    let (ek, _) = soft_ek("soft-ek-ecc256");
    let mut raw = ek.raw.clone();
    let last = raw.len() - 1;
    raw[last] ^= 0x01;
    let off_curve = TpmPublic::parse(&raw).expect("still parses");
    assert!(matches!(
        make_credential(&off_curve, &object_name(), &secret(), &mut OsRng),
        Err(CredentialError::InvalidEkKey(_))
    ));
}
