//! Protecting the credential seed to the EK (TPM 2.0 Part 1 Annex B.10.3 and
//! C.6.4): RSA-OAEP with label "IDENTITY", or one-pass ECDH with KDFe.

use p256::elliptic_curve::sec1::{FromEncodedPoint, ModulusSize, ToEncodedPoint};
use p256::elliptic_curve::{AffinePoint, CurveArithmetic, FieldBytesSize, PublicKey, SecretKey};
use rand_core::CryptoRngCore;
use rsa::{BigUint, Oaep, RsaPublicKey};
use zeroize::Zeroizing;

use super::kdf::kdfe;
use super::CredentialError;
use crate::tpm2::{uncompressed_point, EccCurve, HashAlg};

/// OAEP label; the TPM includes the terminating NUL.
const IDENTITY_LABEL_WITH_NUL: &str = "IDENTITY\0";
const IDENTITY_LABEL: &[u8] = b"IDENTITY";

/// The seed and its encryption to the EK (TPM2B_ENCRYPTED_SECRET contents).
pub(super) struct ProtectedSeed {
    pub(super) seed: Zeroizing<Vec<u8>>,
    pub(super) encrypted_secret: Vec<u8>,
}

pub(super) fn rsa_oaep(
    modulus: &[u8],
    exponent: u32,
    name_alg: HashAlg,
    rng: &mut impl CryptoRngCore,
) -> Result<ProtectedSeed, CredentialError> {
    let public_key = RsaPublicKey::new(BigUint::from_bytes_be(modulus), BigUint::from(exponent))
        .map_err(|error| CredentialError::InvalidEkKey(error.to_string()))?;
    let mut seed = Zeroizing::new(vec![0u8; name_alg.digest_len()]);
    rng.fill_bytes(&mut seed);
    let padding = match name_alg {
        HashAlg::Sha256 => Oaep::new_with_label::<sha2::Sha256, _>(IDENTITY_LABEL_WITH_NUL),
        HashAlg::Sha384 => Oaep::new_with_label::<sha2::Sha384, _>(IDENTITY_LABEL_WITH_NUL),
        HashAlg::Sha512 => Oaep::new_with_label::<sha2::Sha512, _>(IDENTITY_LABEL_WITH_NUL),
        HashAlg::Sha1 => return Err(CredentialError::UnsupportedNameAlg(name_alg)),
    };
    let encrypted_secret = public_key
        .encrypt(rng, padding, &seed)
        .map_err(|error| CredentialError::SeedEncryption(error.to_string()))?;
    Ok(ProtectedSeed {
        seed,
        encrypted_secret,
    })
}

pub(super) fn ecdh(
    curve: EccCurve,
    x: &[u8],
    y: &[u8],
    name_alg: HashAlg,
    rng: &mut impl CryptoRngCore,
) -> Result<ProtectedSeed, CredentialError> {
    let point = uncompressed_point(curve, x, y)
        .ok_or_else(|| CredentialError::InvalidEkKey("coordinate longer than the curve".into()))?;
    match curve {
        EccCurve::NistP256 => ecdh_on::<p256::NistP256>(&point, name_alg, rng),
        EccCurve::NistP384 => ecdh_on::<p384::NistP384>(&point, name_alg, rng),
        EccCurve::NistP521 | EccCurve::Other(_) => Err(CredentialError::UnsupportedCurve(curve)),
    }
}

/// Ephemeral key Qe; Z = x(de · Q_EK); seed = KDFe(nameAlg, Z, "IDENTITY",
/// Qe.x, Q_EK.x, digest bits); the encrypted secret is Qe as TPMS_ECC_POINT.
fn ecdh_on<C>(
    ek_point: &[u8],
    name_alg: HashAlg,
    rng: &mut impl CryptoRngCore,
) -> Result<ProtectedSeed, CredentialError>
where
    C: CurveArithmetic,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
    FieldBytesSize<C>: ModulusSize,
{
    // Rejects points off the curve, which would leak the ephemeral key.
    let ek_public = PublicKey::<C>::from_sec1_bytes(ek_point)
        .map_err(|_| CredentialError::InvalidEkKey("point is not on the curve".into()))?;
    let ephemeral = SecretKey::<C>::random(rng);
    let shared = p256::elliptic_curve::ecdh::diffie_hellman(
        ephemeral.to_nonzero_scalar(),
        ek_public.as_affine(),
    );
    let ephemeral_point = ephemeral.public_key().to_encoded_point(false);
    let ek_encoded = ek_public.to_encoded_point(false);
    let (Some(ephemeral_x), Some(ephemeral_y), Some(ek_x)) =
        (ephemeral_point.x(), ephemeral_point.y(), ek_encoded.x())
    else {
        return Err(CredentialError::InvalidEkKey("point at infinity".into()));
    };
    let bits = digest_bits(name_alg);
    let seed = kdfe(
        name_alg,
        shared.raw_secret_bytes(),
        IDENTITY_LABEL,
        ephemeral_x,
        ek_x,
        bits,
    );
    let mut encrypted_secret = Vec::with_capacity(4 + ephemeral_x.len() + ephemeral_y.len());
    for coordinate in [ephemeral_x.as_slice(), ephemeral_y.as_slice()] {
        push_tpm2b(&mut encrypted_secret, coordinate)?;
    }
    Ok(ProtectedSeed {
        seed,
        encrypted_secret,
    })
}

pub(super) fn digest_bits(hash: HashAlg) -> u32 {
    u32::try_from(hash.digest_len() * 8).unwrap_or(0)
}

pub(super) fn push_tpm2b(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), CredentialError> {
    let size = u16::try_from(bytes.len())
        .map_err(|_| CredentialError::TooLargeForTpm2b { len: bytes.len() })?;
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}
