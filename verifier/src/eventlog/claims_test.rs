//! Unit tests for the claims read from a verified boot log.

use crate::eventlog::event_type::{
    EV_EFI_BOOT_SERVICES_APPLICATION, EV_EFI_VARIABLE_DRIVER_CONFIG, EV_EVENT_TAG, EV_IPL,
    EV_SEPARATOR,
};
use crate::eventlog::test_support::*;
use crate::eventlog::uefi::EFI_GLOBAL_VARIABLE;
use crate::eventlog::{parse_event_log, verify_event_log, BootClaims, EventLogError};
use crate::tpm2::{HashAlg, PcrValues};

const BOTH: [HashAlg; 2] = [HashAlg::Sha1, HashAlg::Sha256];

/// Builds a log of `events` (each measured with digest = hash(data)) and
/// verifies it against a quote of exactly what was measured.
fn claims_for(
    events: &[(u32, u32, Vec<u8>)],
    banks: &[HashAlg],
) -> Result<BootClaims, EventLogError> {
    let mut builder = LogBuilder::new(&SHA1_AND_SHA256);
    for (pcr, event_type, data) in events {
        builder = builder.measure(*pcr, *event_type, data);
    }
    let measured: Vec<(u8, &[u8])> = events
        .iter()
        .map(|(pcr, _, data)| (u8::try_from(*pcr).unwrap(), data.as_slice()))
        .collect();
    let log = parse_event_log(&builder.build()).unwrap();
    verify_event_log(&log, &quoted_after(banks, &measured))
}

fn secure_boot_event(nul: bool, value: &[u8]) -> (u32, u32, Vec<u8>) {
    (
        7,
        EV_EFI_VARIABLE_DRIVER_CONFIG,
        uefi_variable(EFI_GLOBAL_VARIABLE, "SecureBoot", nul, value),
    )
}

#[test]
fn reads_secure_boot_enabled_and_disabled() {
    let on = claims_for(&[secure_boot_event(false, &[1])], &BOTH).unwrap();
    assert_eq!(on.secure_boot, Some(true));
    let off = claims_for(&[secure_boot_event(false, &[0])], &BOTH).unwrap();
    assert_eq!(off.secure_boot, Some(false));
}

#[test]
fn an_absent_secure_boot_variable_means_disabled() {
    let claims = claims_for(&[secure_boot_event(false, &[])], &BOTH).unwrap();
    assert_eq!(claims.secure_boot, Some(false));
}

#[test]
fn secure_boot_name_is_recognised_with_or_without_a_trailing_nul() {
    // Quirk (d): UnicodeNameLength sometimes counts the terminating NUL.
    for nul in [false, true] {
        let claims = claims_for(&[secure_boot_event(nul, &[1])], &BOTH).unwrap();
        assert_eq!(claims.secure_boot, Some(true), "nul={nul}");
    }
}

#[test]
fn other_variables_and_other_vendors_are_not_secure_boot() {
    let mut other_vendor = EFI_GLOBAL_VARIABLE;
    other_vendor[0] ^= 1;
    let events = [
        (
            7,
            EV_EFI_VARIABLE_DRIVER_CONFIG,
            uefi_variable(EFI_GLOBAL_VARIABLE, "PK", false, b"cert"),
        ),
        (
            7,
            EV_EFI_VARIABLE_DRIVER_CONFIG,
            uefi_variable(other_vendor, "SecureBoot", false, &[1]),
        ),
    ];
    assert_eq!(claims_for(&events, &BOTH).unwrap().secure_boot, None);
}

#[test]
fn secure_boot_is_not_claimed_when_pcr7_is_not_quoted() {
    let mut builder = LogBuilder::new(&SHA1_AND_SHA256);
    let (pcr, event_type, data) = secure_boot_event(false, &[1]);
    builder = builder.measure(pcr, event_type, &data);
    let log = parse_event_log(&builder.build()).unwrap();
    let mut quoted = PcrValues::new();
    quoted.insert(HashAlg::Sha256, 10, vec![0; 32]);
    let claims = verify_event_log(&log, &quoted).unwrap();
    assert_eq!(claims.secure_boot, None);
}

