//! Software TPM2_MakeCredential (TPM 2.0 Part 1 §24, Part 3 §12.6): wraps a
//! secret so that only the TPM holding the EK, with the named AK loaded, can
//! recover it through TPM2_ActivateCredential.

mod kdf;
mod seed;

use aes::{Aes128, Aes192, Aes256};
use cfb_mode::cipher::{AsyncStreamCipher, KeyIvInit};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::tpm2::constants::alg;
use crate::tpm2::{EccCurve, HashAlg, PublicKey, SymmetricDef, TpmPublic};
use kdf::kdfa;
use seed::{digest_bits, push_tpm2b};

/// tpm2-tools' credential file header (`tpm2_makecredential -o`).
const TPM2_TOOLS_CREDENTIAL_MAGIC: u32 = 0xBADC_C0DE;
const TPM2_TOOLS_CREDENTIAL_VERSION: u32 = 1;

/// Why a credential could not be made for this EK and object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the EK must be a restricted decryption key (restricted and decrypt set, sign clear)")]
    EkNotRestrictedDecryptionKey,
    #[error("the EK's symmetric definition must be AES-CFB; it is {0}")]
    UnsupportedSymmetric(String),
    #[error("EK name algorithm {0} is not supported for MakeCredential")]
    UnsupportedNameAlg(HashAlg),
    #[error("ECC curve {0:?} is not supported for MakeCredential")]
    UnsupportedCurve(EccCurve),
    #[error("the EK public key is invalid: {0}")]
    InvalidEkKey(String),
    #[error("the secret is empty")]
    EmptySecret,
    #[error("the secret is {len} bytes; the EK's name algorithm allows at most {max}")]
    SecretTooLong { len: usize, max: usize },
    #[error("the object name ({len} bytes) is not a hash algorithm id followed by its digest")]
    InvalidObjectName { len: usize },
    #[error("encrypting the seed to the EK failed: {0}")]
    SeedEncryption(String),
    #[error("{len} bytes do not fit in a TPM2B")]
    TooLargeForTpm2b { len: usize },
}

/// The two TPM2_MakeCredential outputs, as the contents (without the u16
/// size) of TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MadeCredential {
    /// TPM2B integrityHMAC || encIdentity.
    pub credential_blob: Vec<u8>,
    /// RSA: the OAEP ciphertext; ECC: the ephemeral TPMS_ECC_POINT.
    pub encrypted_secret: Vec<u8>,
}

impl std::fmt::Debug for MadeCredential {
    // Lengths only: the blob is safe to log, but nobody needs its bytes in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MadeCredential")
            .field("credential_blob_len", &self.credential_blob.len())
            .field("encrypted_secret_len", &self.encrypted_secret.len())
            .finish()
    }
}

impl MadeCredential {
    /// The tpm2-tools file format, for `tpm2_activatecredential -i`: magic,
    /// version, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
    pub fn to_tpm2_tools_format(&self) -> Result<Vec<u8>, CredentialError> {
        let mut out =
            Vec::with_capacity(12 + self.credential_blob.len() + self.encrypted_secret.len());
        out.extend_from_slice(&TPM2_TOOLS_CREDENTIAL_MAGIC.to_be_bytes());
        out.extend_from_slice(&TPM2_TOOLS_CREDENTIAL_VERSION.to_be_bytes());
        push_tpm2b(&mut out, &self.credential_blob)?;
        push_tpm2b(&mut out, &self.encrypted_secret)?;
        Ok(out)
    }
}

