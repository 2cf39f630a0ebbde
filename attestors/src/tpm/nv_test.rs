//! Unit tests for `nv.rs`.
use super::split_der_certificates;

#[test]
fn splits_padded_nv_contents_into_certificates() {
    let cert = [0x30, 0x03, 0x02, 0x01, 0x05];
    let mut raw = cert.to_vec();
    raw.extend_from_slice(&cert);
    raw.extend_from_slice(&[0xff; 7]);
    let certs = split_der_certificates(&raw).unwrap();
    assert_eq!(certs, vec![cert.to_vec(), cert.to_vec()]);
}

#[test]
fn truncated_certificate_is_an_error() {
    assert!(split_der_certificates(&[0x30, 0x82, 0x05, 0x00, 0x01]).is_err());
    assert!(split_der_certificates(&[0x30]).is_err());
    assert!(split_der_certificates(&[0x04, 0x00]).is_err());
}
