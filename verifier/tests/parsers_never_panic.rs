//! Property tests: every parser and verifier returns (Ok or Err) on arbitrary
//! bytes and on real swtpm structures with random mutations, never panics.

mod common;

use attestd_verifier::eventlog::{device_path_text, replay};
use attestd_verifier::{
    parse_event_log, parse_ima_log, parse_pem_bundle, tpm2::parse_pcr_selection_list,
    verify_ek_certificate, verify_event_log, verify_ima_log, verify_quote, Attest, HashAlg,
    PcrValues, TpmPublic, TpmSignature,
};
use common::{ak, fixture, nonce, pcr_values, quote_attest, quote_signature, NOW};
use proptest::prelude::*;

/// A byte-level edit applied to a valid input.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        mask: u8,
    },
    Truncate {
        len: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Remove {
        at: usize,
        count: usize,
    },
    /// Overwrite two bytes: hits TPM2B sizes and algorithm ids.
    SetU16 {
        at: usize,
        value: u16,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..8).prop_map(|(at, count)| Mutation::Remove { at, count }),
        (any::<usize>(), any::<u16>()).prop_map(|(at, value)| Mutation::SetU16 { at, value }),
    ]
}

fn apply(original: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for mutation in mutations {
        let len = bytes.len().max(1);
        match mutation {
            Mutation::Flip { at, mask } => {
                if let Some(byte) = bytes.get_mut(at % len) {
                    *byte ^= mask;
                }
            }
            Mutation::Truncate { len: keep } => bytes.truncate(keep % len),
            Mutation::Insert {
                at,
                bytes: inserted,
            } => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, inserted.iter().copied());
            }
            Mutation::Remove { at, count } => {
                let at = at % len;
                let end = (at + count).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Mutation::SetU16 { at, value } => {
                let at = at % len;
                for (offset, byte) in value.to_be_bytes().into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + offset) {
                        *slot = byte;
                    }
                }
            }
        }
    }
    bytes
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4)
}

fn public_fixtures() -> Vec<Vec<u8>> {
    [
        "ak-ecc256-ecdsa",
        "ak-ecc384-ecdsa",
        "ak-rsa2048-rsassa",
        "ak-rsa2048-rsapss",
        "ek-rsa2048",
        "ek-ecc384",
    ]
    .iter()
    .map(|stem| fixture(&format!("{stem}.pub.tpm2b")))
    .collect()
}

fn le32(value: usize) -> [u8; 4] {
    u32::try_from(value).unwrap().to_le_bytes()
}

fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A SHA-1 + SHA-256 crypto-agile boot log exercising every claim path:
/// StartupLocality, the SecureBoot variable, a boot application with a
/// device path, GRUB's and systemd's command lines.
fn sample_event_log() -> Vec<u8> {
    let mut spec_id = b"Spec ID Event03\0".to_vec();
    spec_id.extend_from_slice(&[
        0, 0, 0, 0, 0, 2, 0, 2, 2, 0, 0, 0, 4, 0, 20, 0, 11, 0, 32, 0, 0,
    ]);
    let mut log = [0u8; 4].to_vec();
    log.extend_from_slice(&3u32.to_le_bytes());
    log.extend_from_slice(&[0; 20]);
    log.extend_from_slice(&le32(spec_id.len()));
    log.extend_from_slice(&spec_id);
    let mut push = |pcr: u32, event_type: u32, data: &[u8], hashed: &[u8]| {
        log.extend_from_slice(&pcr.to_le_bytes());
        log.extend_from_slice(&event_type.to_le_bytes());
        log.extend_from_slice(&2u32.to_le_bytes());
        log.extend_from_slice(&0x0004u16.to_le_bytes());
        log.extend_from_slice(&HashAlg::Sha1.digest(hashed));
        log.extend_from_slice(&0x000bu16.to_le_bytes());
        log.extend_from_slice(&HashAlg::Sha256.digest(hashed));
        log.extend_from_slice(&le32(data.len()));
        log.extend_from_slice(data);
    };
    push(0, 3, b"StartupLocality\0\x03", b"");
    let name = utf16("SecureBoot");
    let mut variable = [
        0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b,
        0x8c,
    ]
    .to_vec();
    variable.extend_from_slice(&10u64.to_le_bytes());
    variable.extend_from_slice(&1u64.to_le_bytes());
    variable.extend_from_slice(&name);
    variable.push(1);
    push(7, 0x8000_0001, &variable, &variable);
    let mut file = utf16("\\EFI\\BOOT\\BOOTX64.EFI");
    file.extend_from_slice(&[0, 0]);
    let mut device_path = vec![2, 1, 12, 0, 0xd0, 0x41, 0x03, 0x0a, 0, 0, 0, 0, 4, 4];
    device_path.extend_from_slice(&u16::try_from(file.len() + 4).unwrap().to_le_bytes());
    device_path.extend_from_slice(&file);
    device_path.extend_from_slice(&[0x7f, 0xff, 4, 0]);
    let mut image = [0u8; 24].to_vec();
    image.extend_from_slice(&u64::try_from(device_path.len()).unwrap().to_le_bytes());
    image.extend_from_slice(&device_path);
    push(4, 0x8000_0003, &image, b"authenticode");
    push(
        8,
        0x0d,
        b"kernel_cmdline: root=/dev/vda1\0",
        b"root=/dev/vda1",
    );
    let cmdline = utf16("console=ttyS0");
    push(12, 0x0d, &cmdline, &cmdline);
    for pcr in 0..8 {
        push(pcr, 4, &[0; 4], &[0; 4]);
    }
    log
}

