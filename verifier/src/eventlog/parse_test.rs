//! Unit tests for event-log parsing, including the firmware quirks it absorbs.

use super::*;
use crate::eventlog::event_type::{EV_EFI_ACTION, EV_POST_CODE, EV_SEPARATOR};
use crate::eventlog::test_support::*;

fn two_event_log() -> Vec<u8> {
    LogBuilder::new(&SHA1_AND_SHA256)
        .measure(0, EV_POST_CODE, b"firmware volume")
        .measure(7, EV_SEPARATOR, &[0; 4])
        .build()
}

#[test]
fn parses_the_spec_id_header_and_every_event() {
    let log = parse_event_log(&two_event_log()).expect("valid log");
    assert_eq!(log.algorithms, vec![(SHA1, 20), (SHA256, 32)]);
    assert_eq!(log.events.len(), 3);
    let header = &log.events[0];
    assert_eq!((header.pcr, header.event_type), (0, EV_NO_ACTION));
    assert_eq!(header.data, spec_id(&SHA1_AND_SHA256));
    let separator = &log.events[2];
    assert_eq!((separator.pcr, separator.event_type), (7, EV_SEPARATOR));
    assert_eq!(separator.data, vec![0; 4]);
    assert_eq!(separator.digests, digests_of(&SHA1_AND_SHA256, &[0; 4]));
    assert_eq!(
        separator.digest(SHA256),
        Some(ring_digest(HashAlg::Sha256, &[0; 4]).as_slice())
    );
    assert_eq!(separator.digest(SHA384), None);
}

#[test]
fn header_zero_sha1_digest_does_not_declare_a_sha1_bank() {
    // Quirk (e): every log opens with a SHA-1-format event whose 20-byte
    // digest is zero, even a SHA-256-only one. The banks come from Spec ID.
    let bytes = LogBuilder::new(&[(SHA256, 32)])
        .measure(0, EV_POST_CODE, b"x")
        .build();
    let log = parse_event_log(&bytes).expect("valid log");
    assert_eq!(log.events[0].digests, vec![(SHA1, vec![0; 20])]);
    assert!(log.declares(HashAlg::Sha256));
    assert!(!log.declares(HashAlg::Sha1));
}

#[test]
fn rejects_a_header_with_a_non_zero_digest() {
    let mut bytes = two_event_log();
    bytes[8] = 1; // first byte of the header's SHA-1 digest
    assert_eq!(
        parse_event_log(&bytes),
        Err(EventLogError::HeaderDigestNotZero)
    );
}

#[test]
fn rejects_a_first_event_that_is_not_the_spec_id_event() {
    let bytes = sha1_format_event(0, EV_SEPARATOR, [0; 20], &spec_id(&SHA1_AND_SHA256));
    assert_eq!(
        parse_event_log(&bytes),
        Err(EventLogError::HeaderNotSpecId {
            pcr: 0,
            event_type: "EV_SEPARATOR".to_owned()
        })
    );
    let bytes = sha1_format_event(1, EV_NO_ACTION, [0; 20], &spec_id(&SHA1_AND_SHA256));
    assert!(matches!(
        parse_event_log(&bytes),
        Err(EventLogError::HeaderNotSpecId { pcr: 1, .. })
    ));
}

#[test]
fn rejects_a_tpm12_style_log_by_its_signature() {
    let mut data = spec_id(&SHA1_AND_SHA256);
    data[..16].copy_from_slice(b"Spec ID Event00\0");
    let bytes = sha1_format_event(0, EV_NO_ACTION, [0; 20], &data);
    let error = parse_event_log(&bytes).unwrap_err();
    assert_eq!(
        error,
        EventLogError::NotCryptoAgile {
            signature: "Spec ID Event00".to_owned()
        }
    );
    assert!(error.to_string().contains("crypto-agile"), "{error}");
}

#[test]
fn rejects_empty_and_oversized_logs_before_parsing() {
    assert_eq!(parse_event_log(&[]), Err(EventLogError::Empty));
    let huge = vec![0u8; MAX_LOG_LEN + 1];
    assert_eq!(
        parse_event_log(&huge),
        Err(EventLogError::LogTooLarge {
            size: MAX_LOG_LEN + 1,
            max: MAX_LOG_LEN
        })
    );
}

