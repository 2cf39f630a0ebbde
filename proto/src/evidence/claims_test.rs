//! The claims codec: golden encodings, round trips, and every way a claims set
//! is refused.

use ciborium::value::{Integer, Value};

use super::cbor::encode_deterministic;
use super::{
    BinaryClaim, EvidenceClaims, EvidenceError, HostClaims, MAX_EVIDENCE_BYTES, NONCE_MAX,
    NONCE_MIN,
};

/// Every claim present; the daemon's typical output.
pub(super) fn full_claims() -> EvidenceClaims {
    EvidenceClaims {
        nonce: (0u8..16).collect(),
        ueid: Some([&[0x01][..], &[0x11; 32][..]].concat()),
        issued_at: 1_767_225_600,
        selectors: vec!["unix:uid:1000".to_owned(), "unix:gid:1000".to_owned()],
        binary: Some(BinaryClaim {
            path: "/usr/bin/sleep".to_owned(),
            sha256: [0xab; 32],
        }),
        host: HostClaims {
            hostname: "node-1".to_owned(),
            kernel: "6.1.0-18-amd64".to_owned(),
            os: "debian".to_owned(),
            boot_id: "5f1b6c1e-3c1e-4a57-9a35-0c6f1d2e9b10".to_owned(),
        },
        audience: Some("spiffe://example.org/issuer".to_owned()),
    }
}

/// Only the required claims, all as small as allowed.
pub(super) fn minimal_claims() -> EvidenceClaims {
    EvidenceClaims {
        nonce: (0u8..8).collect(),
        ueid: None,
        issued_at: 0,
        selectors: Vec::new(),
        binary: None,
        host: HostClaims::default(),
        audience: None,
    }
}

/// Encoded by cbor2 (`canonical=True`), not by us: an independent golden value.
const FULL_CLAIMS_CBOR: &str = concat!(
    "a8061a6955b9000a50000102030405060708090a0b0c0d0e0f1901005821011111111111111111111111111111",
    "11111111111111111111111111111111111119010978207461673a617474657374642e6465762c323032363a65",
    "766964656e63652f76316c617474657374642e686f7374a4626f736664656269616e666b65726e656c6e362e31",
    "2e302d31382d616d64363467626f6f745f6964782435663162366331652d336331652d346135372d396133352d",
    "30633666316432653962313068686f73746e616d65666e6f64652d316e617474657374642e62696e617279a264",
    "706174686e2f7573722f62696e2f736c656570667368613235365820ababababababababababababababababab",
    "ababababababababababababababab70617474657374642e61756469656e6365781b7370696666653a2f2f6578",
    "616d706c652e6f72672f69737375657271617474657374642e73656c6563746f7273826d756e69783a6769643a",
    "313030306d756e69783a7569643a31303030",
);

const MINIMAL_CLAIMS_CBOR: &str = concat!(
    "a506000a48000102030405060719010978207461673a617474657374642e6465762c323032363a65766964656e",
    "63652f76316c617474657374642e686f7374a4626f7360666b65726e656c6067626f6f745f69646068686f7374",
    "6e616d656071617474657374642e73656c6563746f727380",
);

fn decode_hex(text: &str) -> Vec<u8> {
    hex::decode(text).expect("test vector is hex")
}

/// The claims as a CBOR map, so tests can change one entry and re-encode.
fn claims_map(claims: &EvidenceClaims) -> Vec<(Value, Value)> {
    let bytes = claims.to_cbor().expect("sample claims encode");
    match ciborium::de::from_reader::<Value, _>(bytes.as_slice()).expect("our CBOR decodes") {
        Value::Map(entries) => entries,
        other => panic!("claims encoded as {other:?}"),
    }
}

fn int_key(label: i64) -> Value {
    Value::Integer(Integer::from(label))
}

fn text_key(name: &str) -> Value {
    Value::Text(name.to_owned())
}

/// The full claims with `key` set to `value` (added if absent), deterministically encoded.
fn with_claim(key: Value, value: Value) -> Vec<u8> {
    let mut entries = claims_map(&full_claims());
    entries.retain(|(existing, _)| *existing != key);
    entries.push((key, value));
    encode_deterministic(Value::Map(entries)).expect("test map encodes")
}

/// The full claims without `key`, deterministically encoded.
fn without_claim(key: Value) -> Vec<u8> {
    let mut entries = claims_map(&full_claims());
    entries.retain(|(existing, _)| *existing != key);
    encode_deterministic(Value::Map(entries)).expect("test map encodes")
}

fn assert_invalid_claim(bytes: &[u8], expected_claim: &str) {
    match EvidenceClaims::from_cbor(bytes) {
        Err(EvidenceError::InvalidClaim { claim, .. }) => assert_eq!(claim, expected_claim),
        other => panic!("expected InvalidClaim for {expected_claim}, got {other:?}"),
    }
}

