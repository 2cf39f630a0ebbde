//! Unit tests for the DER element reader behind the envelope check.

use super::read_element;

#[test]
fn reads_short_and_long_form_lengths() {
    let (element, rest) = read_element(&[0x04, 0x01, 0xaa, 0xbb]).expect("short form");
    assert_eq!(
        (element.tag, element.content, rest),
        (0x04, &[0xaa][..], &[0xbb][..])
    );
    let mut long = vec![0x04, 0x81, 0x80];
    long.extend_from_slice(&[0x55; 0x80]);
    let (element, rest) = read_element(&long).expect("long form");
    assert_eq!(element.content.len(), 0x80);
    assert_eq!(element.encoded.len(), long.len());
    assert!(rest.is_empty());
}

#[test]
fn rejects_non_minimal_lengths() {
    // 5 bytes of content written in long form.
    assert!(read_element(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).is_none());
    // Long form with a leading zero length byte.
    let mut padded = vec![0x04, 0x82, 0x00, 0x80];
    padded.extend_from_slice(&[0; 0x80]);
    assert!(read_element(&padded).is_none());
}

#[test]
fn rejects_lengths_past_the_end() {
    assert!(read_element(&[0x30, 0x05, 0x00]).is_none());
    assert!(read_element(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
    assert!(read_element(&[0x30]).is_none());
}
