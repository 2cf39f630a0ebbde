//! Unit tests for the little-endian log reader.

use super::LeReader;
use crate::tpm2::ParseError;

#[test]
fn reads_little_endian_integers_and_tracks_the_offset() {
    let bytes = [0x01, 0x03, 0x02, 0x07, 0x06, 0x05, 0x04, 0xff];
    let mut reader = LeReader::new(&bytes);
    assert_eq!(reader.u8("a"), Ok(0x01));
    assert_eq!(reader.u16("b"), Ok(0x0203));
    assert_eq!(reader.u32("c"), Ok(0x0405_0607));
    assert_eq!(reader.offset(), 7);
    assert_eq!(reader.remaining(), &[0xff][..]);
    assert!(!reader.is_empty());
}

#[test]
fn reads_a_little_endian_u64() {
    let bytes = 0x0102_0304_0506_0708u64.to_le_bytes();
    assert_eq!(LeReader::new(&bytes).u64("x"), Ok(0x0102_0304_0506_0708));
}

#[test]
fn truncated_read_names_the_field_and_consumes_nothing() {
    let bytes = [0x00, 0x01];
    let mut reader = LeReader::new(&bytes);
    assert_eq!(
        reader.u32("eventSize"),
        Err(ParseError::Truncated {
            field: "eventSize",
            needed: 4,
            available: 2
        })
    );
    assert_eq!(reader.offset(), 0);
    assert_eq!(reader.remaining().len(), 2);
}

#[test]
fn length_prefixed_field_is_refused_above_its_maximum_before_slicing() {
    let bytes = [0xff, 0xff, 0xff, 0xff, 0x00];
    let mut reader = LeReader::new(&bytes);
    assert_eq!(
        reader.u32_prefixed(1024, "event"),
        Err(ParseError::TooLarge {
            field: "event",
            size: 0xffff_ffff,
            max: 1024
        })
    );
}

#[test]
fn length_prefixed_field_returns_exactly_its_payload() {
    let bytes = [0x02, 0x00, 0x00, 0x00, 0xaa, 0xbb, 0xcc];
    let mut reader = LeReader::new(&bytes);
    assert_eq!(reader.u32_prefixed(8, "x"), Ok(&[0xaa, 0xbb][..]));
    assert_eq!(reader.remaining(), &[0xcc][..]);
}