#[test]
fn rejects_spec_id_without_algorithms() {
    let bytes = header(&[]);
    assert_eq!(parse_event_log(&bytes), Err(EventLogError::NoAlgorithms));
}

#[test]
fn rejects_spec_id_with_too_many_algorithms() {
    let algorithms: Vec<(u16, u16)> = (0x100..0x100 + 17).map(|id| (id, 32)).collect();
    assert_eq!(
        parse_event_log(&header(&algorithms)),
        Err(EventLogError::Malformed {
            event: 0,
            source: ParseError::TooLarge {
                field: "SpecID.numberOfAlgorithms",
                size: 17,
                max: MAX_ALGORITHMS
            }
        })
    );
}

#[test]
fn rejects_spec_id_declaring_an_algorithm_twice() {
    let bytes = header(&[(SHA256, 32), (SHA256, 32)]);
    assert_eq!(
        parse_event_log(&bytes),
        Err(EventLogError::DuplicateAlgorithm { alg: SHA256 })
    );
}

#[test]
fn rejects_spec_id_with_a_wrong_size_for_a_known_algorithm() {
    let bytes = header(&[(SHA256, 20)]);
    assert_eq!(
        parse_event_log(&bytes),
        Err(EventLogError::DigestSizeMismatch {
            alg: HashAlg::Sha256,
            declared: 20,
            expected: 32
        })
    );
}

#[test]
fn rejects_spec_id_with_a_zero_or_huge_digest_size() {
    for size in [0u16, 65, u16::MAX] {
        assert_eq!(
            parse_event_log(&header(&[(SM3_256, size)])),
            Err(EventLogError::BadDigestSize {
                alg: SM3_256,
                size,
                max: 64
            })
        );
    }
}

#[test]
fn rejects_spec_id_with_bytes_after_the_vendor_info() {
    let mut data = spec_id(&SHA1_AND_SHA256);
    data.push(0xee);
    let bytes = sha1_format_event(0, EV_NO_ACTION, [0; 20], &data);
    assert_eq!(
        parse_event_log(&bytes),
        Err(EventLogError::Malformed {
            event: 0,
            source: ParseError::TrailingBytes {
                structure: "TCG_EfiSpecIDEventStruct",
                count: 1
            }
        })
    );
}

#[test]
fn rejects_a_truncated_spec_id() {
    let data = spec_id(&SHA1_AND_SHA256);
    let bytes = sha1_format_event(0, EV_NO_ACTION, [0; 20], &data[..data.len() - 3]);
    assert!(matches!(
        parse_event_log(&bytes),
        Err(EventLogError::Malformed {
            event: 0,
            source: ParseError::Truncated { .. }
        })
    ));
}

#[test]
fn walks_digests_of_an_unknown_algorithm_by_their_declared_size() {
    let algorithms = [(SHA256, 32), (SM3_256, 32), (0x7777, 7)];
    let bytes = LogBuilder::new(&algorithms)
        .measure(4, EV_EFI_ACTION, b"first")
        .measure(5, EV_EFI_ACTION, b"second")
        .build();
    let log = parse_event_log(&bytes).expect("valid log");
    assert_eq!(log.events.len(), 3);
    assert_eq!(log.events[2].data, b"second");
    assert_eq!(log.events[2].digest(0x7777), Some(&[0xab; 7][..]));
    assert_eq!(log.events[2].digest(SM3_256), Some(&[0xab; 32][..]));
}

#[test]
fn rejects_an_event_digest_for_an_undeclared_algorithm() {
    let bytes = LogBuilder::new(&[(SHA256, 32)])
        .event(0, EV_POST_CODE, &[(SHA384, vec![0; 48])], b"x")
        .build();
    assert_eq!(
        parse_event_log(&bytes),
        Err(EventLogError::UndeclaredAlgorithm {
            event: 1,
            alg: SHA384
        })
    );
}

#[test]
fn rejects_an_event_with_two_digests_of_one_algorithm() {
    let digest = ring_digest(HashAlg::Sha256, b"x");
    let bytes = LogBuilder::new(&[(SHA256, 32)])
        .event(
            0,
            EV_POST_CODE,
            &[(SHA256, digest.clone()), (SHA256, digest)],
            b"x",
        )
        .build();
    assert_eq!(
        parse_event_log(&bytes),
        Err(EventLogError::DuplicateDigest {
            event: 1,
            alg: SHA256
        })
    );
}

