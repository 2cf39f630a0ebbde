//! AK attribute policy, specified against swtpm AKs and EKs.

mod common;

use attestd_verifier::{check_ak_attributes, AkError, TpmPublic};
use common::{ak, fixture, AK_FIXTURES};

/// The fixture AK with its objectAttributes replaced.
fn with_attributes(stem: &str, attributes: u32) -> TpmPublic {
    let mut raw = ak(stem).raw;
    raw[4..8].copy_from_slice(&attributes.to_be_bytes());
    TpmPublic::parse(&raw).expect("still parses")
}

#[test]
fn accepts_every_ak_tpm2_createak_made() {
    for stem in AK_FIXTURES {
        assert_eq!(check_ak_attributes(&ak(stem)), Ok(()), "{stem}");
    }
}

#[test]
fn rejects_the_ek_naming_sign_missing_and_decrypt_forbidden() {
    let ek = TpmPublic::parse_tpm2b(&fixture("ek-rsa2048.pub.tpm2b")).expect("parses");
    assert_eq!(
        check_ak_attributes(&ek),
        Err(AkError::AttributesRejected {
            missing: vec!["sign"],
            forbidden: vec!["decrypt"],
        })
    );
}

#[test]
fn rejects_a_key_that_could_leave_the_tpm() {
    // restricted | sign | sensitiveDataOrigin | userWithAuth, no fixedTPM/fixedParent
    let duplicable = with_attributes("ecc256-ecdsa", 0x0005_0060);
    let error = check_ak_attributes(&duplicable).expect_err("must be rejected");
    assert_eq!(
        error,
        AkError::AttributesRejected {
            missing: vec!["fixedTPM", "fixedParent"],
            forbidden: vec![],
        }
    );
    assert_eq!(
        error.to_string(),
        "AK attributes rejected: missing fixedTPM, fixedParent"
    );
}

#[test]
fn rejects_an_imported_key() {
    // Everything but sensitiveDataOrigin: the key was not generated in the TPM.
    let imported = with_attributes("rsa2048-rsassa", 0x0005_0052);
    assert_eq!(
        check_ak_attributes(&imported),
        Err(AkError::AttributesRejected {
            missing: vec!["sensitiveDataOrigin"],
            forbidden: vec![],
        })
    );
}

#[test]
fn rejects_an_unrestricted_signing_key() {
    let unrestricted = with_attributes("ecc384-ecdsa", 0x0004_0072);
    assert_eq!(
        check_ak_attributes(&unrestricted),
        Err(AkError::AttributesRejected {
            missing: vec!["restricted"],
            forbidden: vec![],
        })
    );
}
