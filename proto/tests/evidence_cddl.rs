//! CDDL conformance: what `attestd_proto::evidence` emits must validate against
//! docs/evidence.cddl under an independent validator (the `cddl` crate), so
//! the encoder and the published schema cannot drift apart unnoticed.

use attestd_proto::evidence::{
    sign_certified_evidence, sign_evidence, sign_payload, BinaryClaim, EvidenceClaims, FreshPcr,
    FreshQuote, Headers, HostClaims,
};
use ciborium::value::{Integer, Value};
use proptest::prelude::*;

const SCHEMA: &str = include_str!("../../docs/evidence.cddl");

/// Validates `cbor` against `rule` of docs/evidence.cddl. The validator takes
/// the first rule as the root, so a one-line alias in front selects the rule.
fn validate(rule: &str, cbor: &[u8]) -> Result<(), String> {
    let schema = format!("validation-root = {rule}\n{SCHEMA}");
    cddl::validate_cbor_from_slice(&schema, cbor, None).map_err(|error| error.to_string())
}

fn full_claims() -> EvidenceClaims {
    EvidenceClaims {
        nonce: vec![0x42; 32],
        ueid: Some([&[0x01][..], &[0x11; 32][..]].concat()),
        issued_at: 1_767_225_600,
        selectors: vec![
            "unix:uid:1000".to_owned(),
            "cgroup:path:/system.slice/foo.service".to_owned(),
            format!("container:id:{}", "a".repeat(64)),
        ],
        binary: Some(BinaryClaim {
            path: "/usr/bin/foo".to_owned(),
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

fn minimal_claims() -> EvidenceClaims {
    EvidenceClaims {
        nonce: vec![1; 8],
        ueid: None,
        issued_at: 0,
        selectors: Vec::new(),
        binary: None,
        host: HostClaims::default(),
        audience: None,
    }
}

fn session_point() -> Vec<u8> {
    std::iter::once(0x04).chain(1..=64).collect()
}

/// The signature's value is irrelevant to the schema; its size is not.
fn signed(claims: &EvidenceClaims) -> Vec<u8> {
    sign_evidence(claims, &session_point(), |_| Ok(vec![0x5a; 64])).expect("signs")
}

fn encode(value: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(value, &mut bytes).expect("encodes");
    bytes
}

fn decode(bytes: &[u8]) -> Value {
    ciborium::de::from_reader(bytes).expect("decodes")
}

/// The full claims' map with one entry replaced, added, or (value `None`) removed.
fn drifted_claims(key: Value, value: Option<Value>) -> Vec<u8> {
    let Value::Map(mut entries) = decode(&full_claims().to_cbor().expect("encodes")) else {
        panic!("claims are not a map");
    };
    entries.retain(|(existing, _)| *existing != key);
    if let Some(value) = value {
        entries.push((key, value));
    }
    encode(&Value::Map(entries))
}

fn int(value: i64) -> Value {
    Value::Integer(Integer::from(value))
}

#[test]
fn emitted_evidence_conforms_to_the_cddl() {
    for claims in [full_claims(), minimal_claims()] {
        validate("attestd-evidence", &signed(&claims)).expect("evidence conforms");
    }
}

#[test]
fn evidence_with_a_node_svid_chain_conforms_to_the_cddl() {
    for chain in [
        vec![vec![0x30; 300]],
        vec![vec![0x30; 300], vec![0x31; 200]],
    ] {
        let evidence = sign_certified_evidence(&full_claims(), &session_point(), &chain, |_| {
            Ok(vec![0x5a; 64])
        })
        .expect("signs");
        validate("attestd-evidence", &evidence).expect("certified evidence conforms");
    }
}

fn fresh(leaf_count: u64, proof_len: usize) -> FreshQuote {
    FreshQuote {
        ak_public: vec![0x00; 90],
        attest: vec![0xff; 145],
        signature: vec![0x00; 72],
        pcrs: (0..8)
            .map(|index| FreshPcr {
                bank: 0x000b,
                index,
                value: vec![index; 32],
            })
            .collect(),
        leaf_index: leaf_count - 1,
        leaf_count,
        proof: vec![[0xab; 32]; proof_len],
    }
}

#[test]
fn hardware_fresh_evidence_conforms_to_the_cddl() {
    for (count, proof_len) in [(1, 0), (5, 3), (65_536, 16)] {
        let evidence = sign_payload(
            full_claims().to_cbor().unwrap(),
            &session_point(),
            &Headers {
                x5chain: &[vec![0x30; 300]],
                fresh: Some(&fresh(count, proof_len)),
            },
            |_| Ok(vec![0x5a; 64]),
        )
        .expect("signs");
        validate("attestd-evidence", &evidence).expect("hardware-fresh evidence conforms");
    }
}

#[test]
fn the_schema_rejects_a_fresh_header_that_drifts_from_it() {
    let value = |fresh: &FreshQuote| {
        let evidence = sign_payload(
            full_claims().to_cbor().unwrap(),
            &session_point(),
            &Headers {
                x5chain: &[],
                fresh: Some(fresh),
            },
            |_| Ok(vec![0x5a; 64]),
        )
        .unwrap();
        let Value::Tag(_, inner) = decode(&evidence) else {
            panic!("not tagged")
        };
        let Value::Array(items) = *inner else {
            panic!("not an array")
        };
        let Value::Bytes(protected) = &items[0] else {
            panic!("protected is not a bstr")
        };
        let Value::Map(header) = decode(protected) else {
            panic!("not a map")
        };
        header
            .into_iter()
            .find(|(key, _)| *key == int(-65538))
            .map(|(_, value)| value)
            .unwrap()
    };
    let good = value(&fresh(5, 3));
    validate("attestd-fresh-quote", &encode(&good)).expect("the header conforms");
    let Value::Map(entries) = good else { panic!() };
    // A proof hash of 31 bytes, and a PCR index as text.
    let mut short_hash = entries.clone();
    short_hash[6].1 = Value::Array(vec![Value::Bytes(vec![0; 31])]);
    assert!(validate("attestd-fresh-quote", &encode(&Value::Map(short_hash))).is_err());
    let mut text_index = entries;
    text_index[3].1 = Value::Array(vec![Value::Array(vec![
        int(11),
        Value::Text("7".into()),
        Value::Bytes(vec![0; 32]),
    ])]);
    assert!(validate("attestd-fresh-quote", &encode(&Value::Map(text_index))).is_err());
}

#[test]
fn the_schema_rejects_an_x5chain_array_of_one() {
    // RFC 9360 writes a single certificate as a bare bstr; an encoder that
    // wraps it in an array has drifted from the schema.
    let evidence = signed(&full_claims());
    let Value::Tag(tag, inner) = decode(&evidence) else {
        panic!("not tagged")
    };
    let Value::Array(mut items) = *inner else {
        panic!("not an array")
    };
    let Value::Bytes(protected) = &items[0] else {
        panic!("protected is not a bstr")
    };
    let Value::Map(mut header) = decode(protected) else {
        panic!("protected header is not a map")
    };
    header.push((int(33), Value::Array(vec![Value::Bytes(vec![0x30; 10])])));
    items[0] = Value::Bytes(encode(&Value::Map(header)));
    let drifted = encode(&Value::Tag(tag, Box::new(Value::Array(items))));
    assert!(validate("attestd-evidence", &drifted).is_err());
}

#[test]
fn emitted_claims_conform_to_the_cddl() {
    for claims in [full_claims(), minimal_claims()] {
        validate("attestd-claims", &claims.to_cbor().expect("encodes")).expect("claims conform");
    }
}

#[test]
fn the_schema_rejects_claims_that_drift_from_it() {
    // Each of these is a plausible encoder bug; the validator must see it, or
    // the conformance tests above would prove nothing.
    let drifts = [
        (
            "nonce as text",
            drifted_claims(int(10), Some(Value::Text("x".repeat(16)))),
        ),
        (
            "short nonce",
            drifted_claims(int(10), Some(Value::Bytes(vec![1; 7]))),
        ),
        (
            "iat as float",
            drifted_claims(int(6), Some(Value::Float(1.5))),
        ),
        (
            "other profile",
            drifted_claims(int(265), Some(Value::Text("v2".to_owned()))),
        ),
        (
            "no host",
            drifted_claims(Value::Text("attestd.host".to_owned()), None),
        ),
        ("no profile", drifted_claims(int(265), None)),
        (
            "undocumented claim",
            drifted_claims(Value::Text("attestd.extra".to_owned()), Some(Value::Null)),
        ),
        (
            "32-byte ueid",
            drifted_claims(int(256), Some(Value::Bytes(vec![1; 32]))),
        ),
        (
            "selectors as map",
            drifted_claims(
                Value::Text("attestd.selectors".to_owned()),
                Some(Value::Map(vec![])),
            ),
        ),
    ];
    for (name, cbor) in drifts {
        assert!(
            validate("attestd-claims", &cbor).is_err(),
            "the schema accepted {name}"
        );
    }
}

#[test]
fn the_schema_rejects_envelopes_that_drift_from_it() {
    let Value::Tag(18, inner) = decode(&signed(&full_claims())) else {
        panic!("not tag 18");
    };
    let Value::Array(items) = *inner else {
        panic!("not an array");
    };
    let with_item = |index: usize, item: Value| {
        let mut items = items.clone();
        items[index] = item;
        encode(&Value::Tag(18, Box::new(Value::Array(items))))
    };
    let es384_header = encode(&Value::Map(vec![
        (int(1), int(-35)),
        (int(3), Value::Text("application/eat-ucs+cbor".to_owned())),
    ]));
    let drifts = [
        ("untagged", encode(&Value::Array(items.clone()))),
        (
            "ES384 without key",
            with_item(0, Value::Bytes(es384_header)),
        ),
        (
            "unprotected kid",
            with_item(1, Value::Map(vec![(int(4), Value::Bytes(b"k".to_vec()))])),
        ),
        ("detached payload", with_item(2, Value::Null)),
        ("DER signature", with_item(3, Value::Bytes(vec![0x30; 72]))),
    ];
    for (name, cbor) in drifts {
        assert!(
            validate("attestd-evidence", &cbor).is_err(),
            "the schema accepted {name}"
        );
    }
}

fn any_claims() -> impl Strategy<Value = EvidenceClaims> {
    let text = || "\\PC{0,24}";
    (
        proptest::collection::vec(any::<u8>(), 8..=64),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 32)),
        any::<i64>(),
        proptest::collection::vec(text(), 0..6),
        proptest::option::of((text(), any::<[u8; 32]>())),
        (text(), text(), text(), text()),
        proptest::option::of(text()),
    )
        .prop_map(
            |(nonce, ueid_digest, issued_at, selectors, binary, host, audience)| EvidenceClaims {
                nonce,
                ueid: ueid_digest.map(|digest| [&[0x01][..], &digest[..]].concat()),
                issued_at,
                selectors,
                binary: binary.map(|(path, sha256)| BinaryClaim { path, sha256 }),
                host: HostClaims {
                    hostname: host.0,
                    kernel: host.1,
                    os: host.2,
                    boot_id: host.3,
                },
                audience,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_evidence_attestd_can_emit_conforms_to_the_cddl(claims in any_claims()) {
        let evidence = signed(&claims);
        prop_assert!(validate("attestd-evidence", &evidence).is_ok(), "{:?}", validate("attestd-evidence", &evidence));
    }
}
