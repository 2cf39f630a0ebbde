//! Unit tests for replay: expected values are chained here with ring, not
//! with the code under test.

use super::*;
use crate::eventlog::event_type::{
    EV_EFI_ACTION, EV_EFI_HCRTM_EVENT, EV_NO_ACTION, EV_POST_CODE, EV_SEPARATOR,
};
use crate::eventlog::parse_event_log;
use crate::eventlog::test_support::*;
use crate::tpm2::HashAlg;

fn zeros(bank: HashAlg) -> Vec<u8> {
    vec![0; bank.digest_len()]
}

#[test]
fn replays_every_bank_from_zero_in_log_order() {
    let bytes = LogBuilder::new(&SHA1_AND_SHA256)
        .measure(0, EV_POST_CODE, b"code")
        .measure(7, EV_SEPARATOR, &[0; 4])
        .measure(0, EV_SEPARATOR, &[0; 4])
        .build();
    let log = parse_event_log(&bytes).expect("valid log");
    for bank in [HashAlg::Sha1, HashAlg::Sha256] {
        let pcrs = replay(&log, bank).expect("replays");
        let code = ring_digest(bank, b"code");
        let separator = ring_digest(bank, &[0; 4]);
        assert_eq!(pcrs.len(), 2, "{bank}");
        assert_eq!(
            pcrs[&0],
            chain(bank, zeros(bank), &[code, separator.clone()]),
            "{bank}"
        );
        assert_eq!(pcrs[&7], chain(bank, zeros(bank), &[separator]), "{bank}");
    }
}

#[test]
fn no_action_events_after_the_header_are_not_extended() {
    // Quirk (b): SP800-155 reference-manifest events and other EV_NO_ACTION
    // records carry zero digests and must leave the PCRs alone.
    let plain = LogBuilder::new(&SHA1_AND_SHA256)
        .measure(0, EV_POST_CODE, b"code")
        .measure(7, EV_SEPARATOR, &[0; 4])
        .build();
    let with_no_action = LogBuilder::new(&SHA1_AND_SHA256)
        .no_action(0, b"SP800-155 Event\0rest of the manifest")
        .measure(0, EV_POST_CODE, b"code")
        .no_action(7, b"anything")
        .event(
            3,
            EV_NO_ACTION,
            &digests_of(&SHA1_AND_SHA256, b"non-zero digests too"),
            b"x",
        )
        .measure(7, EV_SEPARATOR, &[0; 4])
        .build();
    for bank in [HashAlg::Sha1, HashAlg::Sha256] {
        let expected = replay(&parse_event_log(&plain).unwrap(), bank).unwrap();
        let actual = replay(&parse_event_log(&with_no_action).unwrap(), bank).unwrap();
        assert_eq!(actual, expected, "{bank}");
        assert!(!actual.contains_key(&3), "{bank}");
    }
}

#[test]
fn startup_locality_sets_the_reset_value_of_pcr0() {
    let bytes = LogBuilder::new(&SHA1_AND_SHA256)
        .no_action(0, &startup_locality_data(3))
        .measure(0, EV_POST_CODE, b"code")
        .build();
    let log = parse_event_log(&bytes).expect("valid log");
    for bank in [HashAlg::Sha1, HashAlg::Sha256] {
        let mut start = zeros(bank);
        *start.last_mut().unwrap() = 3;
        let expected = chain(bank, start, &[ring_digest(bank, b"code")]);
        assert_eq!(replay(&log, bank).unwrap()[&0], expected, "{bank}");
    }
}

#[test]
fn startup_locality_alone_still_reports_pcr0() {
    let bytes = LogBuilder::new(&[(SHA256, 32)])
        .no_action(0, &startup_locality_data(3))
        .build();
    let pcrs = replay(&parse_event_log(&bytes).unwrap(), HashAlg::Sha256).unwrap();
    let mut expected = zeros(HashAlg::Sha256);
    expected[31] = 3;
    assert_eq!(pcrs[&0], expected);
}

#[test]
fn startup_locality_outside_pcr0_is_just_informational() {
    let bytes = LogBuilder::new(&[(SHA256, 32)])
        .no_action(1, &startup_locality_data(3))
        .measure(0, EV_POST_CODE, b"code")
        .build();
    let pcrs = replay(&parse_event_log(&bytes).unwrap(), HashAlg::Sha256).unwrap();
    let expected = chain(
        HashAlg::Sha256,
        zeros(HashAlg::Sha256),
        &[ring_digest(HashAlg::Sha256, b"code")],
    );
    assert_eq!(pcrs[&0], expected);
}

#[test]
fn rejects_startup_locality_after_pcr0_was_measured() {
    let bytes = LogBuilder::new(&[(SHA256, 32)])
        .measure(0, EV_POST_CODE, b"code")
        .no_action(0, &startup_locality_data(3))
        .build();
    assert_eq!(
        replay(&parse_event_log(&bytes).unwrap(), HashAlg::Sha256),
        Err(EventLogError::MisplacedStartupLocality { event: 2 })
    );
}

