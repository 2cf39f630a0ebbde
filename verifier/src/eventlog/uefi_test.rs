//! Unit tests for the UEFI structures read from event data.

use super::*;
use crate::eventlog::test_support::{image_load_event, uefi_variable, utf16};

#[test]
fn parses_a_variable_and_drops_a_trailing_nul_from_its_name() {
    for nul in [false, true] {
        let bytes = uefi_variable(EFI_GLOBAL_VARIABLE, "SecureBoot", nul, &[1]);
        let variable = parse_uefi_variable(&bytes).expect("valid variable");
        assert_eq!(variable.vendor, EFI_GLOBAL_VARIABLE);
        assert_eq!(variable.name, "SecureBoot", "nul={nul}");
        assert_eq!(variable.data, &[1]);
    }
}

#[test]
fn tolerates_bytes_after_the_variable_data() {
    let mut bytes = uefi_variable(EFI_GLOBAL_VARIABLE, "db", false, b"list");
    bytes.extend_from_slice(b"tail");
    assert_eq!(parse_uefi_variable(&bytes).unwrap().data, b"list");
}

#[test]
fn a_variable_name_longer_than_the_event_is_refused_without_allocating() {
    let mut bytes = EFI_GLOBAL_VARIABLE.to_vec();
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes());
    assert!(matches!(
        parse_uefi_variable(&bytes),
        Err(ParseError::TooLarge {
            field: "UEFI_VARIABLE_DATA.UnicodeName",
            ..
        })
    ));
}

#[test]
fn a_truncated_variable_names_the_missing_field() {
    let bytes = uefi_variable(EFI_GLOBAL_VARIABLE, "SecureBoot", false, &[1]);
    assert!(matches!(
        parse_uefi_variable(&bytes[..bytes.len() - 1]),
        Err(ParseError::Truncated {
            field: "UEFI_VARIABLE_DATA.VariableData",
            ..
        })
    ));
}

#[test]
fn extracts_the_device_path_of_an_image_load_event() {
    let bytes = image_load_event(&[1, 2, 3, 4]);
    assert_eq!(image_load_device_path(&bytes), Ok(&[1, 2, 3, 4][..]));
    assert!(image_load_device_path(&bytes[..bytes.len() - 1]).is_err());
    assert!(image_load_device_path(&bytes[..20]).is_err());
}

#[test]
fn decodes_utf16_and_replaces_what_is_not() {
    assert_eq!(utf16le_lossy(&utf16("vmlinuz", false)), "vmlinuz");
    // An unpaired high surrogate, then 'A'; a dangling odd byte is ignored.
    assert_eq!(utf16le_lossy(&[0x00, 0xd8, 0x41, 0x00, 0x42]), "\u{fffd}A");
}

#[test]
fn formats_guids_in_registry_order() {
    assert_eq!(
        guid_text(&EFI_GLOBAL_VARIABLE),
        "8be4df61-93ca-11d2-aa0d-00e098032b8c"
    );
}