/// What a quote of `log` would report: its own replay, so mutations to event
/// data (not digests) reach the claim parsers.
fn replayed_pcrs(log: &[u8]) -> PcrValues {
    let parsed = parse_event_log(log).expect("sample log parses");
    let mut values = PcrValues::new();
    for bank in [HashAlg::Sha1, HashAlg::Sha256] {
        for (pcr, value) in replay(&parsed, bank).expect("sample log replays") {
            values.insert(bank, pcr, value);
        }
    }
    values
}

/// An ima-ng, an ima-sig and a violation entry, as the kernel writes them.
fn sample_ima_log() -> Vec<u8> {
    let field = |bytes: &[u8]| [le32(bytes.len()).as_slice(), bytes].concat();
    let mut log = Vec::new();
    for (template, path, signature) in [
        ("ima-ng", "boot_aggregate", None),
        ("ima-sig", "/usr/bin/bash", Some(&b"\x03\x02sig"[..])),
        ("ima-ng", "violation", None),
    ] {
        let mut digest = b"sha256:\0".to_vec();
        digest.extend_from_slice(&HashAlg::Sha256.digest(path.as_bytes()));
        let mut data = [field(&digest), field(format!("{path}\0").as_bytes())].concat();
        if let Some(signature) = signature {
            data.extend_from_slice(&field(signature));
        }
        log.extend_from_slice(&10u32.to_le_bytes());
        if path == "violation" {
            log.extend_from_slice(&[0; 20]);
        } else {
            log.extend_from_slice(&HashAlg::Sha1.digest(&data));
        }
        log.extend_from_slice(&field(template.as_bytes()));
        log.extend_from_slice(&field(&data));
    }
    log
}

