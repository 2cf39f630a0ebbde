//! The JWT-SVID authority: an ECDSA P-256 key in a PKCS#8 PEM file (mode
//! 0600, made on first start like the CA key), the ES256 JWT-SVIDs it signs
//! (SPIFFE JWT-SVID §2-3) and the JWK Set relying parties verify them with.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, JwkSet, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::ca::{check_private_mode, write_private, CaError};

/// The `use` of JWT authorities in a SPIFFE trust bundle (SPIFFE Trust
/// Domain and Bundle §4.2.2).
pub const JWT_SVID_USE: &str = "jwt-svid";

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error(transparent)]
    File(#[from] CaError),
    #[error("{}: {reason}", path.display())]
    Invalid {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("signing a JWT-SVID: {0}")]
    Sign(String),
}

/// The claims of a JWT-SVID (SPIFFE JWT-SVID §3): `aud` is always an array.
#[derive(Debug, Serialize)]
struct Claims<'a> {
    sub: &'a str,
    aud: &'a [String],
    exp: i64,
    iat: i64,
}

pub struct JwtSigner {
    key: EncodingKey,
    kid: String,
    /// The JWK Set, JSON: deterministic, so replicas with the same key agree.
    jwks: Vec<u8>,
}

impl std::fmt::Debug for JwtSigner {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwtSigner {
    /// Loads the key at `path`, or makes one there if the file does not exist.
    pub fn load_or_generate(path: &Path) -> Result<JwtSigner, JwtError> {
        let invalid = |reason: String| JwtError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let key = if path.exists() {
            check_private_mode(path, "the JWT signing key")?;
            let pem =
                Zeroizing::new(std::fs::read_to_string(path).map_err(|source| CaError::Io {
                    path: path.to_owned(),
                    source,
                })?);
            let key = KeyPair::from_pem(&pem)
                .map_err(|e| invalid(format!("not a PKCS#8 PEM private key: {e}")))?;
            if !key.is_compatible(&PKCS_ECDSA_P256_SHA256) {
                return Err(invalid(
                    "the JWT signing key must be ECDSA P-256 (ES256)".into(),
                ));
            }
            key
        } else {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
                .map_err(|e| invalid(format!("generating a key: {e}")))?;
            write_private(path, key.serialize_pem().as_bytes())?;
            tracing::info!(key = %path.display(), "generated a new JWT signing key");
            key
        };
        Self::from_key(&key).map_err(invalid)
    }

    fn from_key(key: &KeyPair) -> Result<JwtSigner, String> {
        let spki = key.public_key_der();
        let point = key.public_key_raw();
        if point.len() != 65 || point[0] != 0x04 {
            return Err("the public key is not an uncompressed P-256 point".into());
        }
        let kid = key_id(&spki);
        let jwks = JwkSet {
            keys: vec![Jwk {
                common: CommonParameters {
                    public_key_use: Some(PublicKeyUse::Other(JWT_SVID_USE.into())),
                    key_id: Some(kid.clone()),
                    ..CommonParameters::default()
                },
                algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                    key_type: EllipticCurveKeyType::EC,
                    curve: EllipticCurve::P256,
                    x: URL_SAFE_NO_PAD.encode(&point[1..33]),
                    y: URL_SAFE_NO_PAD.encode(&point[33..65]),
                }),
            }],
        };
        let jwks = serde_json::to_vec(&jwks).map_err(|e| e.to_string())?;
        let pkcs8 = Zeroizing::new(key.serialize_der());
        Ok(JwtSigner {
            key: EncodingKey::from_ec_der(&pkcs8),
            kid,
            jwks,
        })
    }

    /// The key id: base64url (no padding) of the SHA-256 of the public key's
    /// SubjectPublicKeyInfo DER (RFC 7638 would hash a JSON form instead; the
    /// SPKI is what the CA's key identifiers hash, too).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWT authorities as a JWK Set (RFC 7517), JSON.
    pub fn jwks(&self) -> &[u8] {
        &self.jwks
    }

    /// A JWT-SVID: ES256, header `{alg, typ: "JWT", kid}`, claims `{sub, aud,
    /// exp, iat}`.
    pub fn sign(
        &self,
        spiffe_id: &str,
        audience: &[String],
        issued_at: i64,
        expires_at: i64,
    ) -> Result<String, JwtError> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("JWT".into());
        header.kid = Some(self.kid.clone());
        let claims = Claims {
            sub: spiffe_id,
            aud: audience,
            exp: expires_at,
            iat: issued_at,
        };
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| JwtError::Sign(e.to_string()))
    }
}

fn key_id(spki_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, spki_der))
}
