//! Hardware-fresh evidence: a quote over a batch's Merkle root, from the AK the
//! node SVID names. The quotes here are built by hand and signed by a software
//! P-256 key standing in for the AK (the daemon's swtpm tests cover real TPM
//! quotes), so each test can break exactly one link.

use attestd_proto::evidence::{sign_payload, FreshPcr, FreshQuote, Headers};
use rcgen::CustomExtension;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

use super::node_test::{node_id, Ca};
use super::test_support::{claims, policy, SessionKey};
use super::{
    ak_name_extension_value, verify_evidence, EvidenceError, EvidencePolicy, FreshPolicy,
    AK_NAME_OID,
};
use crate::merkle::{self, MerkleTree};
use crate::tpm2::{HashAlg, PcrValues, TpmPublic};

/// restricted | sign | fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth
const AK_ATTRIBUTES: u32 = 0x0005_0072;
const PCR0: [u8; 32] = [0x00; 32];
const PCR7: [u8; 32] = [0x77; 32];

fn tpm2b(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A software P-256 key with a TPMT_PUBLIC like a TPM AK's.
struct SoftAk {
    key: EcdsaKeyPair,
    public: Vec<u8>,
}

impl SoftAk {
    fn new() -> SoftAk {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = key.public_key().as_ref().to_vec();
        let mut public = Vec::new();
        public.extend_from_slice(&0x0023u16.to_be_bytes()); // ECC
        public.extend_from_slice(&0x000bu16.to_be_bytes()); // nameAlg SHA-256
        public.extend_from_slice(&AK_ATTRIBUTES.to_be_bytes());
        public.extend_from_slice(&tpm2b(&[]));
        public.extend_from_slice(&0x0010u16.to_be_bytes()); // symmetric NULL
        public.extend_from_slice(&0x0018u16.to_be_bytes()); // ECDSA
        public.extend_from_slice(&0x000bu16.to_be_bytes()); // SHA-256
        public.extend_from_slice(&0x0003u16.to_be_bytes()); // P-256
        public.extend_from_slice(&0x0010u16.to_be_bytes()); // kdf NULL
        public.extend_from_slice(&tpm2b(&point[1..33]));
        public.extend_from_slice(&tpm2b(&point[33..]));
        SoftAk { key, public }
    }

    fn name(&self) -> Vec<u8> {
        TpmPublic::parse(&self.public).unwrap().name()
    }

    /// TPMT_SIGNATURE (ECDSA, SHA-256) over `message`.
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let der = self.key.sign(&SystemRandom::new(), message).unwrap();
        // DER SEQUENCE { INTEGER r, INTEGER s } → r, s without sign padding.
        let der = der.as_ref();
        let (r, rest) = der_integer(&der[2..]);
        let (s, _) = der_integer(rest);
        let mut out = Vec::new();
        out.extend_from_slice(&0x0018u16.to_be_bytes());
        out.extend_from_slice(&0x000bu16.to_be_bytes());
        out.extend_from_slice(&tpm2b(r));
        out.extend_from_slice(&tpm2b(s));
        out
    }

    /// A TPMS_ATTEST quote over PCRs 0 and 7 of SHA-256 with `extra_data`,
    /// and its signature.
    fn quote(&self, extra_data: &[u8], pcr0: &[u8], pcr7: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut attest = Vec::new();
        attest.extend_from_slice(&0xff54_4347u32.to_be_bytes());
        attest.extend_from_slice(&0x8018u16.to_be_bytes());
        attest.extend_from_slice(&tpm2b(&[0x00, 0x0b, 0x5a, 0x5a]));
        attest.extend_from_slice(&tpm2b(extra_data));
        attest.extend_from_slice(&4242u64.to_be_bytes()); // clock
        attest.extend_from_slice(&3u32.to_be_bytes()); // resetCount
        attest.extend_from_slice(&1u32.to_be_bytes()); // restartCount
        attest.push(1);
        attest.extend_from_slice(&7u64.to_be_bytes()); // firmware
        attest.extend_from_slice(&1u32.to_be_bytes());
        attest.extend_from_slice(&0x000bu16.to_be_bytes());
        attest.extend_from_slice(&[3, 0x81, 0, 0]); // PCRs 0 and 7
        let digest = ring::digest::digest(&ring::digest::SHA256, &[pcr0, pcr7].concat());
        attest.extend_from_slice(&tpm2b(digest.as_ref()));
        let signature = self.sign(&attest);
        (attest, signature)
    }
}

fn der_integer(bytes: &[u8]) -> (&[u8], &[u8]) {
    let len = usize::from(bytes[1]);
    let mut value = &bytes[2..2 + len];
    while value.len() > 1 && value[0] == 0 {
        value = &value[1..];
    }
    (value, &bytes[2 + len..])
}