fn ima_pcrs(log: &[u8]) -> PcrValues {
    let parsed = parse_ima_log(log).expect("sample IMA log parses");
    [HashAlg::Sha1, HashAlg::Sha256]
        .into_iter()
        .map(|bank| {
            let value = attestd_verifier::ima::replay_ima_log(&parsed, bank, 10)
                .expect("sample IMA log replays");
            (bank, 10, value)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn log_parsers_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(log) = parse_event_log(&bytes) {
            let _ = verify_event_log(&log, &PcrValues::new());
        }
        if let Ok(log) = parse_ima_log(&bytes) {
            let _ = verify_ima_log(&log, &PcrValues::new(), 10);
        }
        let _ = device_path_text(&bytes);
    }

    #[test]
    fn event_log_parser_and_verifier_never_panic_on_mutated_logs(edits in mutations()) {
        let original = sample_event_log();
        let quoted = replayed_pcrs(&original);
        let mutated = apply(&original, &edits);
        if let Ok(log) = parse_event_log(&mutated) {
            let _ = replay(&log, HashAlg::Sha256);
            let _ = verify_event_log(&log, &quoted);
        }
    }

    #[test]
    fn ima_parser_and_verifier_never_panic_on_mutated_logs(edits in mutations()) {
        let original = sample_ima_log();
        let quoted = ima_pcrs(&original);
        let mutated = apply(&original, &edits);
        if let Ok(log) = parse_ima_log(&mutated) {
            let _ = verify_ima_log(&log, &quoted, 10);
        }
    }

    #[test]
    fn tpm_parsers_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = TpmPublic::parse(&bytes);
        let _ = TpmPublic::parse_tpm2b(&bytes);
        let _ = Attest::parse(&bytes);
        let _ = TpmSignature::parse(&bytes);
        let _ = parse_pcr_selection_list(&bytes);
    }

    #[test]
    fn public_parser_never_panics_on_mutated_swtpm_keys(index in 0usize..6, edits in mutations()) {
        let fixtures = public_fixtures();
        let mutated = apply(&fixtures[index % fixtures.len()], &edits);
        if let Ok(public) = TpmPublic::parse_tpm2b(&mutated) {
            // Whatever parses must also be usable without panicking.
            let _ = public.name();
            let _ = public.spki_der();
            let _ = attestd_verifier::check_ak_attributes(&public);
        }
        if let Some(inner) = mutated.get(2..) {
            let _ = TpmPublic::parse(inner);
        }
    }

    #[test]
    fn attest_parser_never_panics_on_mutated_swtpm_quotes(edits in mutations()) {
        let _ = Attest::parse(&apply(&quote_attest("ecc256-ecdsa"), &edits));
    }

    #[test]
    fn signature_parser_never_panics_on_mutated_swtpm_signatures(index in 0usize..4, edits in mutations()) {
        let stem = common::AK_FIXTURES[index];
        let _ = TpmSignature::parse(&apply(&quote_signature(stem), &edits));
    }

    #[test]
    fn quote_verification_rejects_any_change_to_the_signed_attest(
        index in 0usize..4,
        attest_edits in mutations(),
    ) {
        let stem = common::AK_FIXTURES[index];
        let attest = apply(&quote_attest(stem), &attest_edits);
        let result = verify_quote(&ak(stem), &attest, &quote_signature(stem), &nonce(), &pcr_values());
        prop_assert!(attest == quote_attest(stem) || result.is_err());
    }

    #[test]
    fn quote_verification_never_panics_on_mutated_signatures(
        index in 0usize..4,
        signature_edits in mutations(),
    ) {
        let stem = common::AK_FIXTURES[index];
        let signature = apply(&quote_signature(stem), &signature_edits);
        let _ = verify_quote(&ak(stem), &quote_attest(stem), &signature, &nonce(), &pcr_values());
    }
}

proptest! {
    // Certificate checks are slower (RSA-3072 issuers); fewer cases suffice.
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn certificate_verification_never_panics_on_mutated_certificates(
        ecc in any::<bool>(),
        edits in mutations(),
    ) {
        let leaf = fixture(if ecc { "ek-ecc384.cert.der" } else { "ek-rsa2048.cert.der" });
        let mutated = apply(&leaf, &edits);
        let roots = common::pem_fixture("ca-root.pem");
        let intermediates = common::pem_fixture("ca-intermediate.pem");
        if let Ok(certificate) = verify_ek_certificate(&mutated, &intermediates, &roots, NOW) {
            let _ = certificate.matches(&ak("ecc256-ecdsa"));
        }
        let _ = parse_pem_bundle(&mutated);
    }
}

#[test]
fn every_single_bit_flip_in_an_ek_certificate_is_rejected() {
    let roots = common::pem_fixture("ca-root.pem");
    let intermediates = common::pem_fixture("ca-intermediate.pem");
    for stem in ["ek-rsa2048", "ek-ecc384"] {
        let leaf = fixture(&format!("{stem}.cert.der"));
        for at in 0..leaf.len() {
            for bit in 0..8 {
                let mut flipped = leaf.clone();
                flipped[at] ^= 1 << bit;
                assert!(
                    verify_ek_certificate(&flipped, &intermediates, &roots, NOW).is_err(),
                    "{stem}: flipping bit {bit} of byte {at} was accepted"
                );
            }
        }
    }
}

#[test]
fn the_log_samples_reach_every_claim_path_unmutated() {
    // Without this, a broken sample would make the mutation tests vacuous.
    let log = parse_event_log(&sample_event_log()).expect("sample parses");
    let claims = verify_event_log(&log, &replayed_pcrs(&sample_event_log())).expect("verifies");
    assert_eq!(claims.secure_boot, Some(true));
    assert_eq!(claims.kernel_cmdline.as_deref(), Some("console=ttyS0"));
    assert_eq!(
        claims.boot_applications[0].path.as_deref(),
        Some("PciRoot(0x0)/\\EFI\\BOOT\\BOOTX64.EFI")
    );
    let ima = parse_ima_log(&sample_ima_log()).expect("sample parses");
    let claims = verify_ima_log(&ima, &ima_pcrs(&sample_ima_log()), 10).expect("verifies");
    assert_eq!(claims.files.len(), 2);
    assert_eq!(claims.violations, 1);
}
