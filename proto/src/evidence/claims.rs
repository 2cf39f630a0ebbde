//! The EAT claims set carried as the COSE_Sign1 payload, and its strict,
//! bounded, deterministic CBOR codec.

use ciborium::value::{Integer, Value};

use super::cbor::{decode_bounded, encode_deterministic, DeterministicError};
use super::{
    labels, EvidenceError, MAX_EVIDENCE_BYTES, NONCE_MAX, NONCE_MIN, PROFILE, UEID_LEN,
    UEID_TYPE_RAND,
};

/// Claim names as they appear in errors: the EAT name and its CBOR key.
mod claim {
    pub(super) const EAT_NONCE: &str = "eat_nonce (10)";
    pub(super) const UEID: &str = "ueid (256)";
    pub(super) const IAT: &str = "iat (6)";
    pub(super) const EAT_PROFILE: &str = "eat_profile (265)";
    pub(super) const SELECTORS: &str = "attestd.selectors";
    pub(super) const BINARY: &str = "attestd.binary";
    pub(super) const BINARY_PATH: &str = "attestd.binary.path";
    pub(super) const BINARY_SHA256: &str = "attestd.binary.sha256";
    pub(super) const HOST: &str = "attestd.host";
    pub(super) const HOST_HOSTNAME: &str = "attestd.host.hostname";
    pub(super) const HOST_KERNEL: &str = "attestd.host.kernel";
    pub(super) const HOST_OS: &str = "attestd.host.os";
    pub(super) const HOST_BOOT_ID: &str = "attestd.host.boot_id";
    pub(super) const AUDIENCE: &str = "attestd.audience";
}

/// What attestd asserts about a workload, its binary and its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceClaims {
    /// The relying party's nonce, [`NONCE_MIN`]..=[`NONCE_MAX`] bytes.
    pub nonce: Vec<u8>,
    /// `0x01 || SHA-256(EK SubjectPublicKeyInfo DER)`; `None` without a TPM.
    pub ueid: Option<Vec<u8>>,
    /// Seconds since the Unix epoch.
    pub issued_at: i64,
    /// Workload selectors. Encoded sorted by UTF-8 bytes and without
    /// duplicates, whatever order they are given in.
    pub selectors: Vec<String>,
    /// `None` when hashing the binary failed or timed out.
    pub binary: Option<BinaryClaim>,
    pub host: HostClaims,
    pub audience: Option<String>,
}

/// The binary the workload process runs, as read through `/proc/<pid>/exe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryClaim {
    pub path: String,
    pub sha256: [u8; 32],
}

/// The host the daemon runs on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostClaims {
    pub hostname: String,
    pub kernel: String,
    pub os: String,
    pub boot_id: String,
}

impl EvidenceClaims {
    /// Encodes the claims set in deterministic CBOR (RFC 8949 §4.2.1). Refuses
    /// claims a verifier would refuse, so the daemon cannot sign what nobody accepts.
    pub fn to_cbor(&self) -> Result<Vec<u8>, EvidenceError> {
        check_nonce(&self.nonce)?;
        if let Some(ueid) = &self.ueid {
            check_ueid(ueid)?;
        }
        let mut selectors = self.selectors.clone();
        selectors.sort();
        selectors.dedup();

        let mut entries = vec![
            (int(labels::EAT_NONCE), Value::Bytes(self.nonce.clone())),
            (
                int(labels::IAT),
                Value::Integer(Integer::from(self.issued_at)),
            ),
            (int(labels::EAT_PROFILE), text(PROFILE)),
            (
                text(labels::SELECTORS),
                Value::Array(selectors.into_iter().map(Value::Text).collect()),
            ),
            (text(labels::HOST), self.host.to_value()),
        ];
        if let Some(ueid) = &self.ueid {
            entries.push((int(labels::UEID), Value::Bytes(ueid.clone())));
        }
        if let Some(binary) = &self.binary {
            entries.push((text(labels::BINARY), binary.to_value()));
        }
        if let Some(audience) = &self.audience {
            entries.push((text(labels::AUDIENCE), text(audience)));
        }

        let encoded = encode_deterministic(Value::Map(entries)).map_err(|error| match error {
            DeterministicError::DuplicateKey => {
                EvidenceError::Encode("duplicate claim key".to_owned())
            }
            DeterministicError::Encode(message) => EvidenceError::Encode(message),
        })?;
        if encoded.len() > MAX_EVIDENCE_BYTES {
            return Err(EvidenceError::TooLarge {
                len: encoded.len(),
                max: MAX_EVIDENCE_BYTES,
            });
        }
        Ok(encoded)
    }

