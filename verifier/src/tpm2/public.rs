//! TPMT_PUBLIC, the public area of a TPM key: its Name, attributes, parameters
//! and key material. AK checks, EK matching and MakeCredential start here.

use super::constants::{alg, curve};
use super::reader::Reader;
use super::{HashAlg, ParseError};
use crate::der;

/// An RSA-4096 key with a SHA-512 policy marshals to about 600 bytes.
const MAX_PUBLIC_LEN: usize = 1024;
const MAX_RSA_MODULUS_BYTES: usize = 512;
/// P-521 coordinates; also bounds curves we do not know.
const MAX_ECC_COORDINATE_BYTES: usize = 66;
/// RSA exponent 0 in a public area means the default, 2^16 + 1.
const DEFAULT_RSA_EXPONENT: u32 = 65_537;

/// TPMA_OBJECT bits (TPM 2.0 Part 2, table 31).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectAttributes(u32);

impl ObjectAttributes {
    pub const FIXED_TPM: u32 = 1 << 1;
    pub const ST_CLEAR: u32 = 1 << 2;
    pub const FIXED_PARENT: u32 = 1 << 4;
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
    pub const NO_DA: u32 = 1 << 10;
    pub const ENCRYPTED_DUPLICATION: u32 = 1 << 11;
    pub const RESTRICTED: u32 = 1 << 16;
    pub const DECRYPT: u32 = 1 << 17;
    pub const SIGN: u32 = 1 << 18;

    pub fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    pub fn bits(self) -> u32 {
        self.0
    }

    fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }

    pub fn fixed_tpm(self) -> bool {
        self.has(Self::FIXED_TPM)
    }

    pub fn fixed_parent(self) -> bool {
        self.has(Self::FIXED_PARENT)
    }

    pub fn sensitive_data_origin(self) -> bool {
        self.has(Self::SENSITIVE_DATA_ORIGIN)
    }

    pub fn user_with_auth(self) -> bool {
        self.has(Self::USER_WITH_AUTH)
    }

    pub fn admin_with_policy(self) -> bool {
        self.has(Self::ADMIN_WITH_POLICY)
    }

    pub fn restricted(self) -> bool {
        self.has(Self::RESTRICTED)
    }

    pub fn decrypt(self) -> bool {
        self.has(Self::DECRYPT)
    }

    pub fn sign(self) -> bool {
        self.has(Self::SIGN)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    Rsa,
    Ecc,
}

/// TPMT_SYM_DEF_OBJECT when not TPM_ALG_NULL, e.g. AES-128-CFB for an EK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymmetricDef {
    pub algorithm: u16,
    pub key_bits: u16,
    pub mode: u16,
}

/// The key's declared scheme (TPMT_RSA_SCHEME / TPMT_ECC_SCHEME).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsymScheme {
    Null,
    RsaSsa(HashAlg),
    RsaPss(HashAlg),
    Ecdsa(HashAlg),
    /// Encryption or key-exchange schemes, or a signing scheme whose hash this
    /// crate does not implement; kept so callers can see what was declared.
    Other {
        algorithm: u16,
        hash: Option<u16>,
    },
}

/// TPMT_KDF_SCHEME when not TPM_ALG_NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfScheme {
    pub algorithm: u16,
    pub hash: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EccCurve {
    NistP256,
    NistP384,
    NistP521,
    Other(u16),
}

impl EccCurve {
    fn from_tpm(curve_id: u16) -> Self {
        match curve_id {
            curve::NIST_P256 => Self::NistP256,
            curve::NIST_P384 => Self::NistP384,
            curve::NIST_P521 => Self::NistP521,
            other => Self::Other(other),
        }
    }

    /// Size of one coordinate (and of the field), for curves we know.
    pub fn coordinate_len(self) -> Option<usize> {
        match self {
            Self::NistP256 => Some(32),
            Self::NistP384 => Some(48),
            Self::NistP521 => Some(66),
            Self::Other(_) => None,
        }
    }