#[test]
fn rejects_a_second_startup_locality() {
    let bytes = LogBuilder::new(&[(SHA256, 32)])
        .no_action(0, &startup_locality_data(3))
        .no_action(0, &startup_locality_data(0))
        .build();
    assert_eq!(
        replay(&parse_event_log(&bytes).unwrap(), HashAlg::Sha256),
        Err(EventLogError::MisplacedStartupLocality { event: 2 })
    );
}

#[test]
fn rejects_a_startup_locality_event_without_its_locality_byte() {
    let bytes = LogBuilder::new(&[(SHA256, 32)])
        .no_action(0, b"StartupLocality\0")
        .build();
    assert_eq!(
        replay(&parse_event_log(&bytes).unwrap(), HashAlg::Sha256),
        Err(EventLogError::ShortStartupLocality { event: 1, len: 16 })
    );
}

#[test]
fn hcrtm_event_starts_pcr0_at_locality_four() {
    let bytes = LogBuilder::new(&[(SHA256, 32)])
        .measure(0, EV_EFI_HCRTM_EVENT, b"HCRTM")
        .build();
    let mut start = zeros(HashAlg::Sha256);
    start[31] = 4;
    let expected = chain(
        HashAlg::Sha256,
        start,
        &[ring_digest(HashAlg::Sha256, b"HCRTM")],
    );
    assert_eq!(
        replay(&parse_event_log(&bytes).unwrap(), HashAlg::Sha256).unwrap()[&0],
        expected
    );
}

#[test]
fn rejects_an_hcrtm_event_after_pcr0_was_measured() {
    let bytes = LogBuilder::new(&[(SHA256, 32)])
        .measure(0, EV_POST_CODE, b"code")
        .measure(0, EV_EFI_HCRTM_EVENT, b"HCRTM")
        .build();
    assert_eq!(
        replay(&parse_event_log(&bytes).unwrap(), HashAlg::Sha256),
        Err(EventLogError::MisplacedStartupLocality { event: 2 })
    );
}

#[test]
fn an_event_missing_a_declared_bank_is_named_in_the_error() {
    // Quirk (c): the Spec ID event promises SHA-1 and SHA-256 for every event.
    let bytes = LogBuilder::new(&SHA1_AND_SHA256)
        .measure(0, EV_POST_CODE, b"code")
        .event(
            4,
            EV_EFI_ACTION,
            &[(SHA256, ring_digest(HashAlg::Sha256, b"x"))],
            b"x",
        )
        .build();
    let log = parse_event_log(&bytes).expect("the parse is structural");
    let error = replay(&log, HashAlg::Sha1).unwrap_err();
    assert_eq!(
        error,
        EventLogError::MissingDigest {
            event: 2,
            pcr: 4,
            event_type: "EV_EFI_ACTION".to_owned(),
            bank: HashAlg::Sha1
        }
    );
    assert_eq!(
        error.to_string(),
        "event 2 (EV_EFI_ACTION, PCR 4) has no sha1 digest although the Spec ID event declares sha1"
    );
    // The bank the event does carry still replays.
    assert!(replay(&log, HashAlg::Sha256).is_ok());
}

#[test]
fn a_no_action_event_may_omit_banks() {
    let bytes = LogBuilder::new(&SHA1_AND_SHA256)
        .event(0, EV_NO_ACTION, &[], b"vendor note")
        .measure(0, EV_POST_CODE, b"code")
        .build();
    assert!(replay(&parse_event_log(&bytes).unwrap(), HashAlg::Sha1).is_ok());
}

#[test]
fn rejects_replay_of_a_bank_the_log_does_not_declare() {
    let log = parse_event_log(&LogBuilder::new(&SHA1_AND_SHA256).build()).unwrap();
    assert_eq!(
        replay(&log, HashAlg::Sha384),
        Err(EventLogError::BankNotInLog {
            bank: HashAlg::Sha384
        })
    );
}

#[test]
fn an_uncomputable_bank_in_the_log_does_not_stop_a_known_one() {
    let algorithms = [(SM3_256, 32), (SHA256, 32)];
    let bytes = LogBuilder::new(&algorithms)
        .measure(2, EV_POST_CODE, b"option rom")
        .build();
    let pcrs = replay(&parse_event_log(&bytes).unwrap(), HashAlg::Sha256).unwrap();
    assert_eq!(
        pcrs[&2],
        chain(
            HashAlg::Sha256,
            zeros(HashAlg::Sha256),
            &[ring_digest(HashAlg::Sha256, b"option rom")]
        )
    );
}

#[test]
fn hand_built_logs_with_impossible_values_are_errors_not_panics() {
    let mut log = parse_event_log(
        &LogBuilder::new(&[(SHA256, 32)])
            .measure(0, EV_POST_CODE, b"x")
            .build(),
    )
    .unwrap();
    log.events[1].pcr = 300;
    assert_eq!(
        replay(&log, HashAlg::Sha256),
        Err(EventLogError::PcrIndexOutOfRange {
            event: 1,
            pcr: 300,
            max: 31
        })
    );
    log.events[1].pcr = 0;
    log.events[1].digests = vec![(SHA256, vec![0; 5])];
    assert_eq!(
        replay(&log, HashAlg::Sha256),
        Err(EventLogError::Malformed {
            event: 1,
            source: ParseError::LengthMismatch {
                field: "TPMT_HA.digest",
                expected: 32,
                actual: 5
            }
        })
    );
}