#[test]
fn secure_boot_data_that_does_not_match_its_digest_is_refused() {
    // The digests (and so the replay) say "off"; the data was edited to "on".
    let (pcr, event_type, original) = secure_boot_event(false, &[0]);
    let (_, _, forged) = secure_boot_event(false, &[1]);
    let bytes = LogBuilder::new(&SHA1_AND_SHA256)
        .event(
            pcr,
            event_type,
            &digests_of(&SHA1_AND_SHA256, &original),
            &forged,
        )
        .build();
    let log = parse_event_log(&bytes).unwrap();
    let quoted = quoted_after(&[HashAlg::Sha256], &[(7, original.as_slice())]);
    let error = verify_event_log(&log, &quoted).unwrap_err();
    assert_eq!(
        error,
        EventLogError::EventDataMismatch {
            event: 1,
            pcr: 7,
            event_type: "EV_EFI_VARIABLE_DRIVER_CONFIG".to_owned(),
            bank: HashAlg::Sha256,
            claim: "SecureBoot value"
        }
    );
}

#[test]
fn a_malformed_variable_in_a_verified_pcr7_is_an_error() {
    let mut data = uefi_variable(EFI_GLOBAL_VARIABLE, "SecureBoot", false, &[1]);
    data.truncate(30);
    let error = claims_for(&[(7, EV_EFI_VARIABLE_DRIVER_CONFIG, data)], &BOTH).unwrap_err();
    assert!(
        matches!(
            error,
            EventLogError::MalformedEventData {
                event: 1,
                structure: "UEFI_VARIABLE_DATA",
                ..
            }
        ),
        "{error:?}"
    );
}

fn boot_application(path: &str) -> (u32, u32, Vec<u8>) {
    let device_path = [file_path_node(path), end_node()].concat();
    (
        4,
        EV_EFI_BOOT_SERVICES_APPLICATION,
        image_load_event(&device_path),
    )
}

#[test]
fn lists_boot_applications_and_takes_the_last_as_the_kernel() {
    let events = [
        boot_application("\\EFI\\BOOT\\BOOTX64.EFI"),
        boot_application("\\EFI\\debian\\grubx64.efi"),
        (4, EV_SEPARATOR, vec![0; 4]),
        boot_application("\\vmlinuz"),
    ];
    let claims = claims_for(&events, &BOTH).unwrap();
    let paths: Vec<Option<&str>> = claims
        .boot_applications
        .iter()
        .map(|application| application.path.as_deref())
        .collect();
    assert_eq!(
        paths,
        vec![
            Some("\\EFI\\BOOT\\BOOTX64.EFI"),
            Some("\\EFI\\debian\\grubx64.efi"),
            Some("\\vmlinuz")
        ]
    );
    assert!(claims.boot_applications.iter().all(|app| app.pcr == 4));
    assert_eq!(
        claims.kernel_digests,
        digests_of(&SHA1_AND_SHA256, &events[3].2)
    );
    assert_eq!(claims.events_replayed, 4);
}

#[test]
fn boot_application_digests_are_only_those_of_verified_banks() {
    let events = [boot_application("\\vmlinuz")];
    let claims = claims_for(&events, &[HashAlg::Sha256]).unwrap();
    assert_eq!(
        claims.kernel_digests,
        vec![(SHA256, ring_digest(HashAlg::Sha256, &events[0].2))]
    );
}

#[test]
fn an_unparseable_device_path_leaves_the_path_unknown() {
    let claims = claims_for(
        &[(4, EV_EFI_BOOT_SERVICES_APPLICATION, vec![1, 2, 3])],
        &BOTH,
    )
    .unwrap();
    assert_eq!(claims.boot_applications.len(), 1);
    assert_eq!(claims.boot_applications[0].path, None);
}

#[test]
fn no_boot_application_means_no_kernel_digests() {
    let claims = claims_for(&[(4, EV_SEPARATOR, vec![0; 4])], &BOTH).unwrap();
    assert!(claims.boot_applications.is_empty());
    assert!(claims.kernel_digests.is_empty());
}

