//! The node SVID chain: evidence from an attested node verifies against the
//! issuer's bundle, and every way the chain can fail to vouch for the
//! evidence is refused with a reason that says which.

use std::time::{Duration, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    SanType, SubjectPublicKeyInfo, PKCS_ECDSA_P256_SHA256,
};

use super::test_support::{claims, policy, SessionKey, NOW};
use super::{verify_evidence, EvidenceError, EvidencePolicy, NodeTrust};

pub(super) const TRUST_DOMAIN: &str = "example.org";
const EK_HASH: [u8; 32] = [0x11; 32];

pub(super) struct Ca {
    key: KeyPair,
    cert: rcgen::Certificate,
}

impl Ca {
    pub(super) fn root(name: &str) -> Ca {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let cert = ca_params(name).self_signed(&key).expect("self-signs");
        Ca { key, cert }
    }

    fn intermediate(&self, name: &str) -> Ca {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let cert = ca_params(name)
            .signed_by(&key, &self.cert, &self.key)
            .expect("signs");
        Ca { key, cert }
    }

    fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    pub(super) fn trust(&self) -> NodeTrust {
        NodeTrust::new(&[self.der()], TRUST_DOMAIN).expect("trust")
    }

    /// A node SVID as the issuer makes it, with `change` applied first.
    pub(super) fn svid_with(
        &self,
        key: &SessionKey,
        uris: &[String],
        change: impl FnOnce(&mut CertificateParams),
    ) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.subject_alt_names = uris
            .iter()
            .map(|uri| SanType::URI(uri.as_str().try_into().expect("uri")))
            .collect();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = (UNIX_EPOCH + Duration::from_secs(NOW as u64 - 60)).into();
        params.not_after = (UNIX_EPOCH + Duration::from_secs(NOW as u64 + 3600)).into();
        change(&mut params);
        let public = SubjectPublicKeyInfo::from_der(&key.spki_der()).expect("spki");
        params
            .signed_by(&public, &self.cert, &self.key)
            .expect("signs")
            .der()
            .to_vec()
    }

    pub(super) fn svid(&self, key: &SessionKey) -> Vec<u8> {
        self.svid_with(key, &[node_id()], |_| {})
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = (UNIX_EPOCH + Duration::from_secs(NOW as u64 - 86_400)).into();
    params.not_after = (UNIX_EPOCH + Duration::from_secs(NOW as u64 + 86_400)).into();
    params
}

pub(super) fn node_id() -> String {
    format!(
        "spiffe://{TRUST_DOMAIN}/attestd/node/{}",
        hex::encode(EK_HASH)
    )
}

fn node_policy(trust: NodeTrust) -> EvidencePolicy {
    EvidencePolicy {
        node_trust: Some(trust),
        ..policy()
    }
}

#[test]
fn evidence_from_an_attested_node_verifies_and_names_the_node() {
    let ca = Ca::root("issuer");
    let key = SessionKey::generate();
    let evidence = key.sign_certified(&claims(), &[ca.svid(&key)]);
    let verified = verify_evidence(&evidence, &node_policy(ca.trust())).expect("verifies");
    let node = verified.node.expect("node is reported");
    assert_eq!(node.spiffe_id, node_id());
    assert_eq!(node.ek_hash, EK_HASH);
    assert_eq!(node.not_after, NOW + 3600);
}

#[test]
fn a_chain_through_an_intermediate_verifies() {
    let root = Ca::root("root");
    let issuing = root.intermediate("issuing");
    let key = SessionKey::generate();
    let evidence = key.sign_certified(&claims(), &[issuing.svid(&key), issuing.der()]);
    assert!(verify_evidence(&evidence, &node_policy(root.trust())).is_ok());
    // Without the intermediate there is no path to the root.
    let evidence = key.sign_certified(&claims(), &[issuing.svid(&key)]);
    assert!(matches!(
        verify_evidence(&evidence, &node_policy(root.trust())),
        Err(EvidenceError::NodeChain(_))
    ));
}

#[test]
fn evidence_without_a_chain_is_refused_when_node_trust_is_required() {
    let key = SessionKey::generate();
    let evidence = key.sign(&claims());
    assert_eq!(
        verify_evidence(&evidence, &node_policy(Ca::root("issuer").trust())),
        Err(EvidenceError::NodeNotCertified)
    );
    // A verifier that does not ask for node trust still accepts it.
    assert!(verify_evidence(&evidence, &policy())
        .expect("verifies")
        .node
        .is_none());
}

#[test]
fn a_node_svid_from_another_ca_is_refused() {
    let key = SessionKey::generate();
    let evidence = key.sign_certified(&claims(), &[Ca::root("rogue").svid(&key)]);
    assert!(matches!(
        verify_evidence(&evidence, &node_policy(Ca::root("issuer").trust())),
        Err(EvidenceError::NodeChain(_))
    ));
}

