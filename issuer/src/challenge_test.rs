//! Unit tests for `challenge.rs`: sealing, expiry and single use.
use super::{ChallengeError, ChallengeRecord, Sealer};

fn record(expires_at: i64) -> ChallengeRecord {
    ChallengeRecord {
        expires_at,
        nonce: vec![7; 32],
        secret_sha256: vec![1; 32],
        ek_hash: vec![2; 32],
        ek_verdict: "EK hash is enrolled".into(),
        ak_public: vec![3; 90],
        session_public_key: vec![4; 65],
    }
}

#[test]
fn a_sealed_record_opens_unchanged_and_only_with_the_same_ca_key() {
    let sealer = Sealer::new(b"ca key one").unwrap();
    let token = sealer.seal(&record(1_000)).unwrap();
    assert_eq!(sealer.open(&token, 999).unwrap(), record(1_000));
    // The record is not readable in the token.
    assert!(!token.windows(32).any(|w| w == [7u8; 32]));
    let other = Sealer::new(b"ca key two").unwrap();
    assert_eq!(other.open(&token, 999), Err(ChallengeError::Forged));
}

#[test]
fn any_changed_byte_makes_a_token_forged() {
    let sealer = Sealer::new(b"ca key").unwrap();
    let token = sealer.seal(&record(1_000)).unwrap();
    for index in 0..token.len() {
        let mut altered = token.clone();
        altered[index] ^= 0x80;
        assert_eq!(
            sealer.open(&altered, 0),
            Err(ChallengeError::Forged),
            "byte {index}"
        );
    }
    assert_eq!(
        sealer.open(&token[..token.len() - 1], 0),
        Err(ChallengeError::Forged)
    );
    assert_eq!(sealer.open(&[], 0), Err(ChallengeError::Forged));
}

#[test]
fn an_expired_token_says_how_long_ago() {
    let sealer = Sealer::new(b"ca key").unwrap();
    let token = sealer.seal(&record(1_000)).unwrap();
    assert_eq!(sealer.open(&token, 1_000).unwrap().expires_at, 1_000);
    assert_eq!(
        sealer.open(&token, 1_030),
        Err(ChallengeError::Expired { seconds: 30 })
    );
}

#[test]
fn a_nonce_is_accepted_once_and_forgotten_after_it_expires() {
    let sealer = Sealer::new(b"ca key").unwrap();
    let record = record(1_000);
    sealer.consume(&record, 900).unwrap();
    assert_eq!(sealer.consume(&record, 901), Err(ChallengeError::Replayed));
    sealer.prune(999);
    assert_eq!(
        sealer.consume(&record, 999),
        Err(ChallengeError::Replayed),
        "not yet expired"
    );
    sealer.prune(1_001);
    // Expired challenges cannot be opened any more, so forgetting them is safe.
    sealer.consume(&record, 1_001).unwrap();
}
