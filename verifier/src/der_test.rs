//! Unit tests for the DER encoder.

use super::*;

#[test]
fn integer_gets_sign_padding_only_when_top_bit_is_set() {
    assert_eq!(unsigned_integer(&[0x7f]), vec![0x02, 0x01, 0x7f]);
    assert_eq!(unsigned_integer(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
    assert_eq!(
        unsigned_integer(&[0x00, 0x00, 0x01]),
        vec![0x02, 0x01, 0x01]
    );
    assert_eq!(unsigned_integer(&[]), vec![0x02, 0x01, 0x00]);
}

#[test]
fn long_lengths_use_minimal_long_form() {
    let encoded = bit_string(&[0xaa; 300]);
    // 301 content bytes = 0x012d, two length bytes.
    assert_eq!(&encoded[..4], &[0x03, 0x82, 0x01, 0x2d]);
    assert_eq!(encoded.len(), 4 + 301);
    let encoded = sequence(&[&[0u8; 200]]);
    assert_eq!(&encoded[..3], &[0x30, 0x81, 200]);
}
