//! Node attestation end to end: a real swtpm with EK certificates from a test
//! CA, the issuer serving real TLS on loopback, and the daemon (or the daemon's
//! protocol steps, where a test must tamper with one) attesting.

use std::path::{Path, PathBuf};

use attestd::daemon::Daemon;
use attestd::node::{answer_challenge, challenge_request, IssuerClient, LogPaths, NodeError};
use attestd_attestors::tpm::{EkAlgorithm, Tpm};
use attestd_tests::swtpm::{Swtpm, SwtpmOptions, TestCa};
use tokio::sync::oneshot;

mod common;
use common::{
    daemon_config, issuer_config, next_outcome, open_tpm, svid_spiffe_id, TestIssuer, DEADLINE,
    TRUST_DOMAIN,
};

/// SHA-256 of the RSA EK's SubjectPublicKeyInfo, as the issuer names nodes.
async fn ek_hash(tpm: &Tpm) -> String {
    let ek = tpm.ek(EkAlgorithm::Rsa2048).await.unwrap();
    let spki = attestd_verifier::TpmPublic::parse(&ek.public)
        .unwrap()
        .spki_der()
        .unwrap();
    hex::encode(ring::digest::digest(&ring::digest::SHA256, &spki))
}

fn no_logs(dir: &Path) -> LogPaths {
    LogPaths {
        boot: dir.join("no-boot-log"),
        ima: dir.join("no-ima-log"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_gets_a_node_svid_for_its_ek_renews_it_and_renews_again_after_an_issuer_restart()
{
    let dir = tempfile::tempdir().unwrap();
    let swtpm = Swtpm::start().unwrap();
    let expected_id = {
        let tpm = open_tpm(&swtpm, &dir.path().join("tpm-state")).await;
        format!(
            "spiffe://{TRUST_DOMAIN}/attestd/node/{}",
            ek_hash(&tpm).await
        )
    };
    let config = issuer_config(dir.path(), Some(swtpm.ca()), None, "");
    let mut config = config;
    config.node_svid_ttl_secs = 4;
    let mut issuer = TestIssuer::start(config, dir.path()).await;

    let bound = Daemon::new(daemon_config(dir.path(), &swtpm, &issuer))
        .bind()
        .await
        .unwrap();
    let state = bound.node_state();
    let mut outcomes = state.outcomes();
    let (stop_daemon, daemon_stopped) = oneshot::channel::<()>();
    let daemon = tokio::spawn(bound.serve(async {
        let _ = daemon_stopped.await;
    }));

    next_outcome(&mut outcomes).await;
    let first = state
        .current_svid()
        .unwrap_or_else(|| panic!("no SVID: {:?}", state.last_error()));
    assert_eq!(first.spiffe_id, expected_id);
    assert_eq!(svid_spiffe_id(&first.chain[0], &issuer.bundle), expected_id);
    assert!(
        first
            .decisions
            .iter()
            .any(|d| d.contains("chains to a trusted CA")),
        "{:?}",
        first.decisions
    );

    // With its node SVID, the daemon reports itself healthy on its socket.
    {
        let channel = attestd::api::client::connect(&dir.path().join("api.sock"))
            .await
            .unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel)
            .watch(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        tokio::time::timeout(DEADLINE, async {
            while let Some(update) = health.message().await.unwrap() {
                if update.status()
                    == tonic_health::pb::health_check_response::ServingStatus::Serving
                {
                    return;
                }
            }
            panic!("the health stream ended without SERVING");
        })
        .await
        .expect("SERVING within the deadline");
    }

    // Evidence from an attested daemon carries its node SVID chain, so a
    // verifier with nothing but the issuer's bundle knows which TPM it is from.
    evidence_names_the_node(dir.path(), &issuer, &expected_id).await;

    // A 4 s SVID is renewed after 2 s, by a whole new exchange.
    next_outcome(&mut outcomes).await;
    let second = state
        .current_svid()
        .unwrap_or_else(|| panic!("renewal failed: {:?}", state.last_error()));
    assert_eq!(second.spiffe_id, expected_id);
    assert_ne!(second.chain[0], first.chain[0], "a new certificate");

    // The issuer restarts on the same address with the same CA files. Renewals
    // go on without anyone doing anything.
    let listen = issuer.addr;
    issuer.stop().await;
    let mut config = issuer.config.clone();
    config.listen = listen;
    let issuer = TestIssuer::start(config, dir.path()).await;
    let before = state.current_svid().map(|svid| svid.chain[0].clone());
    loop {
        next_outcome(&mut outcomes).await;
        if let Some(svid) = state.current_svid() {
            if Some(&svid.chain[0]) != before.as_ref() && state.last_error().is_none() {
                assert_eq!(svid_spiffe_id(&svid.chain[0], &issuer.bundle), expected_id);
                break;
            }
        }
    }
    let _ = stop_daemon.send(());
    daemon.await.unwrap().unwrap();
}

/// Asks the daemon for evidence over its socket and verifies it as
/// `attestd-issuer verify` does, offline, with only the issuer's bundle.
async fn evidence_names_the_node(dir: &Path, issuer: &TestIssuer, expected_id: &str) {
    use attestd_issuer::offline::{LoadedPolicy, OfflineError};
    use attestd_proto::v1::attestation_client::AttestationClient;
    let nonce = b"offline-verifier-nonce".to_vec();
    let channel = attestd::api::client::connect(&dir.join("api.sock"))
        .await
        .unwrap();
    let evidence = AttestationClient::new(channel)
        .attest(attestd_proto::v1::AttestRequest {
            nonce: nonce.clone(),
            ..Default::default()
        })
        .await
        .expect("the daemon attests its caller")
        .into_inner()
        .evidence;
    let write_policy = |name: &str, extra: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "trust_domain = \"{TRUST_DOMAIN}\"\nbundle = {:?}\n{extra}",
                issuer.bundle.display().to_string()
            ),
        )
        .unwrap();
        LoadedPolicy::load(&path).expect("the policy loads")
    };
    let verified = write_policy("offline.toml", "")
        .verify(&evidence, &nonce, attestd::node::unix_now())
        .expect("evidence from an attested node verifies offline");
    let node = verified.node.expect("the node is named");
    assert_eq!(node.spiffe_id, expected_id);
    let uid = format!("unix:uid:{}", unsafe { libc::getuid() });
    assert!(verified.claims.selectors.contains(&uid));

    // A policy that admits only another node refuses it, and says which node.
    let other = write_policy(
        "other-node.toml",
        &format!("nodes = [\"{}\"]\n", "0".repeat(64)),
    );
    match other.verify(&evidence, &nonce, attestd::node::unix_now()) {
        Err(OfflineError::NodeNotAllowed { node }) => assert_eq!(node, expected_id),
        other => panic!("expected NodeNotAllowed, got {other:?}"),
    }
}

