//! The COSE_Sign1 envelope: signing claims into evidence, and taking evidence
//! apart into what a verifier checks (Sig_structure, signature, session key).

use ciborium::value::Value;
use coset::iana::{self, EnumI64};
use coset::{
    AsCborValue, ContentType, CoseKey, CoseKeyBuilder, CoseSign1, CoseSign1Builder, Header,
    KeyType, Label, RegisteredLabel, RegisteredLabelWithPrivate, TaggedCborSerializable,
};

use super::cbor::decode_bounded;
use super::claims::kind;
use super::fresh::FreshQuote;
use super::{
    labels, EvidenceClaims, EvidenceError, CONTENT_TYPE, MAX_EVIDENCE_BYTES, MAX_X5CHAIN_CERTS,
    SESSION_KEY_LEN, SIGNATURE_LEN,
};

/// Length of one P-256 coordinate.
const COORDINATE_LEN: usize = 32;
/// SEC1 prefix of an uncompressed point.
const SEC1_UNCOMPRESSED: u8 = 0x04;

/// Signed evidence taken apart, before anything is verified: the payload is
/// still bytes, so a verifier can check the signature before it interprets a
/// single claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceEnvelope {
    /// The CBOR claims set, exactly as signed.
    pub payload: Vec<u8>,
    /// Uncompressed SEC1 P-256 point (`0x04 || x || y`) from protected header -65537.
    pub session_public_key: [u8; SESSION_KEY_LEN],
    /// DER certificates from protected header 33 (`x5chain`), leaf first:
    /// the node SVID for the session key, then intermediates. Empty when the
    /// evidence carries none. Not verified here.
    pub x5chain: Vec<Vec<u8>>,
    /// Protected header -65538: the batched TPM quote and this evidence's
    /// inclusion proof, when the caller asked for hardware-fresh evidence.
    /// Not verified here.
    pub fresh: Option<FreshQuote>,
    /// The COSE Sig_structure ("Signature1", protected bytes as received,
    /// empty external AAD, payload): what the signature covers.
    pub tbs: Vec<u8>,
    /// Raw ES256 signature, `r || s`.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Signed evidence taken apart, claims decoded. Nothing here is verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEvidence {
    pub claims: EvidenceClaims,
    /// Uncompressed SEC1 P-256 point (`0x04 || x || y`) from protected header -65537.
    pub session_public_key: [u8; SESSION_KEY_LEN],
    /// DER certificates from `x5chain`, leaf first; empty when absent.
    pub x5chain: Vec<Vec<u8>>,
    /// The hardware-fresh header, when present.
    pub fresh: Option<FreshQuote>,
    /// The CBOR claims set, exactly as signed (a hardware-fresh leaf binds its digest).
    pub payload: Vec<u8>,
    /// The COSE Sig_structure the signature covers.
    pub tbs: Vec<u8>,
    /// Raw ES256 signature, `r || s`.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Signs `claims` into a tagged COSE_Sign1. `session_public_key` is the
/// uncompressed SEC1 P-256 point (ring's `EcdsaKeyPair::public_key()`); `sign`
/// receives the Sig_structure bytes and returns the raw 64-byte `r || s`
/// signature (ring's `ECDSA_P256_SHA256_FIXED_SIGNING`).
pub fn sign_evidence(
    claims: &EvidenceClaims,
    session_public_key: &[u8],
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, EvidenceError>,
) -> Result<Vec<u8>, EvidenceError> {
    sign_certified_evidence(claims, session_public_key, &[], sign)
}

/// As [`sign_evidence`], and also puts `x5chain` (DER, leaf first: the node
/// SVID that certifies `session_public_key`, then intermediates) into the
/// protected header as parameter 33. An empty chain adds nothing. The chain
/// is not checked here; the verifier checks it against its trust bundle.
pub fn sign_certified_evidence(
    claims: &EvidenceClaims,
    session_public_key: &[u8],
    x5chain: &[Vec<u8>],
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, EvidenceError>,
) -> Result<Vec<u8>, EvidenceError> {
    sign_payload(
        claims.to_cbor()?,
        session_public_key,
        &Headers {
            x5chain,
            fresh: None,
        },
        sign,
    )
}