/// GRUB's kernel_cmdline event: digest over the bare command line.
fn grub_cmdline_log(cmdline: &str, digest_input: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let data = format!("kernel_cmdline: {cmdline}\0").into_bytes();
    let bytes = LogBuilder::new(&SHA1_AND_SHA256)
        .event(
            8,
            EV_IPL,
            &digests_of(&SHA1_AND_SHA256, digest_input),
            &data,
        )
        .build();
    (bytes, digest_input.to_vec())
}

#[test]
fn reads_grubs_kernel_command_line_hashed_without_or_with_its_nul() {
    let cmdline = "root=/dev/vda1 ro quiet";
    for digest_input in [
        cmdline.as_bytes().to_vec(),
        format!("{cmdline}\0").into_bytes(),
    ] {
        let (bytes, measured) = grub_cmdline_log(cmdline, &digest_input);
        let log = parse_event_log(&bytes).unwrap();
        let quoted = quoted_after(&BOTH, &[(8, measured.as_slice())]);
        let claims = verify_event_log(&log, &quoted).unwrap();
        assert_eq!(claims.kernel_cmdline.as_deref(), Some(cmdline));
    }
}

#[test]
fn a_grub_command_line_that_does_not_match_its_digest_is_refused() {
    let (bytes, measured) = grub_cmdline_log("root=/dev/vda1 init=/bin/sh", b"root=/dev/vda1");
    let log = parse_event_log(&bytes).unwrap();
    let quoted = quoted_after(&BOTH, &[(8, measured.as_slice())]);
    assert!(matches!(
        verify_event_log(&log, &quoted),
        Err(EventLogError::EventDataMismatch {
            pcr: 8,
            claim: "kernel command line",
            ..
        })
    ));
}

#[test]
fn other_grub_pcr8_events_are_not_command_lines() {
    let events = [(8, EV_IPL, b"grub_cmd: linux /vmlinuz\0".to_vec())];
    assert_eq!(claims_for(&events, &BOTH).unwrap().kernel_cmdline, None);
}

#[test]
fn reads_systemds_utf16_kernel_command_line_in_pcr12() {
    let cmdline = "console=ttyS0 rw";
    let data = utf16(cmdline, true);
    let digest_input = utf16(cmdline, false);
    let bytes = LogBuilder::new(&SHA1_AND_SHA256)
        .event(
            12,
            EV_IPL,
            &digests_of(&SHA1_AND_SHA256, &digest_input),
            &data,
        )
        .build();
    let log = parse_event_log(&bytes).unwrap();
    let quoted = quoted_after(&BOTH, &[(12, digest_input.as_slice())]);
    let claims = verify_event_log(&log, &quoted).unwrap();
    assert_eq!(claims.kernel_cmdline.as_deref(), Some(cmdline));
}

#[test]
fn systemds_other_pcr12_records_are_not_command_lines() {
    // "Credentials initrd": the description is not what was hashed.
    let data = utf16("Credentials initrd", true);
    let bytes = LogBuilder::new(&SHA1_AND_SHA256)
        .event(
            12,
            EV_IPL,
            &digests_of(&SHA1_AND_SHA256, b"cpio archive"),
            &data,
        )
        .build();
    let log = parse_event_log(&bytes).unwrap();
    let quoted = quoted_after(&BOTH, &[(12, b"cpio archive")]);
    assert_eq!(
        verify_event_log(&log, &quoted).unwrap().kernel_cmdline,
        None
    );
}

#[test]
fn the_linux_stubs_tagged_load_options_carry_no_command_line_text() {
    let mut data = 0x8F3B_22EDu32.to_le_bytes().to_vec();
    let description = b"LOADED_IMAGE::LoadOptions\0";
    data.extend_from_slice(&u32::try_from(description.len()).unwrap().to_le_bytes());
    data.extend_from_slice(description);
    let claims = claims_for(&[(9, EV_EVENT_TAG, data)], &BOTH).unwrap();
    assert_eq!(claims.kernel_cmdline, None);
    assert_eq!(claims.verified_pcrs, vec![9]);
}