#[test]
fn full_claims_encode_to_the_rfc8949_deterministic_golden_bytes() {
    let encoded = full_claims().to_cbor().expect("encodes");
    assert_eq!(hex::encode(encoded), FULL_CLAIMS_CBOR);
}

#[test]
fn the_example_in_docs_evidence_md_is_what_attestd_encodes() {
    let doc = include_str!("../../../docs/evidence.md");
    let after = doc
        .split_once("encode to these 378 bytes")
        .map(|(_, rest)| rest)
        .expect("docs/evidence.md has the example");
    let block = after
        .split("```")
        .nth(1)
        .expect("the example's hex is in a code block");
    let documented: String = block.split_whitespace().collect();
    assert_eq!(documented, FULL_CLAIMS_CBOR);
}

#[test]
fn minimal_claims_encode_to_the_golden_bytes_without_optional_claims() {
    let encoded = minimal_claims().to_cbor().expect("encodes");
    assert_eq!(hex::encode(encoded), MINIMAL_CLAIMS_CBOR);
}

#[test]
fn full_claims_round_trip_with_selectors_sorted() {
    let claims = full_claims();
    let decoded = EvidenceClaims::from_cbor(&claims.to_cbor().expect("encodes")).expect("decodes");
    let mut expected = claims;
    expected.selectors.sort();
    assert_eq!(decoded, expected);
}

#[test]
fn minimal_claims_round_trip() {
    let claims = minimal_claims();
    let decoded = EvidenceClaims::from_cbor(&claims.to_cbor().expect("encodes")).expect("decodes");
    assert_eq!(decoded, claims);
}

#[test]
fn encoding_sorts_and_deduplicates_selectors() {
    let mut claims = minimal_claims();
    claims.selectors = ["b", "a", "b", "c", "a"].map(str::to_owned).to_vec();
    let decoded = EvidenceClaims::from_cbor(&claims.to_cbor().expect("encodes")).expect("decodes");
    assert_eq!(decoded.selectors, ["a", "b", "c"]);
}

#[test]
fn negative_issued_at_round_trips() {
    let mut claims = minimal_claims();
    claims.issued_at = -1;
    let decoded = EvidenceClaims::from_cbor(&claims.to_cbor().expect("encodes")).expect("decodes");
    assert_eq!(decoded.issued_at, -1);
}

#[test]
fn encoding_refuses_nonces_outside_8_to_64_bytes() {
    for len in [0, NONCE_MIN - 1, NONCE_MAX + 1] {
        let mut claims = minimal_claims();
        claims.nonce = vec![7; len];
        assert!(
            matches!(claims.to_cbor(), Err(EvidenceError::InvalidClaim { claim, .. }) if claim.starts_with("eat_nonce")),
            "a {len}-byte nonce was encoded"
        );
    }
    for len in [NONCE_MIN, NONCE_MAX] {
        let mut claims = minimal_claims();
        claims.nonce = vec![7; len];
        assert!(claims.to_cbor().is_ok(), "a {len}-byte nonce was refused");
    }
}

#[test]
fn encoding_refuses_a_ueid_that_is_not_type_rand_and_33_bytes() {
    for ueid in [
        vec![0x01; 32],
        vec![0x01; 34],
        [&[0x02][..], &[0; 32][..]].concat(),
    ] {
        let mut claims = minimal_claims();
        claims.ueid = Some(ueid.clone());
        assert!(
            matches!(claims.to_cbor(), Err(EvidenceError::InvalidClaim { claim, .. }) if claim.starts_with("ueid")),
            "ueid {ueid:02x?} was encoded"
        );
    }
}

#[test]
fn encoding_refuses_claims_larger_than_the_evidence_limit() {
    let mut claims = minimal_claims();
    claims.host.hostname = "h".repeat(MAX_EVIDENCE_BYTES);
    assert!(matches!(
        claims.to_cbor(),
        Err(EvidenceError::TooLarge {
            max: MAX_EVIDENCE_BYTES,
            ..
        })
    ));
}

#[test]
fn unknown_int_and_text_claims_are_ignored() {
    let bytes = with_claim(int_key(999), Value::Array(vec![Value::Null]));
    assert_eq!(
        EvidenceClaims::from_cbor(&bytes).expect("decodes").nonce,
        full_claims().nonce
    );
    let bytes = with_claim(text_key("attestd.future"), Value::Bool(true));
    assert!(EvidenceClaims::from_cbor(&bytes).is_ok());
    let bytes = with_claim(Value::Integer(Integer::from(u64::MAX)), Value::Null);
    assert!(EvidenceClaims::from_cbor(&bytes).is_ok());
}