/// The optional protected header parameters of evidence.
#[derive(Debug, Clone, Copy, Default)]
pub struct Headers<'a> {
    /// `x5chain` (33): DER, leaf first; empty adds nothing.
    pub x5chain: &'a [Vec<u8>],
    /// The hardware-fresh quote and proof (-65538).
    pub fresh: Option<&'a FreshQuote>,
}

/// Signs an already encoded claims set (from [`EvidenceClaims::to_cbor`]).
/// Hardware-fresh evidence needs this split: the leaf binds the payload's
/// digest before the quote over the batch exists, and the quote then goes
/// into the header of the evidence signed over that same payload.
pub fn sign_payload(
    payload: Vec<u8>,
    session_public_key: &[u8],
    headers: &Headers<'_>,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, EvidenceError>,
) -> Result<Vec<u8>, EvidenceError> {
    let point = sec1_point(session_public_key)?;
    let mut rest = vec![(Label::Int(labels::SESSION_KEY), session_cose_key(&point)?)];
    if let Some(chain) = x5chain_value(headers.x5chain)? {
        rest.push((Label::Int(labels::X5CHAIN), chain));
    }
    if let Some(fresh) = headers.fresh {
        rest.push((Label::Int(labels::FRESH_QUOTE), fresh.to_value()?));
    }
    let protected = Header {
        alg: Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256)),
        content_type: Some(ContentType::Text(CONTENT_TYPE.to_owned())),
        rest,
        ..Header::default()
    };
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .try_create_signature(&[], |tbs| {
            let signature = sign(tbs)?;
            if signature.len() == SIGNATURE_LEN {
                Ok(signature)
            } else {
                Err(EvidenceError::Signing(format!(
                    "the signer returned {} bytes; ES256 needs the raw {SIGNATURE_LEN}-byte r || s",
                    signature.len()
                )))
            }
        })?
        .build();
    let evidence = sign1
        .to_tagged_vec()
        .map_err(|error| EvidenceError::Encode(error.to_string()))?;
    if evidence.len() > MAX_EVIDENCE_BYTES {
        return Err(EvidenceError::TooLarge {
            len: evidence.len(),
            max: MAX_EVIDENCE_BYTES,
        });
    }
    Ok(evidence)
}

/// Takes evidence apart and decodes its claims. Checks structure only: the
/// signature is not verified (that is `attestd_verifier::evidence`'s job).
pub fn parse_evidence(bytes: &[u8]) -> Result<ParsedEvidence, EvidenceError> {
    let envelope = parse_envelope(bytes)?;
    Ok(ParsedEvidence {
        claims: EvidenceClaims::from_cbor(&envelope.payload)?,
        session_public_key: envelope.session_public_key,
        x5chain: envelope.x5chain,
        fresh: envelope.fresh,
        payload: envelope.payload,
        tbs: envelope.tbs,
        signature: envelope.signature,
    })
}

/// Takes evidence apart without decoding the claims. Rejects anything but a
/// tagged COSE_Sign1 with an attached payload whose protected header says
/// ES256, lists no critical parameter it does not understand, and carries a
/// well-formed P-256 session key. Unknown header parameters are ignored.
pub fn parse_envelope(bytes: &[u8]) -> Result<EvidenceEnvelope, EvidenceError> {
    let value = decode_bounded(bytes)?;
    let Value::Tag(tag, inner) = value else {
        return Err(malformed(
            "evidence is not a CBOR-tagged COSE_Sign1 (tag 18)",
        ));
    };
    if tag != CoseSign1::TAG {
        return Err(EvidenceError::Malformed(format!(
            "evidence has CBOR tag {tag}, not 18 (COSE_Sign1)"
        )));
    }
    // coset decodes the protected header with ciborium's default depth limit
    // (256) and refuses crit labels it has no name for; decoding the header
    // here first holds it to our depth limit and lets every unknown critical
    // parameter be reported as such.
    if let Value::Array(items) = inner.as_ref() {
        if let Some(Value::Bytes(protected)) = items.first() {
            if !protected.is_empty() {
                check_critical(&decode_bounded(protected)?)?;
            }
        }
    }
    let sign1 = CoseSign1::from_cbor_value(*inner)
        .map_err(|error| EvidenceError::Malformed(format!("not a COSE_Sign1: {error}")))?;

    let protected = &sign1.protected.header;
    check_algorithm(protected)?;
    check_content_type(protected)?;
    let session_public_key = session_key(protected)?;
    let x5chain = x5chain(protected)?;
    let fresh = find_rest(protected, labels::FRESH_QUOTE)
        .map(FreshQuote::from_value)
        .transpose()?;
    check_unprotected(&sign1.unprotected, protected)?;

    let signature = <[u8; SIGNATURE_LEN]>::try_from(sign1.signature.as_slice()).map_err(|_| {
        EvidenceError::Malformed(format!(
            "signature is {} bytes; ES256 signatures are {SIGNATURE_LEN}",
            sign1.signature.len()
        ))
    })?;
    // Computed from the protected header bytes as received, never re-encoded:
    // re-encoding could change them and break (or forge) the signature check.
    let tbs = sign1.tbs_data(&[]);
    let payload = sign1
        .payload
        .ok_or_else(|| malformed("detached payloads are not supported"))?;
    Ok(EvidenceEnvelope {
        payload,
        session_public_key,
        x5chain,
        fresh,
        tbs,
        signature,
    })
}