/// Runs the node's steps by hand so one of them can be tampered with; returns
/// what the issuer said to the final request.
struct Node {
    _swtpm: Swtpm,
    tpm: Tpm,
    session_key: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start(options: SwtpmOptions) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let swtpm = Swtpm::start_with(options).unwrap();
        let tpm = open_tpm(&swtpm, dir.path()).await;
        let signer = attestd::signer::EvidenceSigner::generate().unwrap();
        Node {
            _swtpm: swtpm,
            tpm,
            session_key: signer.public_key().to_vec(),
            _dir: dir,
        }
    }

    async fn ek_hash(&self) -> String {
        ek_hash(&self.tpm).await
    }
}

fn refusal(error: NodeError) -> String {
    match error {
        NodeError::Refused { code, message } => {
            assert_eq!(code, tonic::Code::PermissionDenied, "{message}");
            message
        }
        other => panic!("expected a refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ek_certificate_from_an_untrusted_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(SwtpmOptions::default()).await;
    let other_ca = TestCa::new().unwrap();
    let issuer = TestIssuer::start(
        issuer_config(
            dir.path(),
            Some(&other_ca),
            None,
            "[policy]\nek_trust = \"certificate\"",
        ),
        dir.path(),
    )
    .await;
    let request = challenge_request(&node.tpm, EkAlgorithm::Rsa2048, &node.session_key)
        .await
        .unwrap();
    let message = refusal(issuer.client().challenge(request).await.unwrap_err());
    assert!(
        message.contains("EK not trusted") && message.contains("does not chain to a trusted EK CA"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ek_that_is_not_enrolled_is_refused_and_an_enrolled_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(SwtpmOptions {
        ek_certs: false,
        ..SwtpmOptions::default()
    })
    .await;
    let someone_else = "ab".repeat(32);
    let issuer = TestIssuer::start(
        issuer_config(
            dir.path(),
            None,
            Some(&[someone_else]),
            "[policy]\nek_trust = \"allowlist\"",
        ),
        dir.path(),
    )
    .await;
    let request = challenge_request(&node.tpm, EkAlgorithm::Rsa2048, &node.session_key)
        .await
        .unwrap();
    let message = refusal(
        issuer
            .client()
            .challenge(request.clone())
            .await
            .unwrap_err(),
    );
    let hash = node.ek_hash().await;
    assert!(
        message.contains(&format!("EK {hash} is not enrolled")),
        "{message}"
    );

    // Enrolled: the same TPM gets through the whole exchange.
    let dir2 = tempfile::tempdir().unwrap();
    let issuer = TestIssuer::start(
        issuer_config(
            dir2.path(),
            None,
            Some(std::slice::from_ref(&hash)),
            "[policy]\nek_trust = \"allowlist\"",
        ),
        dir2.path(),
    )
    .await;
    let client = issuer.client();
    let challenge = client.challenge(request).await.unwrap();
    let answer = answer_challenge(
        &node.tpm,
        &challenge,
        &node.session_key,
        &no_logs(dir2.path()),
    )
    .await
    .unwrap();
    let granted = client.attest(answer).await.unwrap();
    assert_eq!(
        granted.spiffe_id,
        format!("spiffe://{TRUST_DOMAIN}/attestd/node/{hash}")
    );
    assert!(granted
        .policy_decisions
        .iter()
        .any(|d| d.contains("enrolled")));
}

/// A node that has asked an issuer (trusting its EK CA, with `rules`) for a
/// challenge and got one.
struct Challenged {
    node: Node,
    client: IssuerClient,
    challenge: attestd_proto::v1::ChallengeResponse,
    _issuer: TestIssuer,
    dir: tempfile::TempDir,
}

impl Challenged {
    async fn start(rules: &str) -> Challenged {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(SwtpmOptions::default()).await;
        let issuer = TestIssuer::start(
            issuer_config(dir.path(), Some(node._swtpm.ca()), None, rules),
            dir.path(),
        )
        .await;
        let client = issuer.client();
        let request = challenge_request(&node.tpm, EkAlgorithm::Rsa2048, &node.session_key)
            .await
            .unwrap();
        let challenge = client.challenge(request).await.unwrap();
        Challenged {
            node,
            client,
            challenge,
            _issuer: issuer,
            dir,
        }
    }

    /// The node's answer, quoted for `session_key`.
    async fn answer_for(&self, session_key: &[u8]) -> attestd_proto::v1::AttestNodeRequest {
        answer_challenge(
            &self.node.tpm,
            &self.challenge,
            session_key,
            &no_logs(self.dir.path()),
        )
        .await
        .unwrap()
    }
}

/// One full exchange with `tamper` applied to the final request; returns the
/// refusal message.
async fn refused_after(
    rules: &str,
    tamper: impl FnOnce(&mut attestd_proto::v1::AttestNodeRequest),
) -> String {
    let challenged = Challenged::start(rules).await;
    let mut answer = challenged.answer_for(&challenged.node.session_key).await;
    tamper(&mut answer);
    refusal(challenged.client.attest(answer).await.unwrap_err())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ak_that_fails_activation_is_refused() {
    let message = refused_after("", |answer| answer.activated_secret[0] ^= 1).await;
    assert!(message.contains("AK activation failed"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pcr_outside_policy_is_refused_with_the_rule_named() {
    let rule = format!("pcr.sha256.7 == \"{}\"", "ff".repeat(32));
    let message = refused_after(&format!("[policy]\nrules = [{rule:?}]"), |_| {}).await;
    assert!(
        message.contains(&format!("policy rule `{rule}` failed")),
        "{message}"
    );
    assert!(message.contains("the quoted value is"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_nonce_is_refused() {
    let challenged = Challenged::start("").await;
    let answer = challenged.answer_for(&challenged.node.session_key).await;
    challenged
        .client
        .attest(answer.clone())
        .await
        .expect("the first answer is accepted");
    let message = refusal(challenged.client.attest(answer).await.unwrap_err());
    assert!(message.contains("already used"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_bound_to_another_session_key_is_refused() {
    // The quote's extraData binds the nonce to the key the SVID will certify; an
    // answer quoted for one key cannot get an SVID for another.
    let challenged = Challenged::start("").await;
    let other_key = attestd::signer::EvidenceSigner::generate()
        .unwrap()
        .public_key()
        .to_vec();
    let answer = challenged.answer_for(&other_key).await;
    let message = refusal(challenged.client.attest(answer).await.unwrap_err());
    assert!(message.contains("quote rejected"), "{message}");
}

/// A real boot event log, captured from an OVMF guest (see its README).
fn fixture_log() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../verifier/tests/fixtures/eventlog/ovmf-direct-kernel-ima-ng/binary_bios_measurements",
    )
}

/// Makes the swtpm's SHA-256 PCRs 0-7 what the fixture's firmware left: every
/// measured event's digest is extended, in order, with tpm2-tools.
fn extend_fixture_into(swtpm: &Swtpm, log: &[u8]) {
    let parsed = attestd_verifier::parse_event_log(log).unwrap();
    let mut args = Vec::new();
    for event in &parsed.events {
        if event.pcr > 7 || event.event_type == 3 {
            continue; // EV_NO_ACTION is never extended
        }
        let digest = event.digest(0x000b).unwrap();
        args.push(format!("{}:sha256={}", event.pcr, hex::encode(digest)));
    }
    assert!(
        args.len() > 10,
        "the fixture measures boot: {} events",
        args.len()
    );
    let status = std::process::Command::new("tpm2_pcrextend")
        .args(&args)
        .env("TPM2TOOLS_TCTI", swtpm.tcti())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_boot_log_that_replays_is_accepted_and_a_tampered_one_is_refused() {
    let log = std::fs::read(fixture_log()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let swtpm = Swtpm::start().unwrap();
    extend_fixture_into(&swtpm, &log);
    let tpm = open_tpm(&swtpm, &dir.path().join("state")).await;
    let session_key = attestd::signer::EvidenceSigner::generate()
        .unwrap()
        .public_key()
        .to_vec();
    let issuer = TestIssuer::start(
        issuer_config(
            dir.path(),
            Some(swtpm.ca()),
            None,
            "[policy]\nrequire_event_log = true\nrules = [\"secure_boot == false\"]",
        ),
        dir.path(),
    )
    .await;
    let client = issuer.client();
    let attempt = |logs: LogPaths| {
        let client = client.clone();
        let tpm = tpm.clone();
        let session_key = session_key.clone();
        async move {
            let request = challenge_request(&tpm, EkAlgorithm::Rsa2048, &session_key)
                .await
                .unwrap();
            let challenge = client.challenge(request).await.unwrap();
            let answer = answer_challenge(&tpm, &challenge, &session_key, &logs)
                .await
                .unwrap();
            client.attest(answer).await
        }
    };

    let real = LogPaths {
        boot: fixture_log(),
        ima: dir.path().join("no-ima-log"),
    };
    let granted = attempt(real).await.expect("the real log replays");
    assert!(
        granted
            .policy_decisions
            .iter()
            .any(|d| d.contains("boot event log replays")),
        "{:?}",
        granted.policy_decisions
    );
    assert!(
        granted
            .policy_decisions
            .iter()
            .any(|d| d.contains("secure_boot == false: held")),
        "{:?}",
        granted.policy_decisions
    );

    // One bit of one measured digest changed: the log no longer replays.
    let parsed = attestd_verifier::parse_event_log(&log).unwrap();
    let victim = parsed
        .events
        .iter()
        .find(|event| event.pcr == 4 && event.event_type != 3)
        .expect("PCR 4 has a measurement")
        .digest(0x000b)
        .unwrap()
        .to_vec();
    let at = log
        .windows(victim.len())
        .position(|window| window == victim.as_slice())
        .unwrap();
    let mut tampered = log.clone();
    tampered[at] ^= 0x01;
    let tampered_path = dir.path().join("tampered-log");
    std::fs::write(&tampered_path, &tampered).unwrap();
    let message = refusal(
        attempt(LogPaths {
            boot: tampered_path,
            ima: dir.path().join("no-ima-log"),
        })
        .await
        .unwrap_err(),
    );
    assert!(message.contains("boot event log rejected"), "{message}");
    assert!(message.contains("PCR sha256:4"), "{message}");
}
