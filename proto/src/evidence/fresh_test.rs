//! The hardware-fresh header (-65538): it survives signing and parsing
//! unchanged, and every malformed or misplaced form is refused.

use ciborium::value::{Integer, Value};
use coset::{Header, Label};

use super::claims_test::full_claims;
use super::cose_test::{assemble, good_protected, session_point, DUMMY_SIGNATURE};
use super::{
    labels, parse_evidence, sign_payload, EvidenceError, FreshPcr, FreshQuote, Headers,
    MAX_FRESH_PROOF,
};

fn sample() -> FreshQuote {
    FreshQuote {
        ak_public: vec![0x00, 0x23, 0x00, 0x0b],
        attest: vec![0xff, 0x54, 0x43, 0x47],
        signature: vec![0x00, 0x18, 0x00, 0x0b],
        pcrs: vec![
            FreshPcr {
                bank: 0x000b,
                index: 0,
                value: vec![0; 32],
            },
            FreshPcr {
                bank: 0x000b,
                index: 7,
                value: vec![7; 32],
            },
        ],
        leaf_index: 2,
        leaf_count: 5,
        proof: vec![[1; 32], [2; 32], [3; 32]],
    }
}

fn with_fresh(value: Value) -> Vec<u8> {
    let mut protected = good_protected();
    protected
        .rest
        .push((Label::Int(labels::FRESH_QUOTE), value));
    assemble(protected, Header::default())
}

fn sample_value() -> Value {
    sample().to_value().unwrap()
}

fn set(value: Value, key: u64, to: Value) -> Value {
    let Value::Map(mut entries) = value else {
        unreachable!()
    };
    for (label, item) in &mut entries {
        if *label == Value::Integer(Integer::from(key)) {
            *item = to.clone();
        }
    }
    Value::Map(entries)
}

#[test]
fn the_fresh_header_round_trips_through_signing_and_parsing() {
    let fresh = sample();
    let payload = full_claims().to_cbor().unwrap();
    let evidence = sign_payload(
        payload.clone(),
        &session_point(),
        &Headers {
            x5chain: &[],
            fresh: Some(&fresh),
        },
        |_| Ok(DUMMY_SIGNATURE.to_vec()),
    )
    .unwrap();
    let parsed = parse_evidence(&evidence).unwrap();
    assert_eq!(parsed.fresh, Some(fresh));
    assert_eq!(parsed.payload, payload);
    assert_eq!(parsed.claims.nonce, full_claims().nonce);
}

#[test]
fn evidence_without_the_header_parses_with_none() {
    let parsed = parse_evidence(&assemble(good_protected(), Header::default())).unwrap();
    assert_eq!(parsed.fresh, None);
}

#[test]
fn malformed_fresh_headers_are_refused() {
    let uint = |n: u64| Value::Integer(Integer::from(n));
    let cases: Vec<(&str, Value)> = vec![
        ("not a map", Value::Bytes(vec![1])),
        ("a missing key", {
            let Value::Map(mut entries) = sample_value() else {
                unreachable!()
            };
            entries.pop();
            Value::Map(entries)
        }),
        ("an extra key", {
            let Value::Map(mut entries) = sample_value() else {
                unreachable!()
            };
            entries.push((uint(8), uint(0)));
            Value::Map(entries)
        }),
        ("a leaf outside the batch", set(sample_value(), 5, uint(5))),
        ("an empty batch", set(sample_value(), 6, uint(0))),
        (
            "a negative index",
            set(sample_value(), 5, Value::Integer(Integer::from(-1))),
        ),
        (
            "a batch over 2^16",
            set(sample_value(), 6, uint((1 << 16) + 1)),
        ),
        (
            "a short proof hash",
            set(
                sample_value(),
                7,
                Value::Array(vec![Value::Bytes(vec![0; 31])]),
            ),
        ),
        (
            "a proof too long",
            set(
                sample_value(),
                7,
                Value::Array(vec![Value::Bytes(vec![0; 32]); MAX_FRESH_PROOF + 1]),
            ),
        ),
        (
            "an empty AK",
            set(sample_value(), 1, Value::Bytes(Vec::new())),
        ),
        (
            "a huge quote",
            set(sample_value(), 2, Value::Bytes(vec![0; 4096])),
        ),
        (
            "a signature as text",
            set(sample_value(), 3, Value::Text("sig".into())),
        ),
        (
            "a PCR index of 32",
            set(
                sample_value(),
                4,
                Value::Array(vec![Value::Array(vec![
                    uint(11),
                    uint(32),
                    Value::Bytes(vec![0; 32]),
                ])]),
            ),
        ),
        (
            "a PCR bank over u16",
            set(
                sample_value(),
                4,
                Value::Array(vec![Value::Array(vec![
                    uint(1 << 20),
                    uint(0),
                    Value::Bytes(vec![0; 32]),
                ])]),
            ),
        ),
        (
            "an empty PCR value",
            set(
                sample_value(),
                4,
                Value::Array(vec![Value::Array(vec![
                    uint(11),
                    uint(0),
                    Value::Bytes(Vec::new()),
                ])]),
            ),
        ),
        (
            "a PCR as a map",
            set(
                sample_value(),
                4,
                Value::Array(vec![Value::Map(Vec::new())]),
            ),
        ),
    ];
    for (case, value) in cases {
        match parse_evidence(&with_fresh(value)) {
            Err(EvidenceError::Malformed(reason)) => {
                assert!(reason.contains("-65538"), "{case}: {reason}")
            }
            other => panic!("{case}: {other:?}"),
        }
    }
}

#[test]
fn the_fresh_header_in_the_unprotected_bucket_is_refused() {
    let unprotected = Header {
        rest: vec![(Label::Int(labels::FRESH_QUOTE), sample_value())],
        ..Header::default()
    };
    assert!(matches!(
        parse_evidence(&assemble(good_protected(), unprotected)),
        Err(EvidenceError::Malformed(_))
    ));
}

#[test]
fn the_signer_refuses_an_inconsistent_fresh_header() {
    let mut fresh = sample();
    fresh.leaf_index = fresh.leaf_count;
    let result = sign_payload(
        full_claims().to_cbor().unwrap(),
        &session_point(),
        &Headers {
            x5chain: &[],
            fresh: Some(&fresh),
        },
        |_| Ok(DUMMY_SIGNATURE.to_vec()),
    );
    assert!(matches!(result, Err(EvidenceError::Encode(_))));
}
