//! TPMT_SIGNATURE for the schemes an AK can quote with: ECDSA, RSASSA
//! (PKCS#1 v1.5) and RSAPSS.

use std::fmt;

use super::constants::alg;
use super::reader::Reader;
use super::{HashAlg, ParseError};

const MAX_RSA_SIGNATURE_BYTES: usize = 512;
const MAX_ECC_PARAMETER_BYTES: usize = 66;

/// A parsed TPMT_SIGNATURE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpmSignature {
    Ecdsa {
        hash: HashAlg,
        r: Vec<u8>,
        s: Vec<u8>,
    },
    RsaSsa {
        hash: HashAlg,
        sig: Vec<u8>,
    },
    RsaPss {
        hash: HashAlg,
        sig: Vec<u8>,
    },
}

impl TpmSignature {
    /// Parses a marshalled TPMT_SIGNATURE (`tpm2_quote -s … -f tss`).
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut reader = Reader::new(bytes);
        let sig_alg = reader.u16("TPMT_SIGNATURE.sigAlg")?;
        let signature = match sig_alg {
            alg::ECDSA => {
                let hash = HashAlg::read(&mut reader, "TPMS_SIGNATURE_ECC.hash")?;
                let r = reader.tpm2b(MAX_ECC_PARAMETER_BYTES, "TPMS_SIGNATURE_ECC.signatureR")?;
                let s = reader.tpm2b(MAX_ECC_PARAMETER_BYTES, "TPMS_SIGNATURE_ECC.signatureS")?;
                Self::Ecdsa {
                    hash,
                    r: r.to_vec(),
                    s: s.to_vec(),
                }
            }
            alg::RSASSA | alg::RSAPSS => {
                let hash = HashAlg::read(&mut reader, "TPMS_SIGNATURE_RSA.hash")?;
                let sig = reader
                    .tpm2b(MAX_RSA_SIGNATURE_BYTES, "TPMS_SIGNATURE_RSA.sig")?
                    .to_vec();
                if sig_alg == alg::RSASSA {
                    Self::RsaSsa { hash, sig }
                } else {
                    Self::RsaPss { hash, sig }
                }
            }
            other => {
                return Err(ParseError::UnsupportedAlgorithm {
                    field: "TPMT_SIGNATURE.sigAlg",
                    alg: other,
                })
            }
        };
        reader.finish("TPMT_SIGNATURE")?;
        Ok(signature)
    }

    /// The hash the TPM signed with; a quote's PCR digest uses the same one.
    pub fn hash(&self) -> HashAlg {
        match self {
            Self::Ecdsa { hash, .. } | Self::RsaSsa { hash, .. } | Self::RsaPss { hash, .. } => {
                *hash
            }
        }
    }
}

impl fmt::Display for TpmSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self {
            Self::Ecdsa { .. } => "ECDSA",
            Self::RsaSsa { .. } => "RSASSA-PKCS1-v1_5",
            Self::RsaPss { .. } => "RSASSA-PSS",
        };
        write!(f, "{scheme}/{}", self.hash())
    }
}

#[cfg(test)]
#[path = "signature_test.rs"]
mod tests;
