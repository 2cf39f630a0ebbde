//! Checks a TPMT_SIGNATURE over raw bytes with an AK's public area, via ring,
//! refusing SHA-1 and any scheme the AK did not declare.

use ring::signature::{self as ring_sig, RsaPublicKeyComponents, UnparsedPublicKey};

use super::QuoteError;
use crate::der;
use crate::tpm2::{AsymScheme, EccCurve, HashAlg, PublicKey, TpmPublic, TpmSignature};

pub(crate) fn verify_signature(
    ak: &TpmPublic,
    message: &[u8],
    signature: &TpmSignature,
) -> Result<(), QuoteError> {
    check_declared_scheme(ak, signature)?;
    let unsupported = || QuoteError::UnsupportedScheme {
        key: describe_key(&ak.key),
        signature: signature.to_string(),
    };
    match (&ak.key, signature) {
        (PublicKey::Rsa { modulus, exponent }, TpmSignature::RsaSsa { hash, sig }) => {
            let params = match hash {
                HashAlg::Sha256 => &ring_sig::RSA_PKCS1_2048_8192_SHA256,
                HashAlg::Sha384 => &ring_sig::RSA_PKCS1_2048_8192_SHA384,
                HashAlg::Sha512 => &ring_sig::RSA_PKCS1_2048_8192_SHA512,
                HashAlg::Sha1 => return Err(unsupported()),
            };
            verify_rsa(params, modulus, *exponent, message, sig)
        }
        (PublicKey::Rsa { modulus, exponent }, TpmSignature::RsaPss { hash, sig }) => {
            let params = match hash {
                HashAlg::Sha256 => &ring_sig::RSA_PSS_2048_8192_SHA256,
                HashAlg::Sha384 => &ring_sig::RSA_PSS_2048_8192_SHA384,
                HashAlg::Sha512 => &ring_sig::RSA_PSS_2048_8192_SHA512,
                HashAlg::Sha1 => return Err(unsupported()),
            };
            verify_rsa(params, modulus, *exponent, message, sig)
        }
        (PublicKey::Ecc { curve, x, y }, TpmSignature::Ecdsa { hash, r, s }) => {
            let algorithm: &'static ring_sig::EcdsaVerificationAlgorithm = match (curve, hash) {
                (EccCurve::NistP256, HashAlg::Sha256) => &ring_sig::ECDSA_P256_SHA256_ASN1,
                (EccCurve::NistP256, HashAlg::Sha384) => &ring_sig::ECDSA_P256_SHA384_ASN1,
                (EccCurve::NistP384, HashAlg::Sha256) => &ring_sig::ECDSA_P384_SHA256_ASN1,
                (EccCurve::NistP384, HashAlg::Sha384) => &ring_sig::ECDSA_P384_SHA384_ASN1,
                _ => return Err(unsupported()),
            };
            // r and s are integers below the group order: longer encodings are
            // either padding games or garbage, and neither came from a TPM.
            let coordinate_len = curve.coordinate_len().unwrap_or(0);
            if r.len() > coordinate_len || s.len() > coordinate_len {
                return Err(QuoteError::SignatureInvalid);
            }
            let point = crate::tpm2::uncompressed_point(*curve, x, y)
                .ok_or(QuoteError::SignatureInvalid)?;
            let der_signature =
                der::sequence(&[&der::unsigned_integer(r), &der::unsigned_integer(s)]);
            UnparsedPublicKey::new(algorithm, point)
                .verify(message, &der_signature)
                .map_err(|_| QuoteError::SignatureInvalid)
        }
        _ => Err(unsupported()),
    }
}

fn verify_rsa(
    params: &'static ring_sig::RsaParameters,
    modulus: &[u8],
    exponent: u32,
    message: &[u8],
    signature: &[u8],
) -> Result<(), QuoteError> {
    // ring reports a short key as a bare failure; keys under 2048 bits are
    // not an AK anyone should accept anyway.
    if der::strip_leading_zeros(modulus).len() < 256 {
        return Err(QuoteError::UnsupportedScheme {
            key: format!("an RSA-{} key", modulus.len() * 8),
            signature: "an RSA signature (keys under 2048 bits are refused)".to_string(),
        });
    }
    let exponent = exponent.to_be_bytes();
    let components = RsaPublicKeyComponents {
        n: der::strip_leading_zeros(modulus),
        e: der::strip_leading_zeros(&exponent),
    };
    components
        .verify(params, message, signature)
        .map_err(|_| QuoteError::SignatureInvalid)
}

/// A TPM signs with the key's own scheme when it has one; a signature in any
/// other scheme did not come from a normal quote with this key.
fn check_declared_scheme(ak: &TpmPublic, signature: &TpmSignature) -> Result<(), QuoteError> {
    let declared = ak.parameters.scheme();
    let consistent = match (declared, signature) {
        (AsymScheme::Null, _) => true,
        (AsymScheme::RsaSsa(hash), TpmSignature::RsaSsa { .. })
        | (AsymScheme::RsaPss(hash), TpmSignature::RsaPss { .. })
        | (AsymScheme::Ecdsa(hash), TpmSignature::Ecdsa { .. }) => hash == signature.hash(),
        _ => false,
    };
    if consistent {
        Ok(())
    } else {
        Err(QuoteError::SchemeMismatch {
            key: format!("{declared:?}"),
            signature: signature.to_string(),
        })
    }
}

fn describe_key(key: &PublicKey) -> String {
    match key {
        PublicKey::Rsa { modulus, .. } => format!("an RSA-{} key", modulus.len() * 8),
        PublicKey::Ecc { curve, .. } => format!("an ECC {curve:?} key"),
    }
}
