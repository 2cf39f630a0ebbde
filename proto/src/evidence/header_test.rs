//! The protected header and session key: what `parse_evidence` refuses (wrong
//! algorithm, critical parameters it does not process, malformed or misplaced
//! keys) and what it tolerates (unknown, non-critical parameters).

use ciborium::value::Value;
use coset::iana::{self, EnumI64};
use coset::{ContentType, Header, Label, RegisteredLabelWithPrivate};

use super::claims_test::full_claims;
use super::cose_test::session_point;
use super::cose_test::{
    assemble, ec2_key, encode, good_protected, int, session_key_value, with_session_key,
    DUMMY_SIGNATURE,
};
use super::{labels, parse_evidence, sign_certified_evidence, EvidenceError, MAX_X5CHAIN_CERTS};

#[test]
fn an_algorithm_other_than_es256_is_refused() {
    let protected = Header {
        alg: Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES384)),
        ..good_protected()
    };
    assert_eq!(
        parse_evidence(&assemble(protected, Header::default())),
        Err(EvidenceError::UnsupportedAlgorithm {
            found: "-35".to_owned()
        })
    );
}

#[test]
fn evidence_without_an_algorithm_is_refused() {
    let protected = Header {
        alg: None,
        ..good_protected()
    };
    assert!(matches!(
        parse_evidence(&assemble(protected, Header::default())),
        Err(EvidenceError::UnsupportedAlgorithm { .. })
    ));
}

#[test]
fn an_algorithm_only_in_the_unprotected_header_is_refused() {
    let protected = Header {
        alg: None,
        ..good_protected()
    };
    let unprotected = Header {
        alg: Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256)),
        ..Header::default()
    };
    assert!(parse_evidence(&assemble(protected, unprotected)).is_err());
}

#[test]
fn a_critical_parameter_attestd_does_not_understand_is_refused() {
    let mut protected = good_protected();
    protected.rest.push((Label::Int(99), Value::Bool(true)));
    protected.crit = vec![RegisteredLabelWithPrivate::PrivateUse(99)];
    assert_eq!(
        parse_evidence(&assemble(protected, Header::default())),
        Err(EvidenceError::UnknownCriticalHeader {
            label: "99".to_owned()
        })
    );
}

#[test]
fn a_critical_registered_parameter_attestd_does_not_process_is_refused() {
    let protected = Header {
        key_id: b"kid".to_vec(),
        crit: vec![RegisteredLabelWithPrivate::Assigned(
            iana::HeaderParameter::Kid,
        )],
        ..good_protected()
    };
    assert!(matches!(
        parse_evidence(&assemble(protected, Header::default())),
        Err(EvidenceError::UnknownCriticalHeader { .. })
    ));
}

#[test]
fn critical_parameters_attestd_understands_are_accepted() {
    let protected = Header {
        crit: vec![
            RegisteredLabelWithPrivate::Assigned(iana::HeaderParameter::Alg),
            RegisteredLabelWithPrivate::PrivateUse(labels::SESSION_KEY),
        ],
        ..good_protected()
    };
    assert!(parse_evidence(&assemble(protected, Header::default())).is_ok());
}

#[test]
fn a_critical_parameter_that_is_absent_is_refused() {
    let protected = Header {
        content_type: None,
        crit: vec![RegisteredLabelWithPrivate::Assigned(
            iana::HeaderParameter::ContentType,
        )],
        ..good_protected()
    };
    assert!(matches!(
        parse_evidence(&assemble(protected, Header::default())),
        Err(EvidenceError::Malformed(_))
    ));
}