fn sec1_point(key: &[u8]) -> Result<[u8; SESSION_KEY_LEN], EvidenceError> {
    match <[u8; SESSION_KEY_LEN]>::try_from(key) {
        Ok(point) if point[0] == SEC1_UNCOMPRESSED => Ok(point),
        _ => Err(EvidenceError::InvalidSessionKey(format!(
            "expected a {SESSION_KEY_LEN}-byte uncompressed SEC1 P-256 point (0x04 || x || y), got {} bytes",
            key.len()
        ))),
    }
}

fn session_cose_key(point: &[u8; SESSION_KEY_LEN]) -> Result<Value, EvidenceError> {
    let (x, y) = point[1..].split_at(COORDINATE_LEN);
    CoseKeyBuilder::new_ec2_pub_key(iana::EllipticCurve::P_256, x.to_vec(), y.to_vec())
        .build()
        .to_cbor_value()
        .map_err(|error| EvidenceError::Encode(error.to_string()))
}

/// RFC 9052 §3.1: a recipient must reject a message whose `crit` names a
/// parameter it does not process. attestd processes alg, content type and the
/// session key; each label crit names must also be present.
fn check_critical(protected: &Value) -> Result<(), EvidenceError> {
    let Value::Map(entries) = protected else {
        // Not a header map at all: coset reports that.
        return Ok(());
    };
    let crit_key = Value::from(iana::HeaderParameter::Crit.to_i64());
    let Some((_, crit)) = entries.iter().find(|(key, _)| *key == crit_key) else {
        return Ok(());
    };
    let Value::Array(critical) = crit else {
        return Err(malformed("crit is not an array"));
    };
    if critical.is_empty() {
        return Err(malformed(
            "crit is an empty array (RFC 9052 requires at least one label)",
        ));
    }
    let understood = [
        iana::HeaderParameter::Alg.to_i64(),
        iana::HeaderParameter::ContentType.to_i64(),
        labels::SESSION_KEY,
        labels::X5CHAIN,
        labels::FRESH_QUOTE,
    ]
    .map(Value::from);
    for label in critical {
        if !understood.contains(label) {
            return Err(EvidenceError::UnknownCriticalHeader {
                label: describe_value(label),
            });
        }
        if !entries.iter().any(|(key, _)| key == label) {
            return Err(EvidenceError::Malformed(format!(
                "critical header parameter {} is absent",
                describe_value(label)
            )));
        }
    }
    Ok(())
}

fn describe_value(label: &Value) -> String {
    match label {
        Value::Integer(integer) => i128::from(*integer).to_string(),
        Value::Text(text) => format!("{text:?}"),
        other => format!("of CBOR type {}", kind(other)),
    }
}

fn check_algorithm(protected: &Header) -> Result<(), EvidenceError> {
    match &protected.alg {
        Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256)) => Ok(()),
        Some(other) => Err(EvidenceError::UnsupportedAlgorithm {
            found: describe_label(other),
        }),
        None => Err(EvidenceError::UnsupportedAlgorithm {
            found: "none (no alg in the protected header)".to_owned(),
        }),
    }
}

