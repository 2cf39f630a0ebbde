//! verify_evidence against the relying party's policy: nonce, time window,
//! audience, key pinning and selectors, each refused with its own error.

use attestd_proto::evidence::{EvidenceError, NONCE_MAX, NONCE_MIN};

use super::test_support::{claims, policy, SessionKey, NOW};
use super::{verify_evidence, EvidencePolicy};

fn verify_with(policy: &EvidencePolicy) -> Result<(), EvidenceError> {
    let key = SessionKey::generate();
    verify_evidence(&key.sign(&claims()), policy).map(|_| ())
}

fn verify_issued_at(issued_at: i64) -> Result<(), EvidenceError> {
    let key = SessionKey::generate();
    let mut claims = claims();
    claims.issued_at = issued_at;
    verify_evidence(&key.sign(&claims), &policy()).map(|_| ())
}

fn verify_audiences(found: Option<&str>, expected: Option<&str>) -> Result<(), EvidenceError> {
    let key = SessionKey::generate();
    let mut claims = claims();
    claims.audience = found.map(str::to_owned);
    let policy = EvidencePolicy {
        audience: expected.map(str::to_owned),
        ..policy()
    };
    verify_evidence(&key.sign(&claims), &policy).map(|_| ())
}

#[test]
fn a_different_nonce_is_refused() {
    let mut expected_nonce = claims().nonce;
    expected_nonce[15] ^= 0x01;
    let policy = EvidencePolicy {
        expected_nonce,
        ..policy()
    };
    assert_eq!(verify_with(&policy), Err(EvidenceError::NonceMismatch));
}

#[test]
fn a_nonce_that_is_only_a_prefix_of_the_expected_one_is_refused() {
    let mut expected_nonce = claims().nonce;
    expected_nonce.push(0);
    let policy = EvidencePolicy {
        expected_nonce,
        ..policy()
    };
    assert_eq!(verify_with(&policy), Err(EvidenceError::NonceMismatch));
}

#[test]
fn a_policy_nonce_outside_8_to_64_bytes_is_an_invalid_policy() {
    for len in [0, NONCE_MIN - 1, NONCE_MAX + 1] {
        let policy = EvidencePolicy {
            expected_nonce: vec![1; len],
            ..policy()
        };
        assert!(
            matches!(verify_with(&policy), Err(EvidenceError::InvalidPolicy(_))),
            "{len}-byte policy nonce"
        );
    }
}

#[test]
fn evidence_older_than_max_age_is_expired() {
    assert_eq!(
        verify_issued_at(NOW - 61),
        Err(EvidenceError::Expired {
            issued_at: NOW - 61,
            now: NOW,
            max_age_secs: 60
        })
    );
}

#[test]
fn evidence_exactly_max_age_old_is_accepted() {
    assert_eq!(verify_issued_at(NOW - 60), Ok(()));
}

#[test]
fn evidence_from_beyond_the_allowed_skew_is_not_yet_valid() {
    assert_eq!(
        verify_issued_at(NOW + 11),
        Err(EvidenceError::NotYetValid {
            issued_at: NOW + 11,
            now: NOW,
            max_future_skew_secs: 10
        })
    );
}

#[test]
fn evidence_within_the_allowed_skew_is_accepted() {
    assert_eq!(verify_issued_at(NOW + 10), Ok(()));
}

#[test]
fn extreme_times_do_not_overflow() {
    assert!(matches!(
        verify_issued_at(i64::MIN),
        Err(EvidenceError::Expired { .. })
    ));
    assert!(matches!(
        verify_issued_at(i64::MAX),
        Err(EvidenceError::NotYetValid { .. })
    ));
    let policy = EvidencePolicy {
        now_unix_secs: i64::MAX,
        max_age_secs: u64::MAX,
        max_future_skew_secs: u64::MAX,
        ..policy()
    };
    assert_eq!(verify_with(&policy), Ok(()));
}

#[test]
fn a_different_audience_is_refused() {
    assert_eq!(
        verify_audiences(
            Some("spiffe://example.org/other"),
            Some("spiffe://example.org/issuer")
        ),
        Err(EvidenceError::AudienceMismatch {
            expected: Some("spiffe://example.org/issuer".to_owned()),
            found: Some("spiffe://example.org/other".to_owned()),
        })
    );
}