/// Makes a credential for the object named `object_name` (nameAlg || digest,
/// e.g. [`TpmPublic::name`] of the AK) on the TPM holding `ek`. `secret` is at
/// most the EK nameAlg's digest size.
pub fn make_credential(
    ek: &TpmPublic,
    object_name: &[u8],
    secret: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<MadeCredential, CredentialError> {
    let attributes = ek.attributes;
    if !(attributes.restricted() && attributes.decrypt()) || attributes.sign() {
        return Err(CredentialError::EkNotRestrictedDecryptionKey);
    }
    let name_alg = ek.name_alg;
    if name_alg == HashAlg::Sha1 {
        return Err(CredentialError::UnsupportedNameAlg(name_alg));
    }
    let symmetric = aes_cfb_key_bits(ek.parameters.symmetric())?;
    check_object_name(object_name)?;
    if secret.is_empty() {
        return Err(CredentialError::EmptySecret);
    }
    if secret.len() > name_alg.digest_len() {
        return Err(CredentialError::SecretTooLong {
            len: secret.len(),
            max: name_alg.digest_len(),
        });
    }

    let protected = match &ek.key {
        PublicKey::Rsa { modulus, exponent } => seed::rsa_oaep(modulus, *exponent, name_alg, rng)?,
        PublicKey::Ecc { curve, x, y } => seed::ecdh(*curve, x, y, name_alg, rng)?,
    };

    // encIdentity = CFB(symKey, IV = 0, TPM2B_DIGEST(secret)).
    let symmetric_key = kdfa(
        name_alg,
        &protected.seed,
        b"STORAGE",
        object_name,
        b"",
        symmetric,
    );
    let mut enc_identity = Vec::with_capacity(2 + secret.len());
    push_tpm2b(&mut enc_identity, secret)?;
    let mut enc_identity = Zeroizing::new(enc_identity);
    aes_cfb_encrypt(&symmetric_key, &mut enc_identity)?;

    // integrityHMAC = HMAC(HMACkey, encIdentity || name).
    let hmac_key = kdfa(
        name_alg,
        &protected.seed,
        b"INTEGRITY",
        b"",
        b"",
        digest_bits(name_alg),
    );
    let mut hmac =
        ring::hmac::Context::with_key(&ring::hmac::Key::new(name_alg.ring_hmac(), &hmac_key));
    hmac.update(&enc_identity);
    hmac.update(object_name);
    let integrity = hmac.sign();

    let mut credential_blob = Vec::with_capacity(2 + integrity.as_ref().len() + enc_identity.len());
    push_tpm2b(&mut credential_blob, integrity.as_ref())?;
    credential_blob.extend_from_slice(&enc_identity);
    Ok(MadeCredential {
        credential_blob,
        encrypted_secret: protected.encrypted_secret,
    })
}

fn aes_cfb_key_bits(symmetric: Option<SymmetricDef>) -> Result<u32, CredentialError> {
    match symmetric {
        Some(SymmetricDef {
            algorithm: alg::AES,
            key_bits: key_bits @ (128 | 192 | 256),
            mode: alg::CFB,
        }) => Ok(u32::from(key_bits)),
        Some(other) => Err(CredentialError::UnsupportedSymmetric(format!(
            "algorithm 0x{:04x}, {} bits, mode 0x{:04x}",
            other.algorithm, other.key_bits, other.mode
        ))),
        None => Err(CredentialError::UnsupportedSymmetric("TPM_ALG_NULL".into())),
    }
}

fn aes_cfb_encrypt(key: &[u8], buffer: &mut [u8]) -> Result<(), CredentialError> {
    const ZERO_IV: [u8; 16] = [0; 16];
    let bad_key =
        || CredentialError::UnsupportedSymmetric(format!("AES with a {}-byte key", key.len()));
    match key.len() {
        16 => cfb_mode::Encryptor::<Aes128>::new_from_slices(key, &ZERO_IV)
            .map_err(|_| bad_key())?
            .encrypt(buffer),
        24 => cfb_mode::Encryptor::<Aes192>::new_from_slices(key, &ZERO_IV)
            .map_err(|_| bad_key())?
            .encrypt(buffer),
        32 => cfb_mode::Encryptor::<Aes256>::new_from_slices(key, &ZERO_IV)
            .map_err(|_| bad_key())?
            .encrypt(buffer),
        _ => return Err(bad_key()),
    }
    Ok(())
}

/// A Name to credential must be a digest Name; a handle Name (4 bytes) or
/// anything mis-sized would make a blob no TPM can activate.
fn check_object_name(name: &[u8]) -> Result<(), CredentialError> {
    let invalid = || CredentialError::InvalidObjectName { len: name.len() };
    let [high, low, digest @ ..] = name else {
        return Err(invalid());
    };
    match HashAlg::from_tpm(u16::from_be_bytes([*high, *low])) {
        Some(hash) if digest.len() == hash.digest_len() => Ok(()),
        _ => Err(invalid()),
    }
}
