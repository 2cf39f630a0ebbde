//! Bounded CBOR decoding and RFC 8949 §4.2.1 deterministic encoding over
//! ciborium values: the two primitives the claims codec and the COSE layer share.

use ciborium::value::Value;

use super::{EvidenceError, MAX_EVIDENCE_BYTES};

/// Deepest nesting accepted when decoding. attestd's own structures nest at
/// most four levels (tag, array, map, map); the rest is headroom for future
/// claims. The bound also keeps recursion on hostile input far from the stack's end.
pub(crate) const MAX_DEPTH: usize = 16;

/// Decodes exactly one CBOR item from `bytes`: size-capped, depth-capped, and
/// with nothing after it (trailing bytes would be unsigned-looking noise that
/// two parsers could read differently).
pub(crate) fn decode_bounded(bytes: &[u8]) -> Result<Value, EvidenceError> {
    if bytes.len() > MAX_EVIDENCE_BYTES {
        return Err(EvidenceError::TooLarge {
            len: bytes.len(),
            max: MAX_EVIDENCE_BYTES,
        });
    }
    let mut reader = bytes;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut reader, MAX_DEPTH)
        .map_err(|error| EvidenceError::Malformed(format!("not well-formed CBOR: {error}")))?;
    if !reader.is_empty() {
        return Err(EvidenceError::Malformed(format!(
            "{} bytes follow the CBOR item",
            reader.len()
        )));
    }
    Ok(value)
}

/// Why a value has no deterministic encoding.
#[derive(Debug)]
pub(crate) enum DeterministicError {
    /// Two entries of one map have the same key: no order makes that deterministic.
    DuplicateKey,
    Encode(String),
}

/// Encodes `value` deterministically: ciborium already writes preferred
/// (shortest) heads and definite lengths, so what is left is sorting every map
/// by the bytewise order of its encoded keys.
pub(crate) fn encode_deterministic(value: Value) -> Result<Vec<u8>, DeterministicError> {
    encode(&sort_maps(value)?)
}

fn encode(value: &Value) -> Result<Vec<u8>, DeterministicError> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out)
        .map_err(|error| DeterministicError::Encode(error.to_string()))?;
    Ok(out)
}

fn sort_maps(value: Value) -> Result<Value, DeterministicError> {
    match value {
        Value::Map(entries) => {
            let mut keyed = Vec::with_capacity(entries.len());
            for (key, item) in entries {
                let key = sort_maps(key)?;
                keyed.push((encode(&key)?, key, sort_maps(item)?));
            }
            keyed.sort_by(|left, right| left.0.cmp(&right.0));
            let duplicate = keyed.windows(2).any(|pair| match pair {
                [left, right] => left.0 == right.0,
                _ => false,
            });
            if duplicate {
                return Err(DeterministicError::DuplicateKey);
            }
            Ok(Value::Map(
                keyed
                    .into_iter()
                    .map(|(_, key, item)| (key, item))
                    .collect(),
            ))
        }
        Value::Array(items) => Ok(Value::Array(
            items.into_iter().map(sort_maps).collect::<Result<_, _>>()?,
        )),
        Value::Tag(tag, inner) => Ok(Value::Tag(tag, Box::new(sort_maps(*inner)?))),
        other => Ok(other),
    }
}
