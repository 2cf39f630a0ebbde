//! The COSE_Sign1 envelope: what `sign_evidence` emits and hands its signer,
//! and the structural defects `parse_evidence` refuses (header problems are in
//! header_test.rs). No signature is verified here, so signatures are dummies.

use ciborium::value::{Integer, Value};
use coset::iana;
use coset::{
    AsCborValue, ContentType, CoseKeyBuilder, CoseSign1, Header, Label, ProtectedHeader,
    RegisteredLabelWithPrivate, TaggedCborSerializable,
};

use super::cbor::encode_deterministic;
use super::claims_test::{full_claims, minimal_claims};
use super::{
    labels, parse_envelope, parse_evidence, sign_evidence, EvidenceError, CONTENT_TYPE,
    MAX_EVIDENCE_BYTES,
};

/// A syntactically valid uncompressed point; parsing never checks the curve equation.
pub(super) fn session_point() -> Vec<u8> {
    std::iter::once(0x04).chain(1..=64).collect()
}

pub(super) const DUMMY_SIGNATURE: [u8; 64] = [0x5a; 64];

pub(super) fn dummy_signed() -> Vec<u8> {
    sign_evidence(&full_claims(), &session_point(), |_| {
        Ok(DUMMY_SIGNATURE.to_vec())
    })
    .expect("signs")
}

pub(super) fn session_key_value() -> Value {
    let point = session_point();
    CoseKeyBuilder::new_ec2_pub_key(
        iana::EllipticCurve::P_256,
        point[1..33].to_vec(),
        point[33..].to_vec(),
    )
    .build()
    .to_cbor_value()
    .expect("key encodes")
}

/// The protected header attestd emits, for tests to alter.
pub(super) fn good_protected() -> Header {
    Header {
        alg: Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256)),
        content_type: Some(ContentType::Text(CONTENT_TYPE.to_owned())),
        rest: vec![(Label::Int(labels::SESSION_KEY), session_key_value())],
        ..Header::default()
    }
}

pub(super) fn with_session_key(key: Value) -> Header {
    Header {
        rest: vec![(Label::Int(labels::SESSION_KEY), key)],
        ..good_protected()
    }
}

pub(super) fn ec2_key(params: Vec<(Value, Value)>) -> Value {
    let mut entries = vec![(int(1), int(2))];
    entries.extend(params);
    Value::Map(entries)
}

pub(super) fn int(value: i64) -> Value {
    Value::Integer(Integer::from(value))
}

/// Evidence with arbitrary headers around the full claims.
pub(super) fn assemble(protected: Header, unprotected: Header) -> Vec<u8> {
    CoseSign1 {
        protected: ProtectedHeader {
            original_data: None,
            header: protected,
        },
        unprotected,
        payload: Some(full_claims().to_cbor().expect("claims encode")),
        signature: DUMMY_SIGNATURE.to_vec(),
    }
    .to_tagged_vec()
    .expect("test evidence encodes")
}

pub(super) fn outer_array(evidence: &[u8]) -> Vec<Value> {
    match ciborium::de::from_reader::<Value, _>(evidence).expect("evidence is CBOR") {
        Value::Tag(18, inner) => match *inner {
            Value::Array(items) => items,
            other => panic!("tag 18 holds {other:?}"),
        },
        other => panic!("evidence is {other:?}"),
    }
}

pub(super) fn encode(value: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(value, &mut bytes).expect("encodes");
    bytes
}

#[test]
fn evidence_is_a_tag_18_cose_sign1_with_the_contracts_headers() {
    let items = outer_array(&dummy_signed());
    assert_eq!(items.len(), 4);
    let Value::Bytes(protected) = &items[0] else {
        panic!("protected is not a bstr")
    };
    let point = session_point();
    let expected = Value::Map(vec![
        (int(1), int(-7)),
        (int(3), Value::Text("application/eat-ucs+cbor".to_owned())),
        (
            int(-65537),
            Value::Map(vec![
                (int(1), int(2)),
                (int(-1), int(1)),
                (int(-2), Value::Bytes(point[1..33].to_vec())),
                (int(-3), Value::Bytes(point[33..].to_vec())),
            ]),
        ),
    ]);
    assert_eq!(*protected, encode(&expected), "protected header bytes");
    assert_eq!(items[1], Value::Map(vec![]), "unprotected header is empty");
    assert_eq!(
        items[2],
        Value::Bytes(full_claims().to_cbor().expect("encodes"))
    );
    assert_eq!(items[3], Value::Bytes(DUMMY_SIGNATURE.to_vec()));
}