#[test]
fn evidence_without_an_audience_is_refused_by_a_verifier_that_names_one() {
    assert!(matches!(
        verify_audiences(None, Some("spiffe://example.org/issuer")),
        Err(EvidenceError::AudienceMismatch { .. })
    ));
}

#[test]
fn audience_bound_evidence_is_refused_by_a_verifier_that_names_none() {
    assert!(matches!(
        verify_audiences(Some("spiffe://example.org/issuer"), None),
        Err(EvidenceError::AudienceMismatch { .. })
    ));
}

#[test]
fn evidence_without_an_audience_is_accepted_by_a_verifier_that_names_none() {
    assert_eq!(verify_audiences(None, None), Ok(()));
}

#[test]
fn audiences_are_compared_exactly() {
    assert!(verify_audiences(
        Some("spiffe://example.org/issuer/"),
        Some("spiffe://example.org/issuer")
    )
    .is_err());
    assert!(verify_audiences(
        Some("SPIFFE://example.org/issuer"),
        Some("spiffe://example.org/issuer")
    )
    .is_err());
}

#[test]
fn a_key_outside_the_trusted_set_is_untrusted() {
    let key = SessionKey::generate();
    let other = SessionKey::generate();
    let policy = EvidencePolicy {
        trusted_keys: Some(vec![other.spki_der()]),
        node_trust: None,
        ..policy()
    };
    assert_eq!(
        verify_evidence(&key.sign(&claims()), &policy),
        Err(EvidenceError::UntrustedKey)
    );
}

#[test]
fn an_empty_trusted_set_trusts_no_key() {
    let policy = EvidencePolicy {
        trusted_keys: Some(Vec::new()),
        node_trust: None,
        ..policy()
    };
    assert_eq!(verify_with(&policy), Err(EvidenceError::UntrustedKey));
}

#[test]
fn a_pinned_key_is_accepted() {
    let key = SessionKey::generate();
    let other = SessionKey::generate();
    let policy = EvidencePolicy {
        trusted_keys: Some(vec![other.spki_der(), key.spki_der()]),
        node_trust: None,
        ..policy()
    };
    let verified = verify_evidence(&key.sign(&claims()), &policy).expect("accepted");
    assert_eq!(verified.session_key_spki, key.spki_der());
}

#[test]
fn a_pin_given_as_a_raw_point_instead_of_spki_does_not_match() {
    let key = SessionKey::generate();
    let policy = EvidencePolicy {
        trusted_keys: Some(vec![key.public_point()]),
        node_trust: None,
        ..policy()
    };
    assert_eq!(
        verify_evidence(&key.sign(&claims()), &policy),
        Err(EvidenceError::UntrustedKey)
    );
}

#[test]
fn an_untrusted_key_is_refused_before_its_claims_are_looked_at() {
    let key = SessionKey::generate();
    let policy = EvidencePolicy {
        trusted_keys: Some(Vec::new()),
        node_trust: None,
        expected_nonce: vec![0; 16],
        ..policy()
    };
    assert_eq!(
        verify_evidence(&key.sign(&claims()), &policy),
        Err(EvidenceError::UntrustedKey)
    );
}

#[test]
fn a_missing_required_selector_is_named() {
    let policy = EvidencePolicy {
        required_selectors: vec!["unix:uid:1000".to_owned(), "unix:uid:0".to_owned()],
        ..policy()
    };
    assert_eq!(
        verify_with(&policy),
        Err(EvidenceError::MissingSelector {
            selector: "unix:uid:0".to_owned()
        })
    );
}

#[test]
fn all_required_selectors_present_are_accepted() {
    let policy = EvidencePolicy {
        required_selectors: claims().selectors,
        ..policy()
    };
    assert_eq!(verify_with(&policy), Ok(()));
}

#[test]
fn no_required_selectors_accepts_any_selectors() {
    let policy = EvidencePolicy {
        required_selectors: Vec::new(),
        ..policy()
    };
    assert_eq!(verify_with(&policy), Ok(()));
}

#[test]
fn selectors_are_matched_exactly_not_by_prefix() {
    let policy = EvidencePolicy {
        required_selectors: vec!["unix:uid:100".to_owned()],
        ..policy()
    };
    assert!(matches!(
        verify_with(&policy),
        Err(EvidenceError::MissingSelector { .. })
    ));
}
