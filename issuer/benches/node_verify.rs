//! What the issuer's side of node attestation costs on one core, on real TPM
//! answers: a swtpm with EK certificates answers real challenges through the
//! daemon's own `challenge_request` and `answer_challenge`, and the bench times
//! the issuer's `Challenge` and `AttestNode` handlers on them.
//!   cargo bench -p attestd-issuer --bench node_verify
//!
//! A nonce is single use, so `AttestNode` runs over a pool of answers recorded
//! before the clock starts. Each pass over the pool gets a fresh `NodeService`
//! (same CA, so the same challenge-sealing key; construction is not timed):
//! every timed call is a complete, successful verification of an answer whose
//! nonce that service has not seen. Not timed: gRPC, TLS and protobuf
//! decoding, and log output (no tracing subscriber is installed).
//!
//! Two kinds of node. `no logs` sends no event log: the floor. `OVMF boot + IMA
//! logs` sends the real OVMF boot log and IMA log of the fixture
//! `verifier/tests/fixtures/eventlog/ovmf-direct-kernel-ima-ng`. Before any
//! quote is made, every digest those logs record is extended into the swtpm's
//! SHA-256 PCRs 0-7 and 10, so the quotes made for the issuer's challenges
//! cover PCRs that the logs really replay to; the issuer's policy for this kind
//! quotes PCRs 0-7 and 10, requires the boot log and has one rule.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::{Arc, RwLock};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use attestd::node::{answer_challenge, challenge_request, LogPaths};
use attestd_attestors::tpm::{AkAlgorithm, EkAlgorithm, Tpm, TpmConfig};
use attestd_issuer::ca::Ca;
use attestd_issuer::config::EkTrustMode;
use attestd_issuer::ek_trust::{self, EkTrust};
use attestd_issuer::node::NodeService;
use attestd_issuer::node_selectors;
use attestd_issuer::Config;
use attestd_proto::v1::node_attestation_server::NodeAttestation;
use attestd_proto::v1::{AttestNodeRequest, ChallengeRequest, ChallengeResponse};
use attestd_tests::swtpm::Swtpm;
use attestd_verifier::{
    make_credential, parse_event_log, parse_ima_log, verify_event_log, verify_ima_log,
    verify_quote, HashAlg, PcrValues, TpmPublic,
};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tonic::Request;

/// Answers recorded per kind of node (≈ 25 ms each on swtpm, challenge included).
const POOL: usize = 200;
const IMA_PCR: u8 = 10;
const TPM_ALG_SHA256: u16 = 0x000b;
const EV_NO_ACTION: u32 = 3;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../verifier/tests/fixtures/eventlog/ovmf-direct-kernel-ima-ng")
        .join(name)
}

/// One kind of node: the issuer's config for it and what its TPM answered.
struct Recorded {
    name: &'static str,
    config: Config,
    challenge_request: ChallengeRequest,
    /// The first challenge and answer, for the breakdown.
    challenge: ChallengeResponse,
    answers: Vec<AttestNodeRequest>,
}

/// Runs a future that never waits, as the issuer's handlers are: they do all
/// their work synchronously inside `async fn`s (boxed by `async_trait`).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("an issuer handler waited"),
    }
}

fn issuer_config(dir: &Path, swtpm: &Swtpm, policy: &str) -> Config {
    let roots = dir.join("ek-roots");
    std::fs::create_dir_all(&roots).unwrap();
    std::fs::copy(swtpm.ca().root_cert_pem(), roots.join("root.pem")).unwrap();
    std::fs::copy(
        swtpm.ca().intermediate_cert_pem(),
        roots.join("intermediate.pem"),
    )
    .unwrap();
    let text = format!(
        "listen = \"127.0.0.1:0\"\n\
         trust_domain = \"bench.example.org\"\n\
         challenge_ttl_secs = 3600\n\
         [ca]\n\
         cert = {cert:?}\n\
         key = {key:?}\n\
         [ek]\n\
         roots_dir = {roots:?}\n\
         [policy]\n\
         ek_trust = \"certificate\"\n\
         {policy}\n",
        cert = dir.join("ca.pem").display().to_string(),
        key = dir.join("ca.key").display().to_string(),
        roots = roots.display().to_string(),
    );
    Config::parse(&text, Path::new("bench-issuer.toml")).expect("valid issuer config")
}

fn service(config: &Config, ca: &Arc<Ca>, ek_trust: &Arc<RwLock<EkTrust>>) -> NodeService {
    NodeService::new(config.clone(), ca.clone(), ek_trust.clone()).expect("issuer service")
}