    /// Decodes a claims set. Strict where it matters: one deterministic
    /// encoding only (so no two parsers can read the signed bytes differently),
    /// no duplicate keys, every known claim with exactly its documented type.
    /// Unknown claims are ignored, so later versions can add claims.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, EvidenceError> {
        let value = decode_bounded(bytes)?;
        match encode_deterministic(value.clone()) {
            Ok(canonical) if canonical == bytes => {}
            Ok(_) => {
                return Err(EvidenceError::Malformed(
                    "claims set is not in deterministic CBOR encoding (RFC 8949 §4.2.1)".to_owned(),
                ))
            }
            Err(DeterministicError::DuplicateKey) => {
                return Err(EvidenceError::Malformed(
                    "claims set has a duplicate map key".to_owned(),
                ))
            }
            Err(DeterministicError::Encode(message)) => {
                return Err(EvidenceError::Malformed(message))
            }
        }
        let Value::Map(entries) = value else {
            return Err(EvidenceError::Malformed(format!(
                "claims set is a CBOR {}, not a map",
                kind(&value)
            )));
        };

        let mut nonce = None;
        let mut ueid = None;
        let mut issued_at = None;
        let mut profile_seen = false;
        let mut selectors = None;
        let mut binary = None;
        let mut host = None;
        let mut audience = None;
        for (key, item) in entries {
            match MapKey::of(&key)? {
                MapKey::Int(labels::EAT_NONCE) => nonce = Some(decode_nonce(item)?),
                MapKey::Int(labels::UEID) => ueid = Some(decode_ueid(item)?),
                MapKey::Int(labels::IAT) => issued_at = Some(decode_iat(item)?),
                MapKey::Int(labels::EAT_PROFILE) => {
                    decode_profile(item)?;
                    profile_seen = true;
                }
                MapKey::Text(labels::SELECTORS) => selectors = Some(decode_selectors(item)?),
                MapKey::Text(labels::BINARY) => binary = Some(BinaryClaim::from_value(item)?),
                MapKey::Text(labels::HOST) => host = Some(HostClaims::from_value(item)?),
                MapKey::Text(labels::AUDIENCE) => {
                    audience = Some(expect_text(item, claim::AUDIENCE)?)
                }
                MapKey::Int(_) | MapKey::OtherInt | MapKey::Text(_) => {}
            }
        }
        if !profile_seen {
            return Err(missing(claim::EAT_PROFILE));
        }
        Ok(Self {
            nonce: nonce.ok_or_else(|| missing(claim::EAT_NONCE))?,
            ueid,
            issued_at: issued_at.ok_or_else(|| missing(claim::IAT))?,
            selectors: selectors.ok_or_else(|| missing(claim::SELECTORS))?,
            binary,
            host: host.ok_or_else(|| missing(claim::HOST))?,
            audience,
        })
    }
}

impl BinaryClaim {
    fn to_value(&self) -> Value {
        Value::Map(vec![
            (text("path"), text(&self.path)),
            (text("sha256"), Value::Bytes(self.sha256.to_vec())),
        ])
    }

    fn from_value(value: Value) -> Result<Self, EvidenceError> {
        let mut path = None;
        let mut sha256 = None;
        for (key, item) in expect_map(value, claim::BINARY)? {
            match MapKey::of(&key)? {
                MapKey::Text("path") => path = Some(expect_text(item, claim::BINARY_PATH)?),
                MapKey::Text("sha256") => {
                    let digest = expect_bytes(item, claim::BINARY_SHA256)?;
                    let len = digest.len();
                    sha256 = Some(<[u8; 32]>::try_from(digest).map_err(|_| {
                        invalid(claim::BINARY_SHA256, format!("{len} bytes, not 32"))
                    })?);
                }
                MapKey::Int(_) | MapKey::OtherInt | MapKey::Text(_) => {}
            }
        }
        Ok(Self {
            path: path.ok_or_else(|| missing(claim::BINARY_PATH))?,
            sha256: sha256.ok_or_else(|| missing(claim::BINARY_SHA256))?,
        })
    }
}

impl HostClaims {
    fn to_value(&self) -> Value {
        Value::Map(vec![
            (text("hostname"), text(&self.hostname)),
            (text("kernel"), text(&self.kernel)),
            (text("os"), text(&self.os)),
            (text("boot_id"), text(&self.boot_id)),
        ])
    }

    fn from_value(value: Value) -> Result<Self, EvidenceError> {
        let mut hostname = None;
        let mut kernel = None;
        let mut os = None;
        let mut boot_id = None;
        for (key, item) in expect_map(value, claim::HOST)? {
            match MapKey::of(&key)? {
                MapKey::Text("hostname") => {
                    hostname = Some(expect_text(item, claim::HOST_HOSTNAME)?)
                }
                MapKey::Text("kernel") => kernel = Some(expect_text(item, claim::HOST_KERNEL)?),
                MapKey::Text("os") => os = Some(expect_text(item, claim::HOST_OS)?),
                MapKey::Text("boot_id") => boot_id = Some(expect_text(item, claim::HOST_BOOT_ID)?),
                MapKey::Int(_) | MapKey::OtherInt | MapKey::Text(_) => {}
            }
        }
        Ok(Self {
            hostname: hostname.ok_or_else(|| missing(claim::HOST_HOSTNAME))?,
            kernel: kernel.ok_or_else(|| missing(claim::HOST_KERNEL))?,
            os: os.ok_or_else(|| missing(claim::HOST_OS))?,
            boot_id: boot_id.ok_or_else(|| missing(claim::HOST_BOOT_ID))?,
        })
    }
}