/// The content type is informational, but one that says "something else"
/// means the payload is not an attestd claims set.
fn check_content_type(protected: &Header) -> Result<(), EvidenceError> {
    match &protected.content_type {
        None => Ok(()),
        Some(RegisteredLabel::Text(text)) if text == CONTENT_TYPE => Ok(()),
        Some(other) => Err(EvidenceError::Malformed(format!(
            "content type {other:?} is not {CONTENT_TYPE:?}"
        ))),
    }
}

/// RFC 9360 §2: one certificate is a bstr, several are an array of bstr.
fn x5chain_value(chain: &[Vec<u8>]) -> Result<Option<Value>, EvidenceError> {
    if chain.len() > MAX_X5CHAIN_CERTS {
        return Err(EvidenceError::Encode(format!(
            "x5chain has {} certificates; at most {MAX_X5CHAIN_CERTS} are allowed",
            chain.len()
        )));
    }
    if chain.iter().any(Vec::is_empty) {
        return Err(EvidenceError::Encode(
            "x5chain holds an empty certificate".to_owned(),
        ));
    }
    Ok(match chain {
        [] => None,
        [leaf] => Some(Value::Bytes(leaf.clone())),
        many => Some(Value::Array(
            many.iter().cloned().map(Value::Bytes).collect(),
        )),
    })
}

/// Reads `x5chain` in either RFC 9360 form. The certificates stay opaque
/// bytes here; the verifier parses and checks them.
fn x5chain(protected: &Header) -> Result<Vec<Vec<u8>>, EvidenceError> {
    let Some(value) = find_rest(protected, labels::X5CHAIN) else {
        return Ok(Vec::new());
    };
    let certificate = |value: &Value| match value {
        Value::Bytes(der) if !der.is_empty() => Ok(der.clone()),
        Value::Bytes(_) => Err(malformed("x5chain holds an empty certificate")),
        other => Err(EvidenceError::Malformed(format!(
            "x5chain holds a CBOR {}, not a bstr certificate",
            kind(other)
        ))),
    };
    match value {
        Value::Array(items) if items.len() < 2 => Err(malformed(
            "x5chain is an array of fewer than two certificates (RFC 9360 uses a bstr for one)",
        )),
        Value::Array(items) if items.len() > MAX_X5CHAIN_CERTS => {
            Err(EvidenceError::Malformed(format!(
                "x5chain has {} certificates; at most {MAX_X5CHAIN_CERTS} are accepted",
                items.len()
            )))
        }
        Value::Array(items) => items.iter().map(certificate).collect(),
        single => Ok(vec![certificate(single)?]),
    }
}

/// The session key: a COSE_Key (RFC 9053 §7.1.1) for a P-256 public key and
/// nothing else, so a key whose meaning we only partly understand is refused.
fn session_key(protected: &Header) -> Result<[u8; SESSION_KEY_LEN], EvidenceError> {
    let value = find_rest(protected, labels::SESSION_KEY)
        .ok_or_else(|| invalid_key("absent from the protected header"))?;
    let key = CoseKey::from_cbor_value(value.clone())
        .map_err(|error| EvidenceError::InvalidSessionKey(format!("not a COSE_Key: {error}")))?;
    if key.kty != KeyType::Assigned(iana::KeyType::EC2) {
        return Err(invalid_key("kty is not EC2 (2)"));
    }
    match &key.alg {
        None | Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256)) => {}
        Some(other) => {
            return Err(EvidenceError::InvalidSessionKey(format!(
                "restricted to algorithm {}, not ES256",
                describe_label(other)
            )))
        }
    }
    if !key.key_ops.is_empty() || !key.base_iv.is_empty() {
        return Err(invalid_key("key_ops and base_iv are not used by attestd"));
    }

    let mut curve_seen = false;
    let mut x = None;
    let mut y = None;
    for (label, item) in &key.params {
        let Label::Int(label) = label else {
            return Err(invalid_key("has a text-labelled parameter"));
        };
        match iana::Ec2KeyParameter::from_i64(*label) {
            Some(iana::Ec2KeyParameter::Crv) => {
                if *item != Value::from(iana::EllipticCurve::P_256.to_i64()) {
                    return Err(invalid_key("crv is not P-256 (1)"));
                }
                curve_seen = true;
            }
            Some(iana::Ec2KeyParameter::X) => x = Some(coordinate(item, "x")?),
            Some(iana::Ec2KeyParameter::Y) => y = Some(coordinate(item, "y")?),
            Some(iana::Ec2KeyParameter::D) => {
                return Err(invalid_key("carries a private key (d)"));
            }
            _ => {
                return Err(EvidenceError::InvalidSessionKey(format!(
                    "unexpected parameter {label}"
                )))
            }
        }
    }
    if !curve_seen {
        return Err(invalid_key("crv is absent"));
    }
    let x = x.ok_or_else(|| invalid_key("x is absent"))?;
    let y = y.ok_or_else(|| invalid_key("y is absent (compressed points are not supported)"))?;
    let mut point = [0u8; SESSION_KEY_LEN];
    point[0] = SEC1_UNCOMPRESSED;
    point[1..=COORDINATE_LEN].copy_from_slice(x);
    point[COORDINATE_LEN + 1..].copy_from_slice(y);
    Ok(point)
}