/// Extends every digest the fixture's boot log (PCRs 0-7) and IMA log (PCR 10)
/// record into the swtpm's SHA-256 bank, as firmware and kernel would have.
fn extend_fixture_logs(swtpm: &Swtpm) {
    let boot = parse_event_log(&std::fs::read(fixture("binary_bios_measurements")).unwrap())
        .expect("the fixture boot log parses");
    let mut extends: Vec<String> = boot
        .events
        .iter()
        .filter(|event| event.pcr <= 7 && event.event_type != EV_NO_ACTION)
        .map(|event| {
            let digest = event.digest(TPM_ALG_SHA256).expect("a SHA-256 digest");
            format!("{}:sha256={}", event.pcr, hex::encode(digest))
        })
        .collect();
    let ima = parse_ima_log(&std::fs::read(fixture("ima_binary_runtime_measurements")).unwrap())
        .expect("the fixture IMA log parses");
    extends.extend(
        ima.entries
            .iter()
            .filter(|entry| entry.pcr == u32::from(IMA_PCR))
            .map(|entry| {
                let digest = if entry.is_violation() {
                    vec![0xff; 32]
                } else {
                    HashAlg::Sha256.digest(&entry.template_data)
                };
                format!("{IMA_PCR}:sha256={}", hex::encode(digest))
            }),
    );
    // tpm2_pcrextend takes a few extends per invocation.
    for chunk in extends.chunks(16) {
        let status = std::process::Command::new("tpm2_pcrextend")
            .args(chunk)
            .env("TPM2TOOLS_TCTI", swtpm.tcti())
            .status()
            .expect("tpm2_pcrextend runs (tpm2-tools)");
        assert!(status.success(), "tpm2_pcrextend failed");
    }
}

/// Starts a swtpm, makes its PCRs what the fixture's logs say, and records
/// `POOL` real answers for each kind of node.
fn record(dir: &Path) -> (Swtpm, Vec<Recorded>, Arc<Ca>, Arc<RwLock<EkTrust>>) {
    let swtpm = Swtpm::start().expect("swtpm starts (scripts/ensure-deps.sh)");
    // Before our TPM client connects: swtpm serves one connection at a time.
    extend_fixture_logs(&swtpm);

    let kinds = [
        ("no logs", String::new(), None),
        (
            "OVMF boot + IMA logs",
            "quote_pcrs = [\"sha256:0,1,2,3,4,5,6,7,10\"]\n\
             require_event_log = true\n\
             rules = [\"secure_boot == false\"]"
                .to_owned(),
            Some(LogPaths {
                boot: fixture("binary_bios_measurements"),
                ima: fixture("ima_binary_runtime_measurements"),
            }),
        ),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tpm = Tpm::open(TpmConfig {
            tcti: swtpm.tcti().parse().unwrap(),
            state_dir: dir.join("tpm-state"),
            ek_algorithm: EkAlgorithm::Rsa2048,
            ak_algorithm: AkAlgorithm::EccP256,
            ..TpmConfig::default()
        })
        .await
        .expect("the TPM opens");
        let session_key = session_public_key();
        let challenge_request = challenge_request(&tpm, EkAlgorithm::Rsa2048, &session_key)
            .await
            .expect("the node's challenge request");

        let mut recorded = Vec::new();
        let mut shared = None;
        for (name, policy, logs) in kinds {
            let config = issuer_config(dir, &swtpm, &policy);
            let (ca, ek_trust) = shared.get_or_insert_with(|| {
                let ca = Ca::load_or_generate(&config.ca, &config.trust_domain).expect("CA");
                let ek_trust = EkTrust::load(&config.ek).expect("EK trust");
                (Arc::new(ca), Arc::new(RwLock::new(ek_trust)))
            });
            let logs = logs.unwrap_or_else(|| LogPaths {
                boot: dir.join("no-boot-log"),
                ima: dir.join("no-ima-log"),
            });
            let issuer = service(&config, ca, ek_trust);
            let started = Instant::now();
            let mut challenges = Vec::with_capacity(POOL);
            let mut answers = Vec::with_capacity(POOL);
            for _ in 0..POOL {
                let challenge = ready(NodeAttestation::challenge(
                    &issuer,
                    Request::new(challenge_request.clone()),
                ))
                .expect("the issuer challenges the node")
                .into_inner();
                let answer = answer_challenge(&tpm, &challenge, &session_key, &logs)
                    .await
                    .expect("the node answers");
                challenges.push(challenge);
                answers.push(answer);
            }
            eprintln!(
                "{name}: recorded {POOL} answers in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            // Every answer must pass, or the bench would time refusals.
            let checker = service(&config, ca, ek_trust);
            for answer in &answers {
                ready(NodeAttestation::attest(
                    &checker,
                    Request::new(answer.clone()),
                ))
                .unwrap_or_else(|status| panic!("{name}: refused: {}", status.message()));
            }
            recorded.push(Recorded {
                name,
                config,
                challenge_request: challenge_request.clone(),
                challenge: challenges.swap_remove(0),
                answers,
            });
        }
        let (ca, ek_trust) = shared.expect("at least one kind of node");
        (swtpm, recorded, ca, ek_trust)
    })
}

/// A P-256 session key as the daemon makes one: the SVID certifies it.
fn session_public_key() -> Vec<u8> {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec()
}