#[test]
fn unknown_members_of_host_and_binary_are_ignored() {
    let host = Value::Map(vec![
        (text_key("hostname"), text_key("h")),
        (text_key("kernel"), text_key("k")),
        (text_key("os"), text_key("o")),
        (text_key("boot_id"), text_key("b")),
        (text_key("arch"), text_key("x86_64")),
    ]);
    let decoded =
        EvidenceClaims::from_cbor(&with_claim(text_key("attestd.host"), host)).expect("decodes");
    assert_eq!(decoded.host.hostname, "h");
}

#[test]
fn each_known_claim_with_the_wrong_type_is_refused() {
    let wrong = [
        (
            int_key(10),
            Value::Text("0123456789abcdef".to_owned()),
            "eat_nonce (10)",
        ),
        (int_key(256), Value::Text("x".repeat(33)), "ueid (256)"),
        (int_key(6), Value::Float(1.5), "iat (6)"),
        (int_key(6), Value::Text("1767225600".to_owned()), "iat (6)"),
        (
            int_key(265),
            Value::Integer(Integer::from(1)),
            "eat_profile (265)",
        ),
        (
            text_key("attestd.selectors"),
            Value::Text("unix:uid:0".to_owned()),
            "attestd.selectors",
        ),
        (
            text_key("attestd.selectors"),
            Value::Array(vec![Value::Bytes(b"unix:uid:0".to_vec())]),
            "attestd.selectors",
        ),
        (
            text_key("attestd.binary"),
            Value::Array(vec![]),
            "attestd.binary",
        ),
        (text_key("attestd.host"), Value::Null, "attestd.host"),
        (
            text_key("attestd.audience"),
            Value::Bytes(b"aud".to_vec()),
            "attestd.audience",
        ),
    ];
    for (key, value, claim) in wrong {
        assert_invalid_claim(&with_claim(key, value), claim);
    }
}

#[test]
fn nested_members_with_the_wrong_type_or_size_are_refused() {
    let binary = |sha256: Value| {
        Value::Map(vec![
            (text_key("path"), text_key("/bin/true")),
            (text_key("sha256"), sha256),
        ])
    };
    assert_invalid_claim(
        &with_claim(
            text_key("attestd.binary"),
            binary(Value::Bytes(vec![0; 31])),
        ),
        "attestd.binary.sha256",
    );
    assert_invalid_claim(
        &with_claim(text_key("attestd.binary"), binary(text_key("ab"))),
        "attestd.binary.sha256",
    );
    let host = Value::Map(vec![
        (text_key("hostname"), Value::Integer(Integer::from(1))),
        (text_key("kernel"), text_key("k")),
        (text_key("os"), text_key("o")),
        (text_key("boot_id"), text_key("b")),
    ]);
    assert_invalid_claim(
        &with_claim(text_key("attestd.host"), host),
        "attestd.host.hostname",
    );
}

#[test]
fn nonces_outside_8_to_64_bytes_are_refused_when_decoding() {
    for len in [NONCE_MIN - 1, NONCE_MAX + 1] {
        assert_invalid_claim(
            &with_claim(int_key(10), Value::Bytes(vec![1; len])),
            "eat_nonce (10)",
        );
    }
}

#[test]
fn a_ueid_of_another_type_is_refused_when_decoding() {
    let ueid = [&[0x02][..], &[0; 32][..]].concat();
    assert_invalid_claim(&with_claim(int_key(256), Value::Bytes(ueid)), "ueid (256)");
}

#[test]
fn another_profile_is_refused() {
    assert_invalid_claim(
        &with_claim(int_key(265), text_key("tag:attestd.dev,2026:evidence/v2")),
        "eat_profile (265)",
    );
}

#[test]
fn an_iat_beyond_64_bits_is_refused() {
    assert_invalid_claim(
        &with_claim(int_key(6), Value::Integer(Integer::from(u64::MAX))),
        "iat (6)",
    );
}

#[test]
fn unsorted_or_duplicate_selectors_are_refused() {
    for selectors in [["b", "a"], ["a", "a"]] {
        let array = Value::Array(selectors.iter().map(|s| text_key(s)).collect());
        assert_invalid_claim(
            &with_claim(text_key("attestd.selectors"), array),
            "attestd.selectors",
        );
    }
}

#[test]
fn each_required_claim_is_required() {
    for (key, claim) in [
        (int_key(10), "eat_nonce (10)"),
        (int_key(6), "iat (6)"),
        (int_key(265), "eat_profile (265)"),
        (text_key("attestd.selectors"), "attestd.selectors"),
        (text_key("attestd.host"), "attestd.host"),
    ] {
        assert_eq!(
            EvidenceClaims::from_cbor(&without_claim(key)),
            Err(EvidenceError::MissingClaim { claim })
        );
    }
}