fn coordinate<'a>(value: &'a Value, name: &str) -> Result<&'a [u8], EvidenceError> {
    match value {
        Value::Bytes(bytes) if bytes.len() == COORDINATE_LEN => Ok(bytes),
        Value::Bytes(bytes) => Err(EvidenceError::InvalidSessionKey(format!(
            "{name} is {} bytes, not {COORDINATE_LEN}",
            bytes.len()
        ))),
        _ => Err(EvidenceError::InvalidSessionKey(format!(
            "{name} is not a byte string"
        ))),
    }
}

/// Parameters that decide how evidence is verified must be integrity
/// protected (RFC 9052 §3.1 requires it of crit), and a label in both buckets
/// invites a parser to pick the unprotected one.
fn check_unprotected(unprotected: &Header, protected: &Header) -> Result<(), EvidenceError> {
    if unprotected.alg.is_some()
        || !unprotected.crit.is_empty()
        || find_rest(unprotected, labels::SESSION_KEY).is_some()
        || find_rest(unprotected, labels::X5CHAIN).is_some()
        || find_rest(unprotected, labels::FRESH_QUOTE).is_some()
    {
        return Err(malformed(
            "alg, crit, the session key, x5chain and the hardware-fresh quote must be in the protected header",
        ));
    }
    let protected_labels = header_labels(protected);
    if let Some(shared) = header_labels(unprotected)
        .into_iter()
        .find(|label| protected_labels.contains(label))
    {
        return Err(EvidenceError::Malformed(format!(
            "header parameter {shared:?} is both protected and unprotected"
        )));
    }
    Ok(())
}

fn header_labels(header: &Header) -> Vec<Label> {
    let core = [
        (header.alg.is_some(), iana::HeaderParameter::Alg),
        (!header.crit.is_empty(), iana::HeaderParameter::Crit),
        (
            header.content_type.is_some(),
            iana::HeaderParameter::ContentType,
        ),
        (!header.key_id.is_empty(), iana::HeaderParameter::Kid),
        (!header.iv.is_empty(), iana::HeaderParameter::Iv),
        (
            !header.partial_iv.is_empty(),
            iana::HeaderParameter::PartialIv,
        ),
        (
            !header.counter_signatures.is_empty(),
            iana::HeaderParameter::CounterSignature,
        ),
    ];
    core.into_iter()
        .filter(|(present, _)| *present)
        .map(|(_, parameter)| Label::Int(parameter.to_i64()))
        .chain(header.rest.iter().map(|(label, _)| label.clone()))
        .collect()
}

fn find_rest(header: &Header, label: i64) -> Option<&Value> {
    header
        .rest
        .iter()
        .find(|(candidate, _)| *candidate == Label::Int(label))
        .map(|(_, value)| value)
}

fn describe_label<T: EnumI64 + iana::WithPrivateRange>(
    label: &RegisteredLabelWithPrivate<T>,
) -> String {
    match label {
        RegisteredLabelWithPrivate::Assigned(assigned) => assigned.to_i64().to_string(),
        RegisteredLabelWithPrivate::PrivateUse(private) => private.to_string(),
        RegisteredLabelWithPrivate::Text(text) => format!("{text:?}"),
    }
}

fn malformed(reason: &str) -> EvidenceError {
    EvidenceError::Malformed(reason.to_owned())
}

fn invalid_key(reason: &str) -> EvidenceError {
    EvidenceError::InvalidSessionKey(reason.to_owned())
}
