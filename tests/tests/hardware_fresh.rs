//! Hardware-fresh evidence on a real swtpm: requests that arrive while the TPM
//! is busy share one quote, each caller gets a proof for its own leaf, and
//! what the daemon returns verifies with attestd-verifier and, for the quote
//! itself, with tpm2-tools' `tpm2_checkquote`.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use attestd::fresh::FreshQuoter;
use attestd::tpm2_files::encode_pcrs;
use attestd_attestors::tpm::{PcrBank, PcrBankValues, PcrSelection, PcrValues};
use attestd_proto::evidence::{parse_evidence, FreshQuote};
use attestd_proto::v1::attestation_client::AttestationClient;
use attestd_proto::v1::AttestRequest;
use attestd_tests::swtpm::Swtpm;
use attestd_verifier::evidence::{verify_evidence, EvidencePolicy, FreshPolicy, NodeTrust};
use attestd_verifier::merkle::{self, MerkleTree};
use attestd_verifier::{verify_quote, HashAlg, TpmPublic};
use tokio::sync::Semaphore;

mod common;
use common::{
    daemon_config, issuer_config, open_tpm, serve_until_attested, TestIssuer, DEADLINE,
    TRUST_DOMAIN,
};

fn leaf(i: usize) -> merkle::Hash {
    merkle::leaf_hash(&(i as u64).to_be_bytes(), &[i as u8; 32]).unwrap()
}

/// The quote in `fresh` signs a root that `leaf` reaches through its proof.
fn check_against_tpm_ak(fresh: &FreshQuote, leaf: &merkle::Hash, ak: &TpmPublic) -> [u8; 32] {
    let root = merkle::root_from_inclusion(leaf, fresh.leaf_index, fresh.leaf_count, &fresh.proof)
        .expect("the proof has the right shape");
    let mut pcrs = attestd_verifier::PcrValues::new();
    for pcr in &fresh.pcrs {
        pcrs.insert(
            HashAlg::from_tpm(pcr.bank).unwrap(),
            pcr.index,
            pcr.value.clone(),
        );
    }
    verify_quote(ak, &fresh.attest, &fresh.signature, &root, &pcrs)
        .expect("the TPM quoted exactly this root");
    root
}

async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    tokio::time::timeout(DEADLINE, async {
        while !condition() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within the deadline"));
}

/// A request that finds the TPM idle is quoted alone; the requests that arrive
/// while that quote is being made all share the next one, in arrival order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_arriving_during_a_quote_share_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let swtpm = Swtpm::start().unwrap();
    let tpm = open_tpm(&swtpm, dir.path()).await;
    let ak = TpmPublic::parse(&tpm.ak().public).unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let selection: PcrSelection = "sha256:0,1,2,3,4,5,6,7".parse().unwrap();
    let quoter = Arc::new(FreshQuoter::spawn_gated(
        tpm,
        selection,
        64,
        Some(gate.clone()),
    ));

    let first = tokio::spawn({
        let quoter = quoter.clone();
        async move { quoter.quote(leaf(1000)).await }
    });
    // The first request is in the TPM's hands (held at the gate)...
    wait_until("the first batch to start", || {
        quoter.stats().in_flight.load(Ordering::Relaxed) == 1
    })
    .await;
    // ...and 25 more arrive meanwhile.
    let waiting: Vec<_> = (0..25)
        .map(|i| {
            let quoter = quoter.clone();
            tokio::spawn(async move { (i, quoter.quote(leaf(i)).await) })
        })
        .collect();
    wait_until("25 requests to queue", || quoter.queued() == 25).await;
    gate.add_permits(2);

    let alone = first.await.unwrap().unwrap();
    assert_eq!((alone.leaf_index, alone.leaf_count), (0, 1));
    assert!(alone.proof.is_empty(), "a one-leaf batch needs no proof");
    assert_eq!(check_against_tpm_ak(&alone, &leaf(1000), &ak), leaf(1000));

    let mut roots = std::collections::BTreeSet::new();
    let mut by_position = vec![None; 25];
    for task in waiting {
        let (i, fresh) = task.await.unwrap();
        let fresh = fresh.unwrap();
        assert_eq!(fresh.leaf_count, 25);
        roots.insert(check_against_tpm_ak(&fresh, &leaf(i), &ak));
        by_position[fresh.leaf_index as usize] = Some(leaf(i));
    }
    assert_eq!(roots.len(), 1, "one quote answered all 25");
    // Each position went to exactly one caller, and the tree over the leaves
    // in those positions is the one the TPM quoted.
    let ordered: Vec<_> = by_position.into_iter().map(Option::unwrap).collect();
    assert_eq!(
        roots.into_iter().next(),
        Some(MerkleTree::new(ordered).unwrap().root())
    );
    assert_eq!(quoter.stats().quotes.load(Ordering::Relaxed), 2);
    assert_eq!(quoter.stats().largest_batch.load(Ordering::Relaxed), 25);
}