    fn spki_oid(self) -> Option<&'static [u8]> {
        match self {
            Self::NistP256 => Some(der::oid::NIST_P256),
            Self::NistP384 => Some(der::oid::NIST_P384),
            Self::NistP521 => Some(der::oid::NIST_P521),
            Self::Other(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaParams {
    pub symmetric: Option<SymmetricDef>,
    pub scheme: AsymScheme,
    pub key_bits: u16,
    /// As marshalled: 0 stands for 65537 (see [`PublicKey::Rsa`]).
    pub exponent: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EccParams {
    pub symmetric: Option<SymmetricDef>,
    pub scheme: AsymScheme,
    pub curve: EccCurve,
    pub kdf: Option<KdfScheme>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicParameters {
    Rsa(RsaParams),
    Ecc(EccParams),
}

impl PublicParameters {
    pub fn symmetric(&self) -> Option<SymmetricDef> {
        match self {
            Self::Rsa(params) => params.symmetric,
            Self::Ecc(params) => params.symmetric,
        }
    }

    pub fn scheme(&self) -> AsymScheme {
        match self {
            Self::Rsa(params) => params.scheme,
            Self::Ecc(params) => params.scheme,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// `exponent` is the effective one: a marshalled 0 becomes 65537.
    Rsa { modulus: Vec<u8>, exponent: u32 },
    Ecc {
        curve: EccCurve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
}

/// A parsed TPMT_PUBLIC. Only [`TpmPublic::parse`] / [`TpmPublic::parse_tpm2b`]
/// build one, so `raw` (which the Name hashes) always matches the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TpmPublic {
    pub object_type: ObjectType,
    pub name_alg: HashAlg,
    pub attributes: ObjectAttributes,
    pub auth_policy: Vec<u8>,
    pub parameters: PublicParameters,
    pub key: PublicKey,
    /// The marshalled TPMT_PUBLIC exactly as parsed.
    pub raw: Vec<u8>,
}

impl TpmPublic {
    /// Parses a marshalled TPMT_PUBLIC that must span all of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        if bytes.len() > MAX_PUBLIC_LEN {
            return Err(ParseError::TooLarge {
                field: "TPMT_PUBLIC",
                size: bytes.len(),
                max: MAX_PUBLIC_LEN,
            });
        }
        let mut reader = Reader::new(bytes);
        let type_id = reader.u16("TPMT_PUBLIC.type")?;
        let name_alg = HashAlg::read(&mut reader, "TPMT_PUBLIC.nameAlg")?;
        let attributes = ObjectAttributes(reader.u32("TPMT_PUBLIC.objectAttributes")?);
        let auth_policy = reader.tpm2b(HashAlg::MAX_DIGEST_LEN, "TPMT_PUBLIC.authPolicy")?;
        if !auth_policy.is_empty() && auth_policy.len() != name_alg.digest_len() {
            return Err(ParseError::LengthMismatch {
                field: "TPMT_PUBLIC.authPolicy",
                expected: name_alg.digest_len(),
                actual: auth_policy.len(),
            });
        }
        let (object_type, parameters, key) = match type_id {
            alg::RSA => {
                let (params, key) = read_rsa(&mut reader)?;
                (ObjectType::Rsa, PublicParameters::Rsa(params), key)
            }
            alg::ECC => {
                let (params, key) = read_ecc(&mut reader)?;
                (ObjectType::Ecc, PublicParameters::Ecc(params), key)
            }
            other => {
                return Err(ParseError::UnsupportedAlgorithm {
                    field: "TPMT_PUBLIC.type",
                    alg: other,
                })
            }
        };
        reader.finish("TPMT_PUBLIC")?;
        Ok(Self {
            object_type,
            name_alg,
            attributes,
            auth_policy: auth_policy.to_vec(),
            parameters,
            key,
            raw: bytes.to_vec(),
        })
    }

    /// Parses a TPM2B_PUBLIC (u16 size, then TPMT_PUBLIC), as written by
    /// `tpm2_createak -u` or `tpm2_readpublic -o`.
    pub fn parse_tpm2b(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut reader = Reader::new(bytes);
        let inner = reader.tpm2b(MAX_PUBLIC_LEN, "TPM2B_PUBLIC.size")?;
        reader.finish("TPM2B_PUBLIC")?;
        Self::parse(inner)
    }

    /// The TPM Name: nameAlg (u16, big-endian) || H_nameAlg(TPMT_PUBLIC).
    pub fn name(&self) -> Vec<u8> {
        let mut name = self.name_alg.to_tpm().to_be_bytes().to_vec();
        name.extend_from_slice(&self.name_alg.digest(&self.raw));
        name
    }

    /// The key as an X.509 SubjectPublicKeyInfo (DER); `None` for curves
    /// without a standard OID here.
    pub fn spki_der(&self) -> Option<Vec<u8>> {
        match &self.key {
            PublicKey::Rsa { modulus, exponent } => {
                let rsa_key = der::sequence(&[
                    &der::unsigned_integer(modulus),
                    &der::unsigned_integer(&exponent.to_be_bytes()),
                ]);
                let algorithm =
                    der::sequence(&[&der::object_id(der::oid::RSA_ENCRYPTION), &der::null()]);
                Some(der::sequence(&[&algorithm, &der::bit_string(&rsa_key)]))
            }
            PublicKey::Ecc { curve, x, y } => {
                let curve_oid = curve.spki_oid()?;
                let point = uncompressed_point(*curve, x, y)?;
                let algorithm = der::sequence(&[
                    &der::object_id(der::oid::EC_PUBLIC_KEY),
                    &der::object_id(curve_oid),
                ]);
                Some(der::sequence(&[&algorithm, &der::bit_string(&point)]))
            }
        }
    }
}

/// SEC1 uncompressed point 0x04 || X || Y with coordinates left-padded to the
/// field size (a TPM may drop leading zero bytes).
pub(crate) fn uncompressed_point(curve: EccCurve, x: &[u8], y: &[u8]) -> Option<Vec<u8>> {
    let coordinate_len = curve.coordinate_len()?;
    let mut point = Vec::with_capacity(1 + 2 * coordinate_len);
    point.push(0x04);
    for coordinate in [x, y] {
        let padding = coordinate_len.checked_sub(coordinate.len())?;
        point.resize(point.len() + padding, 0);
        point.extend_from_slice(coordinate);
    }
    Some(point)
}

fn read_symmetric(reader: &mut Reader<'_>) -> Result<Option<SymmetricDef>, ParseError> {
    const TDES: u16 = 0x0003;
    const SM4: u16 = 0x0013;
    const CAMELLIA: u16 = 0x0026;
    let algorithm = reader.u16("TPMT_SYM_DEF_OBJECT.algorithm")?;
    match algorithm {
        alg::NULL => Ok(None),
        alg::AES | TDES | SM4 | CAMELLIA => Ok(Some(SymmetricDef {
            algorithm,
            key_bits: reader.u16("TPMT_SYM_DEF_OBJECT.keyBits")?,
            mode: reader.u16("TPMT_SYM_DEF_OBJECT.mode")?,
        })),
        other => Err(ParseError::UnsupportedAlgorithm {
            field: "TPMT_SYM_DEF_OBJECT.algorithm",
            alg: other,
        }),
    }
}

/// Reads TPMT_RSA_SCHEME or TPMT_ECC_SCHEME; `allowed` lists the scheme ids
/// valid for the key type, since the layout of anything else is unknown.
fn read_scheme(
    reader: &mut Reader<'_>,
    allowed: &[u16],
    field: &'static str,
) -> Result<AsymScheme, ParseError> {
    let algorithm = reader.u16(field)?;
    if algorithm == alg::NULL {
        return Ok(AsymScheme::Null);
    }
    if !allowed.contains(&algorithm) {
        return Err(ParseError::UnsupportedAlgorithm {
            field,
            alg: algorithm,
        });
    }
    // RSAES is the only scheme without a hash (TPMS_EMPTY).
    if algorithm == alg::RSAES {
        return Ok(AsymScheme::Other {
            algorithm,
            hash: None,
        });
    }
    let hash_id = reader.u16("TPMS_SCHEME_HASH.hashAlg")?;
    if algorithm == alg::ECDAA {
        reader.u16("TPMS_SCHEME_ECDAA.count")?;
    }
    Ok(match (algorithm, HashAlg::from_tpm(hash_id)) {
        (alg::RSASSA, Some(hash)) => AsymScheme::RsaSsa(hash),
        (alg::RSAPSS, Some(hash)) => AsymScheme::RsaPss(hash),
        (alg::ECDSA, Some(hash)) => AsymScheme::Ecdsa(hash),
        _ => AsymScheme::Other {
            algorithm,
            hash: Some(hash_id),
        },
    })
}

fn read_rsa(reader: &mut Reader<'_>) -> Result<(RsaParams, PublicKey), ParseError> {
    let symmetric = read_symmetric(reader)?;
    let scheme = read_scheme(
        reader,
        &[alg::RSASSA, alg::RSAPSS, alg::RSAES, alg::OAEP],
        "TPMT_RSA_SCHEME.scheme",
    )?;
    let key_bits = reader.u16("TPMS_RSA_PARMS.keyBits")?;
    let exponent = reader.u32("TPMS_RSA_PARMS.exponent")?;
    let modulus = reader.tpm2b(MAX_RSA_MODULUS_BYTES, "TPM2B_PUBLIC_KEY_RSA")?;
    if key_bits == 0 || key_bits % 8 != 0 {
        return Err(ParseError::InvalidValue {
            field: "TPMS_RSA_PARMS.keyBits",
            value: key_bits.into(),
        });
    }
    if modulus.len() != usize::from(key_bits / 8) {
        return Err(ParseError::LengthMismatch {
            field: "TPM2B_PUBLIC_KEY_RSA",
            expected: usize::from(key_bits / 8),
            actual: modulus.len(),
        });
    }
    let effective_exponent = if exponent == 0 {
        DEFAULT_RSA_EXPONENT
    } else {
        exponent
    };
    Ok((
        RsaParams {
            symmetric,
            scheme,
            key_bits,
            exponent,
        },
        PublicKey::Rsa {
            modulus: modulus.to_vec(),
            exponent: effective_exponent,
        },
    ))
}

fn read_ecc(reader: &mut Reader<'_>) -> Result<(EccParams, PublicKey), ParseError> {
    const KDF1_SP800_56A: u16 = 0x0020;
    const KDF2: u16 = 0x0021;
    const KDF1_SP800_108: u16 = 0x0022;

    let symmetric = read_symmetric(reader)?;
    let scheme = read_scheme(
        reader,
        &[
            alg::ECDSA,
            alg::ECDH,
            alg::ECDAA,
            alg::SM2,
            alg::ECSCHNORR,
            alg::ECMQV,
        ],
        "TPMT_ECC_SCHEME.scheme",
    )?;
    let curve = EccCurve::from_tpm(reader.u16("TPMS_ECC_PARMS.curveID")?);
    let kdf = match reader.u16("TPMT_KDF_SCHEME.scheme")? {
        alg::NULL => None,
        algorithm @ (alg::MGF1 | KDF1_SP800_56A | KDF2 | KDF1_SP800_108) => Some(KdfScheme {
            algorithm,
            hash: reader.u16("TPMT_KDF_SCHEME.hashAlg")?,
        }),
        other => {
            return Err(ParseError::UnsupportedAlgorithm {
                field: "TPMT_KDF_SCHEME.scheme",
                alg: other,
            })
        }
    };
    let max_coordinate = curve.coordinate_len().unwrap_or(MAX_ECC_COORDINATE_BYTES);
    let x = read_coordinate(reader, max_coordinate, "TPMS_ECC_POINT.x")?;
    let y = read_coordinate(reader, max_coordinate, "TPMS_ECC_POINT.y")?;
    Ok((
        EccParams {
            symmetric,
            scheme,
            curve,
            kdf,
        },
        PublicKey::Ecc { curve, x, y },
    ))
}

/// An empty coordinate means a template, not a key, so it is rejected here.
fn read_coordinate(
    reader: &mut Reader<'_>,
    max: usize,
    field: &'static str,
) -> Result<Vec<u8>, ParseError> {
    let coordinate = reader.tpm2b(max, field)?;
    if coordinate.is_empty() {
        return Err(ParseError::InvalidValue { field, value: 0 });
    }
    Ok(coordinate.to_vec())
}

#[cfg(test)]
#[path = "public_test.rs"]
mod tests;
