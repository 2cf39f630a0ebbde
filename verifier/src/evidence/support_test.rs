//! Shared by the evidence tests: a real ring session key, sample claims, a
//! policy those claims satisfy, and evidence with hand-made headers that is
//! still correctly signed.

use attestd_proto::evidence::{
    labels, sign_certified_evidence, sign_evidence, BinaryClaim, EvidenceClaims, EvidenceError,
    HostClaims, CONTENT_TYPE,
};
use coset::iana;
use coset::{
    AsCborValue, ContentType, CoseKeyBuilder, CoseSign1Builder, Header, Label,
    RegisteredLabelWithPrivate, TaggedCborSerializable,
};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use super::EvidencePolicy;

pub(super) const NOW: i64 = 1_767_225_600;
pub(super) const NONCE: [u8; 16] = *b"relying-party-16";

/// A daemon's session key, as the daemon holds it.
pub(super) struct SessionKey {
    key_pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl SessionKey {
    pub(super) fn generate() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("key generates");
        let key_pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .expect("key loads");
        Self { key_pair, rng }
    }

    pub(super) fn public_point(&self) -> Vec<u8> {
        self.key_pair.public_key().as_ref().to_vec()
    }

    pub(super) fn spki_der(&self) -> Vec<u8> {
        super::p256_spki_der(&self.public_point())
    }

    pub(super) fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>, EvidenceError> {
        self.key_pair
            .sign(&self.rng, message)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|_| EvidenceError::Signing("ring refused to sign".to_owned()))
    }

    /// Evidence exactly as the daemon produces it.
    pub(super) fn sign(&self, claims: &EvidenceClaims) -> Vec<u8> {
        sign_evidence(claims, &self.public_point(), |tbs| self.sign_raw(tbs)).expect("signs")
    }

    /// Evidence as an attested daemon produces it: with its node SVID chain.
    pub(super) fn sign_certified(&self, claims: &EvidenceClaims, chain: &[Vec<u8>]) -> Vec<u8> {
        sign_certified_evidence(claims, &self.public_point(), chain, |tbs| {
            self.sign_raw(tbs)
        })
        .expect("signs")
    }

    /// The protected header attestd emits for this key, for tests to alter.
    pub(super) fn protected_header(&self) -> Header {
        Header {
            alg: Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256)),
            content_type: Some(ContentType::Text(CONTENT_TYPE.to_owned())),
            rest: vec![(
                Label::Int(labels::SESSION_KEY),
                cose_key(&self.public_point()),
            )],
            ..Header::default()
        }
    }

    /// Correctly signed evidence with an arbitrary protected header: shows a
    /// header check refuses it, not the signature check.
    pub(super) fn sign_with_header(&self, protected: Header, claims: &EvidenceClaims) -> Vec<u8> {
        CoseSign1Builder::new()
            .protected(protected)
            .payload(claims.to_cbor().expect("claims encode"))
            .try_create_signature(&[], |tbs| self.sign_raw(tbs))
            .expect("signs")
            .build()
            .to_tagged_vec()
            .expect("encodes")
    }

    /// Correctly signed evidence around an arbitrary payload.
    pub(super) fn sign_payload(&self, payload: Vec<u8>) -> Vec<u8> {
        CoseSign1Builder::new()
            .protected(self.protected_header())
            .payload(payload)
            .try_create_signature(&[], |tbs| self.sign_raw(tbs))
            .expect("signs")
            .build()
            .to_tagged_vec()
            .expect("encodes")
    }
}

pub(super) fn cose_key(point: &[u8]) -> ciborium::value::Value {
    CoseKeyBuilder::new_ec2_pub_key(
        iana::EllipticCurve::P_256,
        point[1..33].to_vec(),
        point[33..65].to_vec(),
    )
    .build()
    .to_cbor_value()
    .expect("key encodes")
}

/// Claims that satisfy [`policy`].
pub(super) fn claims() -> EvidenceClaims {
    EvidenceClaims {
        nonce: NONCE.to_vec(),
        ueid: Some([&[0x01][..], &[0x11; 32][..]].concat()),
        issued_at: NOW - 5,
        selectors: vec![
            "systemd:unit:foo.service".to_owned(),
            "unix:gid:1000".to_owned(),
            "unix:uid:1000".to_owned(),
        ],
        binary: Some(BinaryClaim {
            path: "/usr/bin/foo".to_owned(),
            sha256: [0xab; 32],
        }),
        host: HostClaims {
            hostname: "node-1".to_owned(),
            kernel: "6.1.0-18-amd64".to_owned(),
            os: "debian".to_owned(),
            boot_id: "5f1b6c1e-3c1e-4a57-9a35-0c6f1d2e9b10".to_owned(),
        },
        audience: Some("spiffe://example.org/issuer".to_owned()),
    }
}

/// A policy [`claims`] satisfy, with no key pinning.
pub(super) fn policy() -> EvidencePolicy {
    EvidencePolicy {
        expected_nonce: NONCE.to_vec(),
        now_unix_secs: NOW,
        max_age_secs: 60,
        max_future_skew_secs: 10,
        audience: Some("spiffe://example.org/issuer".to_owned()),
        trusted_keys: None,
        node_trust: None,
        required_selectors: vec!["unix:uid:1000".to_owned()],
        hardware_fresh: None,
    }
}