/// A claims-map key. EAT keys are ints or text strings; anything else is
/// malformed rather than "unknown", since no future claim can use it.
enum MapKey<'a> {
    Int(i64),
    /// An integer outside i64 cannot be a known label, but it is still a
    /// well-formed (unknown) claim key.
    OtherInt,
    Text(&'a str),
}

impl<'a> MapKey<'a> {
    fn of(key: &'a Value) -> Result<Self, EvidenceError> {
        match key {
            Value::Integer(integer) => {
                Ok(i64::try_from(*integer).map_or(Self::OtherInt, Self::Int))
            }
            Value::Text(name) => Ok(Self::Text(name)),
            other => Err(EvidenceError::Malformed(format!(
                "a claim key is a CBOR {}; claim keys are int or tstr",
                kind(other)
            ))),
        }
    }
}

fn check_nonce(nonce: &[u8]) -> Result<(), EvidenceError> {
    if (NONCE_MIN..=NONCE_MAX).contains(&nonce.len()) {
        Ok(())
    } else {
        Err(invalid(
            claim::EAT_NONCE,
            format!(
                "{} bytes; {NONCE_MIN} to {NONCE_MAX} are allowed",
                nonce.len()
            ),
        ))
    }
}

fn check_ueid(ueid: &[u8]) -> Result<(), EvidenceError> {
    match ueid.first() {
        Some(&UEID_TYPE_RAND) if ueid.len() == UEID_LEN => Ok(()),
        _ => Err(invalid(
            claim::UEID,
            format!(
                "expected {UEID_LEN} bytes starting with type 0x01 (RAND), found {} bytes",
                ueid.len()
            ),
        )),
    }
}

fn decode_nonce(value: Value) -> Result<Vec<u8>, EvidenceError> {
    let nonce = expect_bytes(value, claim::EAT_NONCE)?;
    check_nonce(&nonce)?;
    Ok(nonce)
}

fn decode_ueid(value: Value) -> Result<Vec<u8>, EvidenceError> {
    let ueid = expect_bytes(value, claim::UEID)?;
    check_ueid(&ueid)?;
    Ok(ueid)
}

fn decode_iat(value: Value) -> Result<i64, EvidenceError> {
    match value {
        Value::Integer(integer) => i64::try_from(integer)
            .map_err(|_| invalid(claim::IAT, "outside the 64-bit signed range".to_owned())),
        other => Err(wrong_type(claim::IAT, "int", &other)),
    }
}

fn decode_profile(value: Value) -> Result<(), EvidenceError> {
    let profile = expect_text(value, claim::EAT_PROFILE)?;
    if profile == PROFILE {
        Ok(())
    } else {
        Err(invalid(
            claim::EAT_PROFILE,
            format!("{profile:?} is not the supported profile {PROFILE:?}"),
        ))
    }
}

fn decode_selectors(value: Value) -> Result<Vec<String>, EvidenceError> {
    let Value::Array(items) = value else {
        return Err(wrong_type(claim::SELECTORS, "array", &value));
    };
    let selectors = items
        .into_iter()
        .map(|item| expect_text(item, claim::SELECTORS))
        .collect::<Result<Vec<_>, _>>()?;
    // Sorted and unique is part of the format: it makes the encoding
    // deterministic and lets a verifier binary-search required selectors.
    let ordered = selectors.windows(2).all(|pair| match pair {
        [left, right] => left < right,
        _ => true,
    });
    if !ordered {
        return Err(invalid(
            claim::SELECTORS,
            "not sorted by UTF-8 bytes or not unique".to_owned(),
        ));
    }
    Ok(selectors)
}

fn expect_map(value: Value, claim: &'static str) -> Result<Vec<(Value, Value)>, EvidenceError> {
    match value {
        Value::Map(entries) => Ok(entries),
        other => Err(wrong_type(claim, "map", &other)),
    }
}

fn expect_bytes(value: Value, claim: &'static str) -> Result<Vec<u8>, EvidenceError> {
    match value {
        Value::Bytes(bytes) => Ok(bytes),
        other => Err(wrong_type(claim, "bstr", &other)),
    }
}

fn expect_text(value: Value, claim: &'static str) -> Result<String, EvidenceError> {
    match value {
        Value::Text(text) => Ok(text),
        other => Err(wrong_type(claim, "tstr", &other)),
    }
}

fn wrong_type(claim: &'static str, expected: &str, found: &Value) -> EvidenceError {
    invalid(claim, format!("expected {expected}, found {}", kind(found)))
}

fn invalid(claim: &'static str, reason: String) -> EvidenceError {
    EvidenceError::InvalidClaim { claim, reason }
}

fn missing(claim: &'static str) -> EvidenceError {
    EvidenceError::MissingClaim { claim }
}

fn int(label: i64) -> Value {
    Value::Integer(Integer::from(label))
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

/// The CDDL name of a value's type, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Integer(_) => "int",
        Value::Bytes(_) => "bstr",
        Value::Float(_) => "float",
        Value::Text(_) => "tstr",
        Value::Bool(_) => "bool",
        Value::Null => "null",
        Value::Tag(..) => "tag",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        _ => "value of an unknown kind",
    }
}