/// Every hardware-fresh evidence returned to concurrent callers verifies,
/// carries its own caller's nonce, and its quote passes tpm2_checkquote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_each_get_verifiable_fresh_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let swtpm = Swtpm::start().unwrap();
    let config = issuer_config(dir.path(), Some(swtpm.ca()), None, "");
    let issuer = TestIssuer::start(config, dir.path()).await;
    let (stop, daemon) = serve_until_attested(daemon_config(dir.path(), &swtpm, &issuer)).await;

    let socket = dir.path().join("api.sock");
    let callers: Vec<_> = (0..32u32)
        .map(|i| {
            let socket = socket.clone();
            tokio::spawn(async move {
                let channel = attestd::api::client::connect(&socket).await.unwrap();
                let nonce = format!("caller-{i:04}-fresh-nonce").into_bytes();
                let evidence = AttestationClient::new(channel)
                    .attest(AttestRequest {
                        nonce: nonce.clone(),
                        audience: String::new(),
                        hardware_fresh: true,
                    })
                    .await
                    .expect("hardware-fresh evidence")
                    .into_inner()
                    .evidence;
                (nonce, evidence)
            })
        })
        .collect();
    let bundle = pem::parse_many(std::fs::read(&issuer.bundle).unwrap())
        .unwrap()
        .into_iter()
        .map(|pem| pem.into_contents())
        .collect::<Vec<_>>();
    let trust = NodeTrust::new(&bundle, TRUST_DOMAIN).unwrap();
    let mut last = None;
    for caller in callers {
        let (nonce, evidence) = caller.await.unwrap();
        let policy = EvidencePolicy {
            expected_nonce: nonce.clone(),
            now_unix_secs: attestd::node::unix_now(),
            max_age_secs: 60,
            max_future_skew_secs: 5,
            audience: None,
            trusted_keys: None,
            node_trust: Some(trust.clone()),
            required_selectors: Vec::new(),
            hardware_fresh: Some(FreshPolicy::default()),
        };
        let verified = verify_evidence(&evidence, &policy).expect("fresh evidence verifies");
        assert_eq!(verified.claims.nonce, nonce);
        let fresh = verified.fresh.expect("the quote is reported");
        // swtpm's PCRs 0-7 are all zero: the quote says so, and a policy
        // expecting something else is refused.
        assert_eq!(fresh.pcrs.get(HashAlg::Sha256, 0), Some(&[0u8; 32][..]));
        // Someone else's nonce does not verify with this evidence.
        let mut other = policy.clone();
        other.expected_nonce = b"caller-9999-fresh-nonce".to_vec();
        assert!(verify_evidence(&evidence, &other).is_err());
        last = Some((evidence, fresh.root));
    }

    // The quote itself, checked by tpm2-tools with the root as qualifying data.
    let (evidence, root) = last.unwrap();
    let parsed = parse_evidence(&evidence).unwrap();
    let fresh = parsed.fresh.unwrap();
    tpm2_checkquote(dir.path(), &fresh, &root);

    // A PCR policy the node does not meet is refused with the PCR named.
    let mut expected = attestd_verifier::PcrValues::new();
    expected.insert(HashAlg::Sha256, 7, vec![0x77; 32]);
    let strict = EvidencePolicy {
        expected_nonce: parsed.claims.nonce.clone(),
        now_unix_secs: attestd::node::unix_now(),
        max_age_secs: 60,
        max_future_skew_secs: 5,
        audience: None,
        trusted_keys: None,
        node_trust: Some(trust),
        required_selectors: Vec::new(),
        hardware_fresh: Some(FreshPolicy {
            expected_pcrs: expected,
        }),
    };
    match verify_evidence(&evidence, &strict) {
        Err(attestd_verifier::evidence::EvidenceError::PcrPolicy(reason)) => {
            assert!(
                reason.contains("sha256:7") || reason.contains(":7"),
                "{reason}"
            )
        }
        other => panic!("expected a PCR policy refusal, got {other:?}"),
    }

    // `attestd-issuer verify`'s policy file can require the same.
    offline_policy_requires_fresh(
        dir.path(),
        &issuer,
        &socket,
        &evidence,
        &parsed.claims.nonce,
    )
    .await;
    drop(issuer);
    let _ = stop.send(());
    daemon.await.unwrap().unwrap();
}