fn pcrs(pcr0: &[u8], pcr7: &[u8]) -> Vec<FreshPcr> {
    vec![
        FreshPcr {
            bank: 0x000b,
            index: 0,
            value: pcr0.to_vec(),
        },
        FreshPcr {
            bank: 0x000b,
            index: 7,
            value: pcr7.to_vec(),
        },
    ]
}

/// An attested node: its session key, its AK, and the node SVID naming both.
struct Node {
    ca: Ca,
    key: SessionKey,
    ak: SoftAk,
    svid: Vec<u8>,
}

impl Node {
    fn new() -> Node {
        let ca = Ca::root("issuer");
        let key = SessionKey::generate();
        let ak = SoftAk::new();
        let name = ak.name();
        let svid = ca.svid_with(&key, &[node_id()], |params| {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    AK_NAME_OID,
                    ak_name_extension_value(&name),
                ));
        });
        Node { ca, key, ak, svid }
    }

    fn policy(&self) -> EvidencePolicy {
        EvidencePolicy {
            node_trust: Some(self.ca.trust()),
            hardware_fresh: Some(FreshPolicy::default()),
            ..policy()
        }
    }

    fn sign(&self, payload: Vec<u8>, fresh: &FreshQuote) -> Vec<u8> {
        self.sign_with_chain(payload, fresh, std::slice::from_ref(&self.svid))
    }

    fn sign_with_chain(&self, payload: Vec<u8>, fresh: &FreshQuote, chain: &[Vec<u8>]) -> Vec<u8> {
        sign_payload(
            payload,
            &self.key.public_point(),
            &Headers {
                x5chain: chain,
                fresh: Some(fresh),
            },
            |tbs| self.key.sign_raw(tbs),
        )
        .unwrap()
    }
}

/// A batch of `count` leaves in which ours is at `index`; the others are
/// other callers' leaves.
struct Batch {
    payload: Vec<u8>,
    tree: MerkleTree,
    index: usize,
}

fn batch(count: usize, index: usize) -> Batch {
    let payload = claims().to_cbor().unwrap();
    let ours = merkle::leaf_hash(&claims().nonce, &merkle::claims_digest(&payload)).unwrap();
    let leaves = (0..count)
        .map(|i| {
            if i == index {
                ours
            } else {
                merkle::leaf_hash(&(i as u64).to_be_bytes(), &[i as u8; 32]).unwrap()
            }
        })
        .collect();
    Batch {
        payload,
        tree: MerkleTree::new(leaves).unwrap(),
        index,
    }
}

fn fresh_for(ak: &SoftAk, batch: &Batch) -> FreshQuote {
    let (attest, signature) = ak.quote(&batch.tree.root(), &PCR0, &PCR7);
    FreshQuote {
        ak_public: ak.public.clone(),
        attest,
        signature,
        pcrs: pcrs(&PCR0, &PCR7),
        leaf_index: batch.index as u64,
        leaf_count: batch.tree.len() as u64,
        proof: batch.tree.proof(batch.index).unwrap(),
    }
}

#[test]
fn hardware_fresh_evidence_verifies_at_every_position_of_a_batch() {
    let node = Node::new();
    for (count, index) in [(1, 0), (2, 1), (5, 4), (64, 17)] {
        let batch = batch(count, index);
        let evidence = node.sign(batch.payload.clone(), &fresh_for(&node.ak, &batch));
        let verified = verify_evidence(&evidence, &node.policy()).unwrap();
        let fresh = verified.fresh.expect("the quote is reported");
        assert_eq!(fresh.root, batch.tree.root());
        assert_eq!(
            (fresh.leaf_index, fresh.leaf_count),
            (index as u64, count as u64)
        );
        assert_eq!(fresh.pcrs.get(HashAlg::Sha256, 7), Some(&PCR7[..]));
        assert_eq!(
            (fresh.clock, fresh.reset_count, fresh.restart_count),
            (4242, 3, 1)
        );
    }
}

#[test]
fn a_proof_for_another_batchs_root_is_refused() {
    let node = Node::new();
    let ours = batch(8, 3);
    let mut fresh = fresh_for(&node.ak, &ours);
    // The quote of a batch we were not in, with our proof.
    let other = batch(8, 5);
    let (attest, signature) = node.ak.quote(&other.tree.root(), &PCR0, &PCR7);
    (fresh.attest, fresh.signature) = (attest, signature);
    let evidence = node.sign(ours.payload.clone(), &fresh);
    assert!(matches!(
        verify_evidence(&evidence, &node.policy()),
        Err(EvidenceError::FreshProof(_))
    ));
}