#[test]
fn the_protected_header_is_deterministically_encoded() {
    let items = outer_array(&dummy_signed());
    let Value::Bytes(protected) = &items[0] else {
        panic!("protected is not a bstr")
    };
    let decoded: Value = ciborium::de::from_reader(protected.as_slice()).expect("decodes");
    assert_eq!(*protected, encode_deterministic(decoded).expect("encodes"));
}

#[test]
fn the_signer_gets_the_sig_structure_that_parsing_reconstructs() {
    let mut seen_by_signer = Vec::new();
    let evidence = sign_evidence(&minimal_claims(), &session_point(), |tbs| {
        seen_by_signer = tbs.to_vec();
        Ok(DUMMY_SIGNATURE.to_vec())
    })
    .expect("signs");
    let parsed = parse_evidence(&evidence).expect("parses");
    assert_eq!(parsed.tbs, seen_by_signer);
}

#[test]
fn the_sig_structure_is_signature1_over_protected_header_and_payload() {
    let evidence = dummy_signed();
    let items = outer_array(&evidence);
    let parsed = parse_evidence(&evidence).expect("parses");
    let expected = Value::Array(vec![
        Value::Text("Signature1".to_owned()),
        items[0].clone(),
        Value::Bytes(Vec::new()),
        items[2].clone(),
    ]);
    assert_eq!(parsed.tbs, encode(&expected));
}

#[test]
fn parsing_returns_the_claims_the_session_key_and_the_signature() {
    let parsed = parse_evidence(&dummy_signed()).expect("parses");
    let mut expected = full_claims();
    expected.selectors.sort();
    assert_eq!(parsed.claims, expected);
    assert_eq!(parsed.session_public_key.to_vec(), session_point());
    assert_eq!(parsed.signature, DUMMY_SIGNATURE);
}

#[test]
fn the_envelope_carries_the_payload_bytes_exactly_as_signed() {
    let envelope = parse_envelope(&dummy_signed()).expect("parses");
    assert_eq!(envelope.payload, full_claims().to_cbor().expect("encodes"));
}

#[test]
fn signing_refuses_a_key_that_is_not_an_uncompressed_p256_point() {
    let compressed: Vec<u8> = std::iter::once(0x02).chain(1..=32).collect();
    let wrong_prefix: Vec<u8> = std::iter::once(0x02).chain(1..=64).collect();
    let raw: Vec<u8> = (1..=64).collect();
    for key in [compressed, wrong_prefix, raw, Vec::new()] {
        let result = sign_evidence(&minimal_claims(), &key, |_| {
            panic!("signer must not be called")
        });
        assert!(
            matches!(result, Err(EvidenceError::InvalidSessionKey(_))),
            "{result:?}"
        );
    }
}

#[test]
fn signing_refuses_a_signature_that_is_not_raw_64_bytes() {
    let result = sign_evidence(&minimal_claims(), &session_point(), |_| Ok(vec![0x30; 72]));
    assert!(
        matches!(result, Err(EvidenceError::Signing(_))),
        "{result:?}"
    );
}

#[test]
fn signing_passes_the_signers_error_through() {
    let failure = EvidenceError::Signing("key gone".to_owned());
    let result = sign_evidence(
        &minimal_claims(),
        &session_point(),
        |_| Err(failure.clone()),
    );
    assert_eq!(result, Err(failure));
}

