//! Binds an EK certificate to the EK public area a TPM reports, by comparing
//! key material rather than encodings.

use x509_parser::prelude::FromDer;
use x509_parser::public_key::RSAPublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::{EkCertError, EkCertificate};
use crate::der;
use crate::tpm2::{uncompressed_point, EccCurve, PublicKey, TpmPublic};

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
/// id-RSAES-OAEP: some EK certificates label their RSA key with it.
const RSAES_OAEP: &str = "1.2.840.113549.1.1.7";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const NIST_P256: &str = "1.2.840.10045.3.1.7";
const NIST_P384: &str = "1.3.132.0.34";
const NIST_P521: &str = "1.3.132.0.35";

impl EkCertificate {
    /// Succeeds when this certificate's key is exactly the key in `ek`.
    pub fn matches(&self, ek: &TpmPublic) -> Result<(), EkCertError> {
        let unreadable = |reason: &str| EkCertError::UnreadableCertificateKey(reason.to_string());
        let (rest, spki) = SubjectPublicKeyInfo::from_der(&self.spki_der)
            .map_err(|error| unreadable(&error.to_string()))?;
        if !rest.is_empty() {
            return Err(unreadable("trailing bytes after SubjectPublicKeyInfo"));
        }
        let algorithm = spki.algorithm.algorithm.to_id_string();
        let key_bits = spki.subject_public_key.data.as_ref();
        match (algorithm.as_str(), &ek.key) {
            (RSA_ENCRYPTION | RSAES_OAEP, PublicKey::Rsa { modulus, exponent }) => {
                let (_, cert_key) = RSAPublicKey::from_der(key_bits)
                    .map_err(|error| unreadable(&error.to_string()))?;
                let same_modulus =
                    der::strip_leading_zeros(cert_key.modulus) == der::strip_leading_zeros(modulus);
                let tpm_exponent = exponent.to_be_bytes();
                let same_exponent = der::strip_leading_zeros(cert_key.exponent)
                    == der::strip_leading_zeros(&tpm_exponent);
                if same_modulus && same_exponent {
                    Ok(())
                } else {
                    Err(EkCertError::KeyMismatch)
                }
            }
            (EC_PUBLIC_KEY, PublicKey::Ecc { curve, x, y }) => {
                let cert_curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|parameters| parameters.as_oid().ok())
                    .map(|oid| oid.to_id_string())
                    .ok_or_else(|| unreadable("EC key without a named curve"))?;
                let expected_curve = match curve {
                    EccCurve::NistP256 => NIST_P256,
                    EccCurve::NistP384 => NIST_P384,
                    EccCurve::NistP521 => NIST_P521,
                    EccCurve::Other(id) => {
                        return Err(EkCertError::KeyTypeMismatch {
                            cert_key: format!("an EC key on {cert_curve}"),
                            tpm_key: format!("an ECC key on TPM curve 0x{id:04x}"),
                        })
                    }
                };
                if cert_curve != expected_curve {
                    return Err(EkCertError::KeyTypeMismatch {
                        cert_key: format!("an EC key on {cert_curve}"),
                        tpm_key: format!("an ECC key on {curve:?}"),
                    });
                }
                match uncompressed_point(*curve, x, y) {
                    Some(point) if point.as_slice() == key_bits => Ok(()),
                    _ => Err(EkCertError::KeyMismatch),
                }
            }
            (_, tpm_key) => Err(EkCertError::KeyTypeMismatch {
                cert_key: format!("a key of algorithm {algorithm}"),
                tpm_key: match tpm_key {
                    PublicKey::Rsa { .. } => "an RSA key".to_string(),
                    PublicKey::Ecc { .. } => "an ECC key".to_string(),
                },
            }),
        }
    }
}