#[test]
fn rejects_an_event_with_an_absurd_digest_count() {
    let mut event = 0u32.to_le_bytes().to_vec();
    event.extend_from_slice(&EV_POST_CODE.to_le_bytes());
    event.extend_from_slice(&u32::MAX.to_le_bytes());
    let bytes = LogBuilder::new(&SHA1_AND_SHA256).raw(&event).build();
    assert!(matches!(
        parse_event_log(&bytes),
        Err(EventLogError::Malformed {
            event: 1,
            source: ParseError::TooLarge {
                field: "TPML_DIGEST_VALUES.count",
                ..
            }
        })
    ));
}

#[test]
fn rejects_an_event_for_a_pcr_beyond_the_tpm() {
    let bytes = LogBuilder::new(&SHA1_AND_SHA256)
        .measure(32, EV_POST_CODE, b"x")
        .build();
    assert_eq!(
        parse_event_log(&bytes),
        Err(EventLogError::PcrIndexOutOfRange {
            event: 1,
            pcr: 32,
            max: 31
        })
    );
}

#[test]
fn a_truncated_event_names_the_event_and_field() {
    let bytes = two_event_log();
    // Cut inside the second event's SHA-256 digest.
    let cut = bytes.len() - 4 - 4 - 10;
    let error = parse_event_log(&bytes[..cut]).unwrap_err();
    assert!(
        matches!(
            error,
            EventLogError::Malformed {
                event: 2,
                source: ParseError::Truncated {
                    field: "TPMT_HA.digest",
                    needed: 32,
                    ..
                }
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("event 2 is malformed"),
        "{error}"
    );
}

#[test]
fn rejects_event_data_above_the_cap_without_reading_it() {
    let mut event = 0u32.to_le_bytes().to_vec();
    event.extend_from_slice(&EV_POST_CODE.to_le_bytes());
    event.extend_from_slice(&0u32.to_le_bytes()); // no digests
    event.extend_from_slice(&u32::try_from(MAX_EVENT_DATA_LEN + 1).unwrap().to_le_bytes());
    let bytes = LogBuilder::new(&SHA1_AND_SHA256).raw(&event).build();
    assert_eq!(
        parse_event_log(&bytes),
        Err(EventLogError::Malformed {
            event: 1,
            source: ParseError::TooLarge {
                field: "TCG_PCR_EVENT2.event",
                size: MAX_EVENT_DATA_LEN + 1,
                max: MAX_EVENT_DATA_LEN
            }
        })
    );
}

#[test]
fn zero_padding_after_the_last_event_ends_the_log() {
    // Quirk (a): firmware that hands over its whole fixed-size buffer.
    let unpadded = parse_event_log(&two_event_log()).expect("valid log");
    for padding in [3usize, 12, 4096] {
        let mut bytes = two_event_log();
        bytes.resize(bytes.len() + padding, 0);
        assert_eq!(
            parse_event_log(&bytes).as_ref(),
            Ok(&unpadded),
            "{padding} bytes of padding"
        );
    }
}

#[test]
fn rejects_non_zero_bytes_hidden_after_the_padding() {
    let mut bytes = two_event_log();
    let log_len = bytes.len();
    bytes.resize(log_len + 64, 0);
    bytes[log_len + 40] = 0x01;
    assert_eq!(
        parse_event_log(&bytes),
        Err(EventLogError::DataAfterPadding {
            offset: log_len + 40
        })
    );
}

#[test]
fn rejects_a_log_with_more_events_than_the_cap() {
    let one = event2(
        1,
        EV_POST_CODE,
        &[(SHA256, ring_digest(HashAlg::Sha256, b""))],
        b"",
    );
    let mut builder = LogBuilder::new(&[(SHA256, 32)]);
    // The header counts: MAX_EVENTS - 1 more events fill the log exactly.
    builder = builder.raw(&one.repeat(MAX_EVENTS - 1));
    let full = builder.build();
    assert_eq!(
        parse_event_log(&full).map(|log| log.events.len()),
        Ok(MAX_EVENTS)
    );
    let over = [full, one].concat();
    assert_eq!(
        parse_event_log(&over),
        Err(EventLogError::TooManyEvents { max: MAX_EVENTS })
    );
}