#[test]
fn signing_refuses_invalid_claims_before_calling_the_signer() {
    let mut claims = minimal_claims();
    claims.nonce = vec![1; 4];
    let result = sign_evidence(&claims, &session_point(), |_| {
        panic!("signer must not be called")
    });
    assert!(
        matches!(result, Err(EvidenceError::InvalidClaim { .. })),
        "{result:?}"
    );
}

#[test]
fn evidence_assembled_like_attestds_parses() {
    assert!(parse_evidence(&assemble(good_protected(), Header::default())).is_ok());
}

#[test]
fn untagged_evidence_is_refused() {
    let untagged = encode(&Value::Array(outer_array(&dummy_signed())));
    assert!(matches!(
        parse_evidence(&untagged),
        Err(EvidenceError::Malformed(_))
    ));
}

#[test]
fn evidence_under_another_tag_is_refused() {
    let retagged = encode(&Value::Tag(
        17,
        Box::new(Value::Array(outer_array(&dummy_signed()))),
    ));
    assert!(
        matches!(parse_evidence(&retagged), Err(EvidenceError::Malformed(m)) if m.contains("17"))
    );
}

#[test]
fn a_detached_payload_is_refused() {
    let mut items = outer_array(&dummy_signed());
    items[2] = Value::Null;
    let evidence = encode(&Value::Tag(18, Box::new(Value::Array(items))));
    assert!(
        matches!(parse_evidence(&evidence), Err(EvidenceError::Malformed(m)) if m.contains("detached"))
    );
}

#[test]
fn a_signature_that_is_not_64_bytes_is_refused() {
    for len in [0, 63, 65, 72] {
        let mut items = outer_array(&dummy_signed());
        items[3] = Value::Bytes(vec![1; len]);
        let evidence = encode(&Value::Tag(18, Box::new(Value::Array(items))));
        assert!(
            matches!(parse_evidence(&evidence), Err(EvidenceError::Malformed(_))),
            "{len} bytes"
        );
    }
}

#[test]
fn trailing_bytes_after_the_evidence_are_refused() {
    let mut evidence = dummy_signed();
    evidence.push(0xf6);
    assert!(matches!(
        parse_evidence(&evidence),
        Err(EvidenceError::Malformed(_))
    ));
}

#[test]
fn every_truncation_of_the_evidence_is_refused() {
    let evidence = dummy_signed();
    for len in 0..evidence.len() {
        assert!(
            parse_evidence(&evidence[..len]).is_err(),
            "prefix of {len} bytes accepted"
        );
    }
}

#[test]
fn oversized_evidence_is_refused_before_parsing() {
    let mut evidence = dummy_signed();
    evidence.resize(MAX_EVIDENCE_BYTES + 1, 0);
    assert_eq!(
        parse_evidence(&evidence),
        Err(EvidenceError::TooLarge {
            len: MAX_EVIDENCE_BYTES + 1,
            max: MAX_EVIDENCE_BYTES
        })
    );
}

#[test]
fn signing_refuses_evidence_over_the_size_limit() {
    let mut claims = minimal_claims();
    claims.host.hostname = "h".repeat(MAX_EVIDENCE_BYTES - 200);
    let result = sign_evidence(&claims, &session_point(), |_| Ok(DUMMY_SIGNATURE.to_vec()));
    assert!(
        matches!(result, Err(EvidenceError::TooLarge { .. })),
        "{result:?}"
    );
}

#[test]
fn a_deeply_nested_protected_header_is_refused_without_exhausting_the_stack() {
    let mut protected = vec![0xa1, 0x18, 0x63];
    protected.extend(std::iter::repeat_n(0x81, 10_000));
    protected.push(0x00);
    let evidence = encode(&Value::Tag(
        18,
        Box::new(Value::Array(vec![
            Value::Bytes(protected),
            Value::Map(vec![]),
            Value::Bytes(full_claims().to_cbor().expect("encodes")),
            Value::Bytes(DUMMY_SIGNATURE.to_vec()),
        ])),
    ));
    assert!(matches!(
        parse_evidence(&evidence),
        Err(EvidenceError::Malformed(_))
    ));
}