#[test]
fn an_expired_node_svid_is_refused() {
    let ca = Ca::root("issuer");
    let key = SessionKey::generate();
    let evidence = key.sign_certified(
        &claims(),
        &[ca.svid_with(&key, &[node_id()], |params| {
            params.not_after = (UNIX_EPOCH + Duration::from_secs(NOW as u64 - 1)).into();
        })],
    );
    let result = verify_evidence(&evidence, &node_policy(ca.trust()));
    assert!(
        matches!(&result, Err(EvidenceError::NodeChain(reason)) if reason.contains("Expired")),
        "{result:?}"
    );
}

#[test]
fn a_node_svid_for_another_key_is_refused() {
    let ca = Ca::root("issuer");
    let key = SessionKey::generate();
    let stolen = ca.svid(&SessionKey::generate());
    let evidence = key.sign_certified(&claims(), &[stolen]);
    assert!(matches!(
        verify_evidence(&evidence, &node_policy(ca.trust())),
        Err(EvidenceError::NodeMismatch(_))
    ));
}

#[test]
fn svids_that_do_not_name_a_node_of_the_trust_domain_are_refused() {
    let ca = Ca::root("issuer");
    let key = SessionKey::generate();
    // Letters in the hash, so that the upper-case spelling differs; the ueid
    // matches it, so only the SPIFFE ID can be what is refused.
    let ek_hash = [0xab; 32];
    let claims = super::EvidenceClaims {
        ueid: Some([&[0x01][..], &ek_hash[..]].concat()),
        ..claims()
    };
    let hash = hex::encode(ek_hash);
    let good = format!("spiffe://{TRUST_DOMAIN}/attestd/node/{hash}");
    let accepted = key.sign_certified(
        &claims,
        &[ca.svid_with(&key, std::slice::from_ref(&good), |_| {})],
    );
    assert!(verify_evidence(&accepted, &node_policy(ca.trust())).is_ok());
    let cases = [
        vec![format!("spiffe://other.org/attestd/node/{hash}")],
        vec![format!("spiffe://{TRUST_DOMAIN}/workload/{hash}")],
        vec![format!(
            "spiffe://{TRUST_DOMAIN}/attestd/node/{}",
            &hash[..62]
        )],
        vec![format!(
            "spiffe://{TRUST_DOMAIN}/attestd/node/{}",
            hash.to_uppercase()
        )],
        vec![format!("spiffe://{TRUST_DOMAIN}.evil/attestd/node/{hash}")],
        vec![format!("spiffe://{TRUST_DOMAIN}/attestd/node/{hash}/x")],
        vec![good.clone(), format!("spiffe://{TRUST_DOMAIN}/other")],
        vec![],
    ];
    for uris in cases {
        let evidence = key.sign_certified(&claims, &[ca.svid_with(&key, &uris, |_| {})]);
        let result = verify_evidence(&evidence, &node_policy(ca.trust()));
        assert!(
            matches!(result, Err(EvidenceError::NodeMismatch(_))),
            "{uris:?}: {result:?}"
        );
    }
}

#[test]
fn a_ueid_other_than_the_node_svid_ek_hash_is_refused() {
    let ca = Ca::root("issuer");
    let key = SessionKey::generate();
    for ueid in [Some([&[0x01][..], &[0x22; 32][..]].concat()), None] {
        let evidence = key.sign_certified(
            &super::EvidenceClaims {
                ueid: ueid.clone(),
                ..claims()
            },
            &[ca.svid(&key)],
        );
        assert!(
            matches!(
                verify_evidence(&evidence, &node_policy(ca.trust())),
                Err(EvidenceError::NodeMismatch(_))
            ),
            "{ueid:?}"
        );
    }
}

#[test]
fn a_ca_certificate_in_the_leaf_position_is_refused() {
    let root = Ca::root("root");
    let issuing = root.intermediate("issuing");
    let key = SessionKey::generate();
    let evidence = key.sign_certified(&claims(), &[issuing.der()]);
    assert!(matches!(
        verify_evidence(&evidence, &node_policy(root.trust())),
        Err(EvidenceError::NodeChain(_))
    ));
}

#[test]
fn node_trust_refuses_unusable_bundles_and_trust_domains() {
    let ca = Ca::root("issuer");
    assert!(NodeTrust::new(&[], TRUST_DOMAIN).is_err());
    assert!(NodeTrust::new(&[vec![0x30, 0x03, 0x02, 0x01, 0x00]], TRUST_DOMAIN).is_err());
    for domain in [
        "",
        "Example.org",
        "example.org/path",
        "spiffe://example.org",
    ] {
        assert!(
            matches!(
                NodeTrust::new(&[ca.der()], domain),
                Err(EvidenceError::InvalidPolicy(_))
            ),
            "{domain:?}"
        );
    }
}
