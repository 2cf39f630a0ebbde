//! Unit tests for the bounds-checked reader.

use super::Reader;
use crate::tpm2::ParseError;

#[test]
fn reads_big_endian_integers_in_order() {
    let bytes = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];
    let mut reader = Reader::new(&bytes);
    assert_eq!(reader.u8("a"), Ok(0x01));
    assert_eq!(reader.u16("b"), Ok(0x0203));
    assert_eq!(reader.u32("c"), Ok(0x0405_0607));
    assert_eq!(reader.finish("s"), Ok(()));
}

#[test]
fn truncated_read_names_the_field_and_consumes_nothing() {
    let bytes = [0x00, 0x01, 0x02];
    let mut reader = Reader::new(&bytes);
    assert_eq!(
        reader.u32("clock"),
        Err(ParseError::Truncated {
            field: "clock",
            needed: 4,
            available: 3
        })
    );
    assert_eq!(reader.rest().len(), 3);
}

#[test]
fn tpm2b_rejects_size_above_spec_maximum_before_reading() {
    let bytes = [0xff, 0xff];
    let mut reader = Reader::new(&bytes);
    assert_eq!(
        reader.tpm2b(64, "extraData"),
        Err(ParseError::TooLarge {
            field: "extraData",
            size: 0xffff,
            max: 64
        })
    );
}

#[test]
fn tpm2b_returns_exactly_the_sized_payload() {
    let bytes = [0x00, 0x02, 0xaa, 0xbb, 0xcc];
    let mut reader = Reader::new(&bytes);
    assert_eq!(reader.tpm2b(8, "x"), Ok(&[0xaa, 0xbb][..]));
    assert_eq!(reader.rest(), &[0xcc][..]);
}

#[test]
fn finish_reports_trailing_bytes() {
    let bytes = [0x00, 0x01, 0x02];
    let mut reader = Reader::new(&bytes);
    let _ = reader.u8("a");
    assert_eq!(
        reader.finish("TPMS_ATTEST"),
        Err(ParseError::TrailingBytes {
            structure: "TPMS_ATTEST",
            count: 2
        })
    );
}