async fn offline_policy_requires_fresh(
    dir: &Path,
    issuer: &TestIssuer,
    socket: &Path,
    fresh_evidence: &[u8],
    fresh_nonce: &[u8],
) {
    use attestd_issuer::offline::{LoadedPolicy, OfflineError};
    let path = dir.join("fresh-policy.toml");
    std::fs::write(
        &path,
        format!(
            "trust_domain = \"{TRUST_DOMAIN}\"\nbundle = {:?}\nhardware_fresh = true\n",
            issuer.bundle.display().to_string()
        ),
    )
    .unwrap();
    let policy = LoadedPolicy::load(&path).unwrap();
    let verified = policy
        .verify(fresh_evidence, fresh_nonce, attestd::node::unix_now())
        .expect("fresh evidence passes a policy that requires it");
    assert!(verified.fresh.is_some());
    // Plain evidence from the same attested node does not.
    let nonce = b"plain-evidence-nonce".to_vec();
    let channel = attestd::api::client::connect(socket).await.unwrap();
    let plain = AttestationClient::new(channel)
        .attest(AttestRequest {
            nonce: nonce.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .evidence;
    match policy.verify(&plain, &nonce, attestd::node::unix_now()) {
        Err(OfflineError::Refused(attestd_verifier::evidence::EvidenceError::NotHardwareFresh)) => {
        }
        other => panic!("expected NotHardwareFresh, got {other:?}"),
    }
}

fn tpm2_checkquote(dir: &Path, fresh: &FreshQuote, root: &[u8; 32]) {
    let ak = TpmPublic::parse(&fresh.ak_public).unwrap();
    let ak_pem = pem::encode(&pem::Pem::new("PUBLIC KEY", ak.spki_der().unwrap()));
    let mut values = Vec::new();
    let mut indices = Vec::new();
    for pcr in &fresh.pcrs {
        assert_eq!(pcr.bank, 0x000b, "the test quotes the SHA-256 bank");
        values.push((pcr.index, pcr.value.clone()));
        indices.push(pcr.index);
    }
    let selection = PcrSelection::new(vec![(PcrBank::Sha256, indices)]).unwrap();
    let pcrs = PcrValues {
        banks: vec![PcrBankValues {
            bank: PcrBank::Sha256,
            values,
        }],
    };
    std::fs::write(dir.join("ak.pem"), ak_pem).unwrap();
    std::fs::write(dir.join("quote.msg"), &fresh.attest).unwrap();
    std::fs::write(dir.join("quote.sig"), &fresh.signature).unwrap();
    std::fs::write(
        dir.join("quote.pcrs"),
        encode_pcrs(&selection, &pcrs).unwrap(),
    )
    .unwrap();
    let output = attestd_tests::tpm2_checkquote(dir, &hex::encode(root))
        .output()
        .expect("tpm2_checkquote runs");
    assert!(
        output.status.success(),
        "tpm2_checkquote refused the batch quote: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // And it refuses the same quote for another root.
    let output = attestd_tests::tpm2_checkquote(dir, &hex::encode([0u8; 32]))
        .output()
        .expect("tpm2_checkquote runs");
    assert!(!output.status.success(), "another root must not pass");
}