#[test]
fn an_empty_crit_array_is_refused() {
    // coset cannot emit `crit: []`, so write the protected header by hand.
    let protected = Value::Map(vec![
        (int(1), int(-7)),
        (int(2), Value::Array(vec![])),
        (int(-65537), session_key_value()),
    ]);
    let evidence = encode(&Value::Tag(
        18,
        Box::new(Value::Array(vec![
            Value::Bytes(encode(&protected)),
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

#[test]
fn unknown_header_parameters_are_ignored() {
    let mut protected = good_protected();
    protected
        .rest
        .push((Label::Int(99), Value::Bytes(vec![0x30])));
    protected
        .rest
        .push((Label::Text("future".to_owned()), Value::Null));
    let unprotected = Header {
        key_id: b"kid-1".to_vec(),
        ..Header::default()
    };
    assert!(parse_evidence(&assemble(protected, unprotected)).is_ok());
}

#[test]
fn a_content_type_other_than_eat_ucs_is_refused() {
    let protected = Header {
        content_type: Some(ContentType::Text("application/cwt".to_owned())),
        ..good_protected()
    };
    assert!(matches!(
        parse_evidence(&assemble(protected, Header::default())),
        Err(EvidenceError::Malformed(_))
    ));
}

#[test]
fn a_missing_content_type_is_tolerated() {
    let protected = Header {
        content_type: None,
        ..good_protected()
    };
    assert!(parse_evidence(&assemble(protected, Header::default())).is_ok());
}

#[test]
fn evidence_without_a_session_key_is_refused() {
    let protected = Header {
        rest: Vec::new(),
        ..good_protected()
    };
    assert!(matches!(
        parse_evidence(&assemble(protected, Header::default())),
        Err(EvidenceError::InvalidSessionKey(_))
    ));
}

#[test]
fn a_session_key_only_in_the_unprotected_header_is_refused() {
    let protected = Header {
        rest: Vec::new(),
        ..good_protected()
    };
    let unprotected = Header {
        rest: vec![(Label::Int(labels::SESSION_KEY), session_key_value())],
        ..Header::default()
    };
    assert!(parse_evidence(&assemble(protected, unprotected)).is_err());
}

#[test]
fn a_parameter_in_both_buckets_is_refused() {
    let mut protected = good_protected();
    protected.rest.push((Label::Int(99), Value::Bool(true)));
    let unprotected = Header {
        rest: vec![(Label::Int(99), Value::Bool(false))],
        ..Header::default()
    };
    assert!(matches!(
        parse_evidence(&assemble(protected, unprotected)),
        Err(EvidenceError::Malformed(_))
    ));
}

#[test]
fn malformed_session_keys_are_refused() {
    let x = || Value::Bytes(vec![1; 32]);
    let y = || Value::Bytes(vec![2; 32]);
    let cases = [
        (
            "P-384 curve",
            ec2_key(vec![(int(-1), int(2)), (int(-2), x()), (int(-3), y())]),
        ),
        (
            "short x",
            ec2_key(vec![
                (int(-1), int(1)),
                (int(-2), Value::Bytes(vec![1; 31])),
                (int(-3), y()),
            ]),
        ),
        (
            "compressed y",
            ec2_key(vec![
                (int(-1), int(1)),
                (int(-2), x()),
                (int(-3), Value::Bool(true)),
            ]),
        ),
        ("no y", ec2_key(vec![(int(-1), int(1)), (int(-2), x())])),
        ("no crv", ec2_key(vec![(int(-2), x()), (int(-3), y())])),
        (
            "private key",
            ec2_key(vec![
                (int(-1), int(1)),
                (int(-2), x()),
                (int(-3), y()),
                (int(-4), Value::Bytes(vec![3; 32])),
            ]),
        ),
        (
            "OKP key type",
            Value::Map(vec![(int(1), int(1)), (int(-1), int(6)), (int(-2), x())]),
        ),
        (
            "ES384-only key",
            ec2_key(vec![
                (int(3), int(-35)),
                (int(-1), int(1)),
                (int(-2), x()),
                (int(-3), y()),
            ]),
        ),
        ("not a map", Value::Bytes(vec![4; 65])),
    ];
    for (name, key) in cases {
        let result = parse_evidence(&assemble(with_session_key(key), Header::default()));
        assert!(
            matches!(result, Err(EvidenceError::InvalidSessionKey(_))),
            "{name}: {result:?}"
        );
    }
}

#[test]
fn a_session_key_with_an_es256_alg_and_kid_is_accepted() {
    let key = ec2_key(vec![
        (int(2), Value::Bytes(b"session-1".to_vec())),
        (int(3), int(-7)),
        (int(-1), int(1)),
        (int(-2), Value::Bytes(vec![1; 32])),
        (int(-3), Value::Bytes(vec![2; 32])),
    ]);
    let parsed =
        parse_evidence(&assemble(with_session_key(key), Header::default())).expect("parses");
    assert_eq!(
        parsed.session_public_key[..],
        [&[4][..], &[1; 32][..], &[2; 32][..]].concat()[..]
    );
}

#[test]
fn the_session_key_label_is_in_the_private_use_range() {
    // RFC 9052 §3.1: integer labels less than -65536 are private use.
    const { assert!(labels::SESSION_KEY < -65536) };
    assert_eq!(iana::HeaderParameter::from_i64(labels::SESSION_KEY), None);
}

// x5chain (RFC 9360): the node SVID chain. The parser carries it as opaque
// DER; the verifier checks it.

fn certified(chain: &[Vec<u8>]) -> Result<Vec<u8>, EvidenceError> {
    sign_certified_evidence(&full_claims(), &session_point(), chain, |_| {
        Ok(DUMMY_SIGNATURE.to_vec())
    })
}

fn with_x5chain(value: Value) -> Header {
    let mut protected = good_protected();
    protected.rest.push((Label::Int(labels::X5CHAIN), value));
    protected
}

#[test]
fn one_certificate_is_a_bstr_and_round_trips() {
    let evidence = certified(&[vec![0x30, 0x01, 0xaa]]).expect("signs");
    let protected = super::cose_test::outer_array(&evidence)[0].clone();
    let Value::Bytes(protected) = protected else {
        panic!("protected header is not a bstr")
    };
    let header: Value = ciborium::de::from_reader(protected.as_slice()).expect("decodes");
    let Value::Map(entries) = header else {
        panic!("protected header is not a map")
    };
    assert!(entries
        .iter()
        .any(|(key, value)| *key == int(33) && *value == Value::Bytes(vec![0x30, 0x01, 0xaa])));
    let parsed = parse_evidence(&evidence).expect("parses");
    assert_eq!(parsed.x5chain, vec![vec![0x30, 0x01, 0xaa]]);
}

#[test]
fn several_certificates_are_an_array_in_order() {
    let chain = vec![vec![0x30, 0x01], vec![0x30, 0x02], vec![0x30, 0x03]];
    let parsed = parse_evidence(&certified(&chain).expect("signs")).expect("parses");
    assert_eq!(parsed.x5chain, chain);
}

#[test]
fn evidence_without_x5chain_has_an_empty_chain() {
    let parsed = parse_evidence(&certified(&[]).expect("signs")).expect("parses");
    assert!(parsed.x5chain.is_empty());
}

#[test]
fn the_signer_refuses_overlong_or_empty_chains() {
    let long = vec![vec![0x30]; MAX_X5CHAIN_CERTS + 1];
    assert!(matches!(certified(&long), Err(EvidenceError::Encode(_))));
    assert!(matches!(
        certified(&[vec![0x30], vec![]]),
        Err(EvidenceError::Encode(_))
    ));
}

#[test]
fn malformed_x5chains_are_refused() {
    let cases = [
        (
            "an array of one",
            Value::Array(vec![Value::Bytes(vec![0x30])]),
        ),
        ("an empty array", Value::Array(vec![])),
        ("an integer", int(7)),
        ("an empty bstr", Value::Bytes(vec![])),
        (
            "an array holding text",
            Value::Array(vec![Value::Bytes(vec![0x30]), Value::Text("x".into())]),
        ),
        (
            "too many certificates",
            Value::Array(vec![Value::Bytes(vec![0x30]); MAX_X5CHAIN_CERTS + 1]),
        ),
    ];
    for (what, value) in cases {
        let result = parse_evidence(&assemble(with_x5chain(value), Header::default()));
        assert!(
            matches!(result, Err(EvidenceError::Malformed(_))),
            "{what}: {result:?}"
        );
    }
}

#[test]
fn x5chain_in_the_unprotected_header_is_refused() {
    let unprotected = Header {
        rest: vec![(Label::Int(labels::X5CHAIN), Value::Bytes(vec![0x30]))],
        ..Header::default()
    };
    assert!(matches!(
        parse_evidence(&assemble(good_protected(), unprotected)),
        Err(EvidenceError::Malformed(_))
    ));
}

#[test]
fn a_critical_x5chain_is_understood() {
    let mut protected = with_x5chain(Value::Bytes(vec![0x30, 0x00]));
    protected.crit = vec![RegisteredLabelWithPrivate::Assigned(
        iana::HeaderParameter::X5Chain,
    )];
    let parsed = parse_evidence(&assemble(protected, Header::default())).expect("parses");
    assert_eq!(parsed.x5chain, vec![vec![0x30, 0x00]]);
}
