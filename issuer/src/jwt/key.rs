//! One JWT-SVID signing key: ECDSA P-256 in a PKCS#8 PEM file (mode 0600),
//! its key id, its JWK in the two forms relying parties read, and the ES256
//! tokens it signs (SPIFFE JWT-SVID §2-3).

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use serde::Serialize;
use zeroize::Zeroizing;

use super::JwtError;
use crate::ca::{check_private_mode, CaError};

/// The `use` of JWT authorities in a SPIFFE trust bundle (SPIFFE Trust
/// Domain and Bundle §4.2.2).
pub const JWT_SVID_USE: &str = "jwt-svid";

/// Which audience a JWK is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwkFlavour {
    /// A SPIFFE bundle: `use: "jwt-svid"`, no `alg`.
    Spiffe,
    /// An OIDC JWKS (RFC 7517 §4.2): `use: "sig"`, `alg: "ES256"`, which
    /// generic OIDC clients look for.
    Oidc,
}

/// The claims of a JWT-SVID (SPIFFE JWT-SVID §3): `aud` is always an array;
/// `iss` only when an OIDC issuer URL is configured.
#[derive(Debug, Serialize)]
pub struct Claims<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<&'a str>,
    pub sub: &'a str,
    pub aud: &'a [String],
    pub exp: i64,
    pub iat: i64,
}

pub struct JwtKey {
    encoding: EncodingKey,
    kid: String,
    /// The public point's coordinates, base64url.
    x: String,
    y: String,
}

impl std::fmt::Debug for JwtKey {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwtKey {
    /// Loads the key at `path`, refusing a file others may read.
    pub fn load(path: &Path) -> Result<JwtKey, JwtError> {
        let invalid = |reason: String| JwtError::Invalid {
            path: path.to_owned(),
            reason,
        };
        check_private_mode(path, "the JWT signing key")?;
        let pem = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| CaError::Io {
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
        Self::from_key_pair(&key).map_err(invalid)
    }

    /// A fresh key, and its PKCS#8 PEM to write.
    pub fn generate() -> Result<(JwtKey, Zeroizing<String>), JwtError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| JwtError::Generate(e.to_string()))?;
        let pem = Zeroizing::new(key.serialize_pem());
        let jwt_key = Self::from_key_pair(&key).map_err(JwtError::Generate)?;
        Ok((jwt_key, pem))
    }

    fn from_key_pair(key: &KeyPair) -> Result<JwtKey, String> {
        let spki = key.public_key_der();
        let point = key.public_key_raw();
        if point.len() != 65 || point[0] != 0x04 {
            return Err("the public key is not an uncompressed P-256 point".into());
        }
        let pkcs8 = Zeroizing::new(key.serialize_der());
        Ok(JwtKey {
            encoding: EncodingKey::from_ec_der(&pkcs8),
            kid: key_id(&spki),
            x: URL_SAFE_NO_PAD.encode(&point[1..33]),
            y: URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }

    /// The key id: base64url (no padding) of the SHA-256 of the public key's
    /// SubjectPublicKeyInfo DER (RFC 7638 would hash a JSON form instead; the
    /// SPKI is what the CA's key identifiers hash, too).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (RFC 7517, RFC 7518 §6.2).
    pub fn jwk(&self, flavour: JwkFlavour) -> Jwk {
        let (public_key_use, key_algorithm) = match flavour {
            JwkFlavour::Spiffe => (PublicKeyUse::Other(JWT_SVID_USE.into()), None),
            JwkFlavour::Oidc => (PublicKeyUse::Signature, Some(KeyAlgorithm::ES256)),
        };
        Jwk {
            common: CommonParameters {
                public_key_use: Some(public_key_use),
                key_algorithm,
                key_id: Some(self.kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x: self.x.clone(),
                y: self.y.clone(),
            }),
        }
    }

    /// A JWT-SVID: ES256, header `{alg, typ: "JWT", kid}`.
    pub fn sign(&self, claims: &Claims<'_>) -> Result<String, JwtError> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("JWT".into());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| JwtError::Sign(e.to_string()))
    }
}

fn key_id(spki_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, spki_der))
}
