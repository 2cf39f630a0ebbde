//! Unit tests for matching a replayed log to quoted PCR values.

use super::*;
use crate::eventlog::event_type::{EV_EFI_ACTION, EV_POST_CODE, EV_SEPARATOR};
use crate::eventlog::parse_event_log;
use crate::eventlog::test_support::*;

const SEPARATOR: &[u8] = &[0; 4];

/// PCRs 0–7 each measured once (a separator) plus PCR 0 and 4 content.
fn boot_log() -> (EventLog, Vec<(u8, &'static [u8])>) {
    let mut measured: Vec<(u8, &'static [u8])> = vec![(0, b"code"), (4, b"loader")];
    let mut builder = LogBuilder::new(&SHA1_AND_SHA256)
        .measure(0, EV_POST_CODE, b"code")
        .measure(4, EV_EFI_ACTION, b"loader");
    for pcr in 0..8u8 {
        builder = builder.measure(u32::from(pcr), EV_SEPARATOR, SEPARATOR);
        measured.push((pcr, SEPARATOR));
    }
    (parse_event_log(&builder.build()).unwrap(), measured)
}

#[test]
fn accepts_a_log_that_replays_to_the_quoted_values_in_every_bank() {
    let (log, measured) = boot_log();
    let quoted = quoted_after(&[HashAlg::Sha1, HashAlg::Sha256], &measured);
    let claims = verify_event_log(&log, &quoted).expect("log matches quote");
    assert_eq!(claims.verified_pcrs, (0..8).collect::<Vec<u8>>());
    assert_eq!(claims.events_replayed, 10);
}

#[test]
fn a_mismatch_names_bank_pcr_and_both_values() {
    let (log, measured) = boot_log();
    let mut quoted = quoted_after(&[HashAlg::Sha256], &measured);
    quoted.insert(HashAlg::Sha256, 4, vec![0x11; 32]);
    let error = verify_event_log(&log, &quoted).unwrap_err();
    let replayed = hex(quoted_after(&[HashAlg::Sha256], &measured)
        .get(HashAlg::Sha256, 4)
        .unwrap());
    assert_eq!(
        error,
        EventLogError::PcrMismatch {
            bank: HashAlg::Sha256,
            pcr: 4,
            quoted: "11".repeat(32),
            replayed: replayed.clone(),
        }
    );
    assert_eq!(
        error.to_string(),
        format!(
            "PCR sha256:4 was quoted as {} but the event log replays to {replayed}",
            "11".repeat(32)
        )
    );
}

#[test]
fn a_quoted_firmware_pcr_the_log_never_measures_must_still_be_at_reset() {
    let bytes = LogBuilder::new(&[(SHA256, 32)])
        .measure(0, EV_POST_CODE, b"code")
        .build();
    let log = parse_event_log(&bytes).unwrap();
    let mut quoted = quoted_after(&[HashAlg::Sha256], &[(0, b"code")]);
    quoted.insert(HashAlg::Sha256, 6, vec![0; 32]);
    let claims = verify_event_log(&log, &quoted).expect("PCR 6 is at reset");
    assert_eq!(claims.verified_pcrs, vec![0, 6]);

    quoted.insert(HashAlg::Sha256, 6, vec![0x66; 32]);
    assert!(matches!(
        verify_event_log(&log, &quoted),
        Err(EventLogError::PcrMismatch { pcr: 6, .. })
    ));
}

#[test]
fn quoted_pcrs_above_seven_the_log_does_not_measure_are_left_alone() {
    let (log, measured) = boot_log();
    let mut quoted = quoted_after(&[HashAlg::Sha256], &measured);
    quoted.insert(HashAlg::Sha256, 10, vec![0x10; 32]);
    let claims = verify_event_log(&log, &quoted).expect("PCR 10 belongs to IMA");
    assert!(!claims.verified_pcrs.contains(&10));
}

#[test]
fn a_quoted_pcr_above_seven_that_the_log_measures_is_checked() {
    let bytes = LogBuilder::new(&[(SHA256, 32)])
        .measure(9, EV_POST_CODE, b"initrd")
        .build();
    let log = parse_event_log(&bytes).unwrap();
    let mut quoted = quoted_after(&[HashAlg::Sha256], &[(9, b"initrd")]);
    assert_eq!(
        verify_event_log(&log, &quoted).unwrap().verified_pcrs,
        vec![9]
    );
    quoted.insert(HashAlg::Sha256, 9, vec![9; 32]);
    assert!(matches!(
        verify_event_log(&log, &quoted),
        Err(EventLogError::PcrMismatch { pcr: 9, .. })
    ));
}

#[test]
fn rejects_a_quoted_bank_the_log_has_no_digests_for() {
    let bytes = LogBuilder::new(&[(SHA256, 32)])
        .measure(0, EV_POST_CODE, b"code")
        .build();
    let log = parse_event_log(&bytes).unwrap();
    let quoted = quoted_after(&[HashAlg::Sha1, HashAlg::Sha256], &[(0, b"code")]);
    let error = verify_event_log(&log, &quoted).unwrap_err();
    assert_eq!(
        error,
        EventLogError::BankNotInLog {
            bank: HashAlg::Sha1
        }
    );
    assert_eq!(
        error.to_string(),
        "the quote covers the sha1 bank but the event log has no sha1 digests"
    );
}

#[test]
fn nothing_quoted_verifies_nothing() {
    let (log, _) = boot_log();
    let claims = verify_event_log(&log, &PcrValues::new()).unwrap();
    assert!(claims.verified_pcrs.is_empty());
    assert_eq!(claims.events_replayed, 0);
}