/// Times `iters` verifications, each of an answer the verifying service has
/// not seen: a fresh service per pass over the pool.
fn time_attest(
    kind: &Recorded,
    ca: &Arc<Ca>,
    ek_trust: &Arc<RwLock<EkTrust>>,
    iters: u64,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let issuer = service(&kind.config, ca, ek_trust);
        let batch = left.min(kind.answers.len() as u64) as usize;
        let requests: Vec<_> = kind.answers[..batch]
            .iter()
            .cloned()
            .map(Request::new)
            .collect();
        let started = Instant::now();
        for request in requests {
            let granted = ready(NodeAttestation::attest(&issuer, request));
            assert!(granted.is_ok(), "a recorded answer was refused");
            let _ = black_box(granted);
        }
        total += started.elapsed();
        left -= batch as u64;
    }
    total
}

/// The quoted PCRs as the issuer reads them from an answer.
fn pcr_values(answer: &AttestNodeRequest) -> PcrValues {
    let mut pcrs = PcrValues::new();
    for value in &answer.pcr_values {
        let bank = HashAlg::from_tpm(value.hash_algorithm as u16).unwrap();
        pcrs.insert(bank, value.index as u8, value.value.clone());
    }
    pcrs
}

fn node_verify(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (_swtpm, recorded, ca, ek_trust) = record(dir.path());

    let mut group = c.benchmark_group("issuer");
    group.throughput(Throughput::Elements(1));
    for kind in &recorded {
        group.bench_function(format!("AttestNode, {}", kind.name), |b| {
            b.iter_custom(|iters| time_attest(kind, &ca, &ek_trust, iters))
        });
    }
    let issuer = service(&recorded[0].config, &ca, &ek_trust);
    group.bench_function(
        "Challenge (EK certificate chain, MakeCredential, seal)",
        |b| {
            b.iter_batched(
                || Request::new(recorded[0].challenge_request.clone()),
                |request| ready(NodeAttestation::challenge(&issuer, request)).unwrap(),
                BatchSize::SmallInput,
            )
        },
    );
    group.finish();

    // Parts of AttestNode, each with the call the issuer makes, on the answer
    // to the first challenge of the node with logs.
    let kind = recorded.last().expect("the node with logs");
    let answer = &kind.answers[0];
    let ak = TpmPublic::parse(&kind.challenge_request.ak_public).unwrap();
    let mut qualifying = kind.challenge.nonce.clone();
    qualifying.extend_from_slice(&kind.challenge_request.session_public_key);
    let qualifying = HashAlg::Sha256.digest(&qualifying);
    let pcrs = pcr_values(answer);
    let quoted = verify_quote(
        &ak,
        &answer.quote_attest,
        &answer.quote_signature,
        &qualifying,
        &pcrs,
    )
    .expect("the recorded quote verifies")
    .pcr_values;
    let mut parts = c.benchmark_group("AttestNode part");
    parts.bench_function("quote (ECDSA P-256 AK, PCR digest)", |b| {
        b.iter(|| {
            verify_quote(
                &ak,
                &answer.quote_attest,
                &answer.quote_signature,
                &qualifying,
                &pcrs,
            )
            .unwrap()
        })
    });
    parts.bench_function("boot event log parse + replay", |b| {
        b.iter(|| {
            let log = parse_event_log(&answer.boot_event_log).unwrap();
            verify_event_log(&log, &quoted).unwrap()
        })
    });
    parts.bench_function("IMA log parse + replay", |b| {
        b.iter(|| {
            let log = parse_ima_log(&answer.ima_log).unwrap();
            verify_ima_log(&log, &quoted, IMA_PCR).unwrap()
        })
    });
    // The node SVID as AttestNode mints it: with the node selectors the
    // quote and the boot log proved.
    let ek_spki = TpmPublic::parse(&kind.challenge_request.ek_public)
        .unwrap()
        .spki_der()
        .unwrap();
    let ek_hash = ek_trust::ek_hash(&ek_spki);
    let boot = attestd_issuer::logs::boot_facts(&answer.boot_event_log, &quoted)
        .expect("the boot log replays");
    let spiffe_id = format!(
        "spiffe://bench.example.org/attestd/node/{}",
        hex::encode(ek_hash)
    );
    parts.bench_function("node SVID (selectors, rcgen, ECDSA P-256 CA)", |b| {
        b.iter(|| {
            let selectors = node_selectors::collect(&ek_hash, &quoted, Some(&boot));
            ca.issue_node_svid(
                &spiffe_id,
                &kind.challenge_request.session_public_key,
                Duration::from_secs(3600),
                &selectors,
                None,
            )
            .unwrap()
        })
    });
    parts.finish();

    // Parts of Challenge.
    let request = &kind.challenge_request;
    let ek = TpmPublic::parse(&request.ek_public).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut parts = c.benchmark_group("Challenge part");
    parts.bench_function("EK certificate → intermediate → root", |b| {
        b.iter(|| {
            ek_trust
                .read()
                .unwrap()
                .check(
                    EkTrustMode::Certificate,
                    &ek_spki,
                    Some(&request.ek_certificate),
                    &request.ek_chain,
                    now,
                )
                .unwrap()
        })
    });
    parts.bench_function("MakeCredential (RSA-2048 EK)", |b| {
        b.iter(|| make_credential(&ek, &ak.name(), &[7; 32], &mut rand_core::OsRng).unwrap())
    });
    parts.finish();
}

criterion_group!(benches, node_verify);
criterion_main!(benches);
