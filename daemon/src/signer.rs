//! The daemon's session key: an ECDSA P-256 key made at start-up that lives only in
//! this process's memory, and signs evidence as ES256 COSE_Sign1.

use attestd_proto::evidence::{
    sign_certified_evidence, sign_payload, EvidenceClaims, EvidenceError, FreshQuote, Headers,
};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("generating the session key failed")]
    KeyGeneration,
    #[error("signing evidence failed: {0}")]
    Evidence(#[from] EvidenceError),
}

pub struct EvidenceSigner {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl EvidenceSigner {
    /// A fresh key. The PKCS#8 bytes exist only inside this function.
    pub fn generate() -> Result<Self, SignerError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| SignerError::KeyGeneration)?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| SignerError::KeyGeneration)?;
        Ok(EvidenceSigner { key, rng })
    }

    /// The public key as an uncompressed SEC1 point (65 bytes).
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    /// A tagged COSE_Sign1 over `claims`. `node_chain` (DER, leaf first) is
    /// the node SVID the issuer granted for this key, or empty before the
    /// node is attested; it goes into the protected header as `x5chain`.
    pub fn sign(
        &self,
        claims: &EvidenceClaims,
        node_chain: &[Vec<u8>],
    ) -> Result<Vec<u8>, SignerError> {
        let evidence =
            sign_certified_evidence(claims, self.public_key(), node_chain, |to_be_signed| {
                self.sign_raw(to_be_signed)
            })?;
        Ok(evidence)
    }

    fn sign_raw(&self, to_be_signed: &[u8]) -> Result<Vec<u8>, EvidenceError> {
        self.key
            .sign(&self.rng, to_be_signed)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|_| EvidenceError::Signing("ECDSA P-256 signing failed".into()))
    }

    /// A tagged COSE_Sign1 over an encoded claims set, with the
    /// hardware-fresh quote whose batch holds that payload's leaf.
    pub fn sign_fresh(
        &self,
        payload: Vec<u8>,
        node_chain: &[Vec<u8>],
        fresh: &FreshQuote,
    ) -> Result<Vec<u8>, SignerError> {
        let headers = Headers {
            x5chain: node_chain,
            fresh: Some(fresh),
        };
        let evidence = sign_payload(payload, self.public_key(), &headers, |to_be_signed| {
            self.sign_raw(to_be_signed)
        })?;
        Ok(evidence)
    }
}

impl std::fmt::Debug for EvidenceSigner {
    // Never print key material, even by accident through a derived Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceSigner")
            .field("public_key", &hex::encode(self.public_key()))
            .finish_non_exhaustive()
    }
}