#[test]
fn each_host_member_is_required() {
    for member in ["hostname", "kernel", "os", "boot_id"] {
        let entries = ["hostname", "kernel", "os", "boot_id"]
            .into_iter()
            .filter(|name| *name != member)
            .map(|name| (text_key(name), text_key("x")))
            .collect();
        let bytes = with_claim(text_key("attestd.host"), Value::Map(entries));
        assert!(
            matches!(EvidenceClaims::from_cbor(&bytes), Err(EvidenceError::MissingClaim { claim }) if claim.ends_with(member)),
            "host without {member} was accepted"
        );
    }
}

#[test]
fn optional_claims_may_be_absent() {
    for key in [
        int_key(256),
        text_key("attestd.binary"),
        text_key("attestd.audience"),
    ] {
        assert!(EvidenceClaims::from_cbor(&without_claim(key)).is_ok());
    }
}

#[test]
fn claims_with_keys_out_of_deterministic_order_are_refused() {
    let mut entries = claims_map(&full_claims());
    entries.reverse();
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(&Value::Map(entries), &mut bytes).expect("encodes");
    assert!(matches!(
        EvidenceClaims::from_cbor(&bytes),
        Err(EvidenceError::Malformed(_))
    ));
}

#[test]
fn claims_with_a_non_shortest_integer_are_refused() {
    let mut bytes = decode_hex(MINIMAL_CLAIMS_CBOR);
    // a5 06 00 ...: iat 0 re-encoded as a one-byte-argument integer (18 00).
    assert_eq!(&bytes[..3], &[0xa5, 0x06, 0x00]);
    bytes.splice(2..3, [0x18, 0x00]);
    assert!(matches!(
        EvidenceClaims::from_cbor(&bytes),
        Err(EvidenceError::Malformed(_))
    ));
}

#[test]
fn claims_with_an_indefinite_length_map_are_refused() {
    let mut bytes = decode_hex(MINIMAL_CLAIMS_CBOR);
    bytes[0] = 0xbf;
    bytes.push(0xff);
    assert!(matches!(
        EvidenceClaims::from_cbor(&bytes),
        Err(EvidenceError::Malformed(_))
    ));
}

#[test]
fn claims_with_a_duplicate_key_are_refused() {
    let mut entries = claims_map(&minimal_claims());
    entries.push((int_key(10), Value::Bytes(vec![9; 8])));
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(&Value::Map(entries), &mut bytes).expect("encodes");
    assert!(
        matches!(EvidenceClaims::from_cbor(&bytes), Err(EvidenceError::Malformed(m)) if m.contains("duplicate"))
    );
}

#[test]
fn claim_keys_other_than_int_or_text_are_refused() {
    let bytes = with_claim(Value::Bytes(vec![1]), Value::Null);
    assert!(matches!(
        EvidenceClaims::from_cbor(&bytes),
        Err(EvidenceError::Malformed(_))
    ));
}

#[test]
fn a_claims_set_that_is_not_a_map_is_refused() {
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(&Value::Array(vec![]), &mut bytes).expect("encodes");
    assert!(matches!(
        EvidenceClaims::from_cbor(&bytes),
        Err(EvidenceError::Malformed(_))
    ));
}

#[test]
fn trailing_bytes_after_the_claims_are_refused() {
    let mut bytes = decode_hex(MINIMAL_CLAIMS_CBOR);
    bytes.push(0x00);
    assert!(matches!(
        EvidenceClaims::from_cbor(&bytes),
        Err(EvidenceError::Malformed(_))
    ));
}

#[test]
fn every_truncation_of_the_claims_is_refused() {
    let bytes = decode_hex(FULL_CLAIMS_CBOR);
    for len in 0..bytes.len() {
        assert!(
            EvidenceClaims::from_cbor(&bytes[..len]).is_err(),
            "prefix of {len} bytes accepted"
        );
    }
}

#[test]
fn oversized_claims_are_refused_before_decoding() {
    let bytes = vec![0u8; MAX_EVIDENCE_BYTES + 1];
    assert_eq!(
        EvidenceClaims::from_cbor(&bytes),
        Err(EvidenceError::TooLarge {
            len: MAX_EVIDENCE_BYTES + 1,
            max: MAX_EVIDENCE_BYTES
        })
    );
}

#[test]
fn deeply_nested_input_is_refused_without_exhausting_the_stack() {
    // 10,000 nested one-element arrays inside an unknown claim.
    let mut bytes = vec![0xa1, 0x19, 0x03, 0xe7];
    bytes.extend(std::iter::repeat_n(0x81, 10_000));
    bytes.push(0x00);
    assert!(matches!(
        EvidenceClaims::from_cbor(&bytes),
        Err(EvidenceError::Malformed(_))
    ));
}