#[test]
fn a_swapped_leaf_is_refused() {
    let node = Node::new();
    let ours = batch(8, 3);
    // Our quote and proof, claimed at the neighbour's position.
    let mut swapped = fresh_for(&node.ak, &ours);
    swapped.leaf_index = 2;
    let evidence = node.sign(ours.payload.clone(), &swapped);
    assert!(matches!(
        verify_evidence(&evidence, &node.policy()),
        Err(EvidenceError::FreshProof(_))
    ));
    // The neighbour's proof at our position.
    let mut neighbours = fresh_for(&node.ak, &ours);
    neighbours.proof = ours.tree.proof(2).unwrap();
    let evidence = node.sign(ours.payload.clone(), &neighbours);
    assert!(matches!(
        verify_evidence(&evidence, &node.policy()),
        Err(EvidenceError::FreshProof(_))
    ));
    // Other claims (another caller's evidence) with our proof.
    let mut other_claims = claims();
    other_claims.selectors = vec!["unix:uid:1000".to_owned()];
    let evidence = node.sign(other_claims.to_cbor().unwrap(), &fresh_for(&node.ak, &ours));
    assert!(matches!(
        verify_evidence(
            &evidence,
            &node.policy().clone_with_selectors(&["unix:uid:1000"])
        ),
        Err(EvidenceError::FreshProof(_))
    ));
}

#[test]
fn a_quote_by_another_ak_is_refused() {
    let node = Node::new();
    let stranger = SoftAk::new();
    let ours = batch(4, 1);
    // The other AK's genuine quote, naming the other AK.
    let evidence = node.sign(ours.payload.clone(), &fresh_for(&stranger, &ours));
    assert!(matches!(
        verify_evidence(&evidence, &node.policy()),
        Err(EvidenceError::FreshAk(_))
    ));
    // The other AK's quote presented as the node's AK.
    let mut disguised = fresh_for(&stranger, &ours);
    disguised.ak_public = node.ak.public.clone();
    let evidence = node.sign(ours.payload.clone(), &disguised);
    match verify_evidence(&evidence, &node.policy()) {
        Err(EvidenceError::FreshQuote(reason)) => assert!(reason.contains("signature"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pcr_values_must_match_the_quote_and_the_policy() {
    let node = Node::new();
    let ours = batch(3, 0);
    let mut lying = fresh_for(&node.ak, &ours);
    lying.pcrs = pcrs(&PCR0, &[0x78; 32]);
    let evidence = node.sign(ours.payload.clone(), &lying);
    assert!(matches!(
        verify_evidence(&evidence, &node.policy()),
        Err(EvidenceError::FreshQuote(_))
    ));

    let evidence = node.sign(ours.payload.clone(), &fresh_for(&node.ak, &ours));
    let mut expected = PcrValues::new();
    expected.insert(HashAlg::Sha256, 7, PCR7.to_vec());
    let passing = EvidencePolicy {
        hardware_fresh: Some(FreshPolicy {
            expected_pcrs: expected.clone(),
        }),
        ..node.policy()
    };
    verify_evidence(&evidence, &passing).unwrap();
    for (index, value) in [(7, vec![0x70; 32]), (8, vec![0; 32])] {
        let mut wanted = expected.clone();
        wanted.insert(HashAlg::Sha256, index, value);
        let policy = EvidencePolicy {
            hardware_fresh: Some(FreshPolicy {
                expected_pcrs: wanted,
            }),
            ..node.policy()
        };
        assert!(matches!(
            verify_evidence(&evidence, &policy),
            Err(EvidenceError::PcrPolicy(_))
        ));
    }
}

#[test]
fn the_policy_decides_whether_fresh_evidence_is_needed() {
    let node = Node::new();
    let plain = node
        .key
        .sign_certified(&claims(), std::slice::from_ref(&node.svid));
    assert_eq!(
        verify_evidence(&plain, &node.policy()).map(|_| ()),
        Err(EvidenceError::NotHardwareFresh)
    );
    // Without the requirement, the same evidence passes and reports no quote.
    let relaxed = EvidencePolicy {
        hardware_fresh: None,
        ..node.policy()
    };
    assert_eq!(verify_evidence(&plain, &relaxed).unwrap().fresh, None);
    // Asking for freshness without saying whose AK counts is a policy error.
    let unanchored = EvidencePolicy {
        node_trust: None,
        ..node.policy()
    };
    assert!(matches!(
        verify_evidence(&plain, &unanchored),
        Err(EvidenceError::InvalidPolicy(_))
    ));
}

#[test]
fn a_node_svid_naming_no_ak_cannot_vouch_for_a_quote() {
    let node = Node::new();
    let bare_svid = node.ca.svid(&node.key);
    let ours = batch(2, 0);
    let evidence = node.sign_with_chain(
        ours.payload.clone(),
        &fresh_for(&node.ak, &ours),
        &[bare_svid],
    );
    assert!(matches!(
        verify_evidence(&evidence, &node.policy()),
        Err(EvidenceError::FreshAk(_))
    ));
}

trait WithSelectors {
    fn clone_with_selectors(&self, selectors: &[&str]) -> EvidencePolicy;
}

impl WithSelectors for EvidencePolicy {
    fn clone_with_selectors(&self, selectors: &[&str]) -> EvidencePolicy {
        EvidencePolicy {
            required_selectors: selectors.iter().map(|s| (*s).to_owned()).collect(),
            ..self.clone()
        }
    }
}
