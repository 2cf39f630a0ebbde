//! Challenges without server-side state: the issuer's record of a challenge
//! (the nonce, a digest of the credential secret, which EK and AK it was made
//! for, and when it expires) travels to the node and back sealed with
//! AES-256-GCM under a key derived from the CA key. Any replica that holds the
//! CA can open it; nobody else can read or alter it.
//!
//! Single use is enforced by each replica remembering the nonces it has
//! accepted until they expire. A replay to a different replica within the
//! challenge lifetime could at most obtain an SVID for the session key of the
//! node that answered, which only that node can use.

use std::collections::HashMap;
use std::sync::Mutex;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

const TOKEN_VERSION: u8 = 1;
const AAD: &[u8] = b"attestd-issuer challenge v1";
/// Largest token accepted: a record holds two TPM public areas and some digests.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Most accepted nonces remembered at once; beyond this, new answers are
/// refused until old ones expire, so memory stays bounded.
const MAX_REMEMBERED: usize = 1 << 20;

/// What the issuer needs to remember about a challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeRecord {
    pub expires_at: i64,
    pub nonce: Vec<u8>,
    pub secret_sha256: Vec<u8>,
    pub ek_hash: Vec<u8>,
    /// How the EK was trusted, for the decision log.
    pub ek_verdict: String,
    pub ak_public: Vec<u8>,
    pub session_public_key: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("the challenge is not one this issuer made, or was altered")]
    Forged,
    #[error("the challenge expired {seconds} s ago; ask for a new one")]
    Expired { seconds: i64 },
    #[error("this challenge's nonce was already used")]
    Replayed,
    #[error("too many challenges outstanding; try again later")]
    Busy,
}

pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
    used: Mutex<HashMap<Vec<u8>, i64>>,
}

impl Sealer {
    /// The sealing key is HKDF-SHA256 of the CA private key, so every replica
    /// with the same CA derives the same key, and rotating the CA invalidates
    /// outstanding challenges.
    pub fn new(ca_key_der: &[u8]) -> Result<Sealer, String> {
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"attestd-issuer");
        let prk = salt.extract(ca_key_der);
        let info: [&[u8]; 1] = [b"challenge sealing key v1"];
        let okm = prk
            .expand(&info, &AES_256_GCM)
            .map_err(|_| "deriving the challenge sealing key failed".to_owned())?;
        Ok(Sealer {
            key: LessSafeKey::new(UnboundKey::from(okm)),
            rng: SystemRandom::new(),
            used: Mutex::new(HashMap::new()),
        })
    }

    pub fn seal(&self, record: &ChallengeRecord) -> Result<Vec<u8>, String> {
        let mut plaintext = Vec::new();
        ciborium::into_writer(record, &mut plaintext).map_err(|e| e.to_string())?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| "the system random generator failed".to_owned())?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut plaintext,
            )
            .map_err(|_| "sealing failed".to_owned())?;
        let mut token = Vec::with_capacity(1 + NONCE_LEN + plaintext.len());
        token.push(TOKEN_VERSION);
        token.extend_from_slice(&nonce);
        token.extend_from_slice(&plaintext);
        Ok(token)
    }

    /// Opens a token and checks it has not expired. Does not consume it.
    pub fn open(&self, token: &[u8], now: i64) -> Result<ChallengeRecord, ChallengeError> {
        if token.len() > MAX_TOKEN_BYTES || token.len() < 1 + NONCE_LEN {
            return Err(ChallengeError::Forged);
        }
        let (version, rest) = token.split_at(1);
        if version[0] != TOKEN_VERSION {
            return Err(ChallengeError::Forged);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| ChallengeError::Forged)?;
        let mut buffer = sealed.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(AAD), &mut buffer)
            .map_err(|_| ChallengeError::Forged)?;
        let record: ChallengeRecord =
            ciborium::from_reader(&plaintext[..]).map_err(|_| ChallengeError::Forged)?;
        if now > record.expires_at {
            return Err(ChallengeError::Expired {
                seconds: now - record.expires_at,
            });
        }
        Ok(record)
    }

    /// Marks the record's nonce used; a second call for it fails with `Replayed`.
    pub fn consume(&self, record: &ChallengeRecord, now: i64) -> Result<(), ChallengeError> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if used.contains_key(&record.nonce) {
            return Err(ChallengeError::Replayed);
        }
        if used.len() >= MAX_REMEMBERED {
            used.retain(|_, expires_at| *expires_at >= now);
            if used.len() >= MAX_REMEMBERED {
                return Err(ChallengeError::Busy);
            }
        }
        used.insert(record.nonce.clone(), record.expires_at);
        Ok(())
    }

    /// Forgets nonces whose challenges have expired: they can no longer be
    /// opened, so they can no longer be replayed.
    pub fn prune(&self, now: i64) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        used.retain(|_, expires_at| *expires_at >= now);
    }
}

#[cfg(test)]
#[path = "challenge_test.rs"]
mod tests;
