//! The hash algorithms a TPM uses for names, PCR banks and signatures,
//! mapped to their TPM_ALG_ID numbers and to ring's implementations.

use std::fmt;

use super::constants::alg;
use super::reader::Reader;
use super::ParseError;

/// A TPM hash algorithm this crate can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    /// Largest digest of any supported algorithm; bounds TPM2B_DIGEST fields.
    pub const MAX_DIGEST_LEN: usize = 64;

    pub fn from_tpm(alg_id: u16) -> Option<Self> {
        match alg_id {
            alg::SHA1 => Some(Self::Sha1),
            alg::SHA256 => Some(Self::Sha256),
            alg::SHA384 => Some(Self::Sha384),
            alg::SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn to_tpm(self) -> u16 {
        match self {
            Self::Sha1 => alg::SHA1,
            Self::Sha256 => alg::SHA256,
            Self::Sha384 => alg::SHA384,
            Self::Sha512 => alg::SHA512,
        }
    }

    pub fn digest_len(self) -> usize {
        self.ring_algorithm().output_len()
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        ring::digest::digest(self.ring_algorithm(), data)
            .as_ref()
            .to_vec()
    }

    pub(crate) fn ring_algorithm(self) -> &'static ring::digest::Algorithm {
        match self {
            Self::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
            Self::Sha512 => &ring::digest::SHA512,
        }
    }

    /// ring's HMAC for this hash. SHA-1 HMAC is still sound (HMAC does not rely
    /// on collision resistance), but callers decide whether to allow it.
    pub(crate) fn ring_hmac(self) -> ring::hmac::Algorithm {
        match self {
            Self::Sha1 => ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => ring::hmac::HMAC_SHA256,
            Self::Sha384 => ring::hmac::HMAC_SHA384,
            Self::Sha512 => ring::hmac::HMAC_SHA512,
        }
    }

    pub(crate) fn read(reader: &mut Reader<'_>, field: &'static str) -> Result<Self, ParseError> {
        let alg_id = reader.u16(field)?;
        Self::from_tpm(alg_id).ok_or(ParseError::UnsupportedAlgorithm { field, alg: alg_id })
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        })
    }
}
