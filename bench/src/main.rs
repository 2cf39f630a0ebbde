//! attestd-bench: drives a running daemon's socket with N concurrent clients, each
//! on its own connection, and prints latency percentiles and throughput.
//!
//! `attestd-bench --socket /run/attestd/api.sock --clients 64 --seconds 10`
//! `attestd-bench --rpc fetch-x509 ...` measures the SPIFFE Workload API instead
//! (the caller must be registered; the first calls fill the SVID cache).
//! `attestd-bench --hardware-fresh --bundle CA.pem --trust-domain TD ...` asks
//! for hardware-fresh evidence and, after the measured window, verifies every
//! response with attestd-verifier against its own caller's nonce.
//! `attestd-bench raw-quote --tcti T --state-dir D` times back-to-back TPM
//! quotes with the daemon's AK: the TPM's own limit, run before the daemon
//! holds the TPM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use attestd_attestors::tpm::{PcrSelection, Tpm, TpmConfig};
use attestd_proto::v1::attestation_client::AttestationClient;
use attestd_proto::v1::AttestRequest;
use attestd_verifier::evidence::{
    verify_evidence, EvidencePolicy, FreshPolicy, NodeTrust, VerifiedEvidence,
};
use clap::{Parser, Subcommand};
use ring::rand::SecureRandom;

#[derive(Debug, Parser)]
#[command(
    name = "attestd-bench",
    about = "Load generator for attestd's socket: Attest, or SPIFFE Workload API fetches"
)]
struct Args {
    /// The daemon's API socket.
    #[arg(long, default_value = "/run/attestd/api.sock")]
    socket: PathBuf,
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// How long to measure, after the warm-up.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Requests per client before measuring (fills the daemon's caches).
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// What each request is.
    #[arg(long, value_enum, default_value_t = Rpc::Attest)]
    rpc: Rpc,
    /// Ask Attest for hardware-fresh evidence (a batched TPM quote). Needs
    /// --bundle and --trust-domain: every response is then verified.
    #[arg(long, requires_all = ["bundle", "trust_domain"])]
    hardware_fresh: bool,
    /// The issuer's CA bundle (PEM), to verify every evidence after the run.
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// The trust domain the node SVID must be in.
    #[arg(long)]
    trust_domain: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Times back-to-back TPM2_Quote commands with the AK in STATE_DIR, loaded
    /// once: the TPM's quote rate with nothing of attestd around it.
    RawQuote {
        /// The TPM, as in attestd.toml's tpm.tcti.
        #[arg(long)]
        tcti: String,
        /// The daemon's tpm.state_dir (its AK is created there if absent).
        #[arg(long)]
        state_dir: PathBuf,
        /// The PCRs to quote, as the daemon's tpm.fresh_pcrs.
        #[arg(long, default_value = "sha256:0,1,2,3,4,5,6,7")]
        pcrs: String,
        /// Quotes per measurement round.
        #[arg(long, default_value_t = 50)]
        batch: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Rpc {
    /// attestd.v1.Attestation/Attest with a fresh nonce.
    Attest,
    /// SpiffeWorkloadAPI/FetchX509SVID: open the stream, take the first message.
    FetchX509,
    /// SpiffeWorkloadAPI/FetchJWTSVID for one audience.
    FetchJwt,
}

/// A Workload API request, with the header the standard requires.
fn spiffe<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "workload.spiffe.io",
        tonic::metadata::MetadataValue::from_static("true"),
    );
    request
}

/// One request of the chosen kind.
/// Sends one request; returns the evidence when the request was an Attest.
async fn one(
    args: &Args,
    channel: &tonic::transport::Channel,
    nonce: &mut [u8; 32],
    rng: &ring::rand::SystemRandom,
) -> Result<Option<Vec<u8>>, tonic::Status> {
    use attestd_proto::spiffe::spiffe_workload_api_client::SpiffeWorkloadApiClient;
    match args.rpc {
        Rpc::Attest => {
            let _ = rng.fill(nonce);
            let evidence = AttestationClient::new(channel.clone())
                .attest(AttestRequest {
                    nonce: nonce.to_vec(),
                    audience: String::new(),
                    hardware_fresh: args.hardware_fresh,
                })
                .await?
                .into_inner()
                .evidence;
            return Ok(Some(evidence));
        }
        Rpc::FetchX509 => {
            let mut stream = SpiffeWorkloadApiClient::new(channel.clone())
                .fetch_x509svid(spiffe(attestd_proto::spiffe::X509svidRequest {}))
                .await?
                .into_inner();
            stream
                .message()
                .await?
                .ok_or_else(|| tonic::Status::internal("the stream ended without an SVID"))?;
        }
        Rpc::FetchJwt => {
            SpiffeWorkloadApiClient::new(channel.clone())
                .fetch_jwtsvid(spiffe(attestd_proto::spiffe::JwtsvidRequest {
                    audience: vec!["attestd-bench".to_owned()],
                    spiffe_id: String::new(),
                }))
                .await?;
        }
    }
    Ok(None)
}

struct ClientResult {
    latencies_us: Vec<u32>,
    errors: u64,
    /// (nonce, evidence) of every hardware-fresh response, checked after the run.
    evidence: Vec<([u8; 32], Vec<u8>)>,
}

async fn client_loop(args: &Args, barrier: &tokio::sync::Barrier) -> Result<ClientResult, String> {
    let channel = attestd::api::client::connect(&args.socket)
        .await
        .map_err(|e| format!("connect {}: {e}", args.socket.display()))?;
    let rng = ring::rand::SystemRandom::new();
    let mut nonce = [0u8; 32];
    for _ in 0..args.warmup {
        one(args, &channel, &mut nonce, &rng)
            .await
            .map_err(|s| format!("warm-up failed: {s}"))?;
    }
    // Every client measures over the same window, after everyone has warmed up.
    barrier.wait().await;
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let mut result = ClientResult {
        latencies_us: Vec::with_capacity(100_000),
        errors: 0,
        evidence: Vec::new(),
    };
    while Instant::now() < until {
        let started = Instant::now();
        match one(args, &channel, &mut nonce, &rng).await {
            Ok(evidence) => {
                result
                    .latencies_us
                    .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if let (true, Some(evidence)) = (args.hardware_fresh, evidence) {
                    result.evidence.push((nonce, evidence));
                }
            }
            Err(_) => result.errors += 1,
        }
    }
    Ok(result)
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

// One thread drives every client: the load generator shares the machine with the
// daemon, and a second runtime worker would spend cores on wake-ups rather than on
// requests (docs/BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::RawQuote {
        tcti,
        state_dir,
        pcrs,
        batch,
    }) = &args.command
    {
        return match raw_quote(tcti, state_dir, pcrs, *batch, args.seconds).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("attestd-bench raw-quote: {message}");
                ExitCode::FAILURE
            }
        };
    }
    let trust = match (&args.bundle, &args.trust_domain) {
        (Some(bundle), Some(trust_domain)) => match load_trust(bundle, trust_domain) {
            Ok(trust) => Some(trust),
            Err(message) => {
                eprintln!("attestd-bench: {message}");
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let args = std::sync::Arc::new(args);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(args.clients.max(1)));
    let tasks: Vec<_> = (0..args.clients.max(1))
        .map(|_| {
            let args = args.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move { client_loop(&args, &barrier).await })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut evidence = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(result)) => {
                latencies.extend(result.latencies_us);
                errors += result.errors;
                evidence.extend(result.evidence);
            }
            Ok(Err(message)) => {
                eprintln!("attestd-bench: {message}");
                return ExitCode::FAILURE;
            }
            Err(join) => {
                eprintln!("attestd-bench: client task failed: {join}");
                return ExitCode::FAILURE;
            }
        }
    }
    latencies.sort_unstable();
    let total = latencies.len();
    let seconds = args.seconds as f64;
    println!(
        "clients={} requests={} errors={} throughput={:.0}/s p50={}us p90={}us p99={}us p999={}us max={}us",
        args.clients,
        total,
        errors,
        total as f64 / seconds,
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 99.9),
        latencies.last().copied().unwrap_or(0),
    );
    let mut refused = 0;
    if let (true, Some(trust)) = (args.hardware_fresh, trust) {
        let report = verify_all(&evidence, &trust);
        refused = report.refused;
        println!(
            "verified={} refused={} quotes={} mean_batch={:.1} largest_batch={}",
            report.verified,
            report.refused,
            report.roots,
            report.verified as f64 / report.roots.max(1) as f64,
            report.largest_batch,
        );
        if let Some(first) = report.first_refusal {
            eprintln!("attestd-bench: first refusal: {first}");
        }
    }
    if errors > 0 || refused > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn load_trust(bundle: &std::path::Path, trust_domain: &str) -> Result<NodeTrust, String> {
    let pem = std::fs::read(bundle).map_err(|e| format!("{}: {e}", bundle.display()))?;
    let roots: Vec<Vec<u8>> = pem::parse_many(pem)
        .map_err(|e| format!("{}: {e}", bundle.display()))?
        .into_iter()
        .map(pem::Pem::into_contents)
        .collect();
    NodeTrust::new(&roots, trust_domain).map_err(|e| e.to_string())
}

struct VerifyReport {
    verified: usize,
    refused: usize,
    /// Distinct batch roots: how many quotes answered the run.
    roots: usize,
    largest_batch: u64,
    first_refusal: Option<String>,
}

/// Verifies every response as a relying party would, each against the nonce
/// its own client sent, with the issuer's bundle and nothing else.
fn verify_all(evidence: &[([u8; 32], Vec<u8>)], trust: &NodeTrust) -> VerifyReport {
    let mut report = VerifyReport {
        verified: 0,
        refused: 0,
        roots: 0,
        largest_batch: 0,
        first_refusal: None,
    };
    let mut roots = std::collections::HashSet::new();
    let now = attestd::node::unix_now();
    for (nonce, bytes) in evidence {
        let policy = EvidencePolicy {
            expected_nonce: nonce.to_vec(),
            now_unix_secs: now,
            // Checked after the run: allow for its length.
            max_age_secs: 3600,
            max_future_skew_secs: 5,
            audience: None,
            trusted_keys: None,
            node_trust: Some(trust.clone()),
            required_selectors: Vec::new(),
            hardware_fresh: Some(FreshPolicy::default()),
        };
        match verify_evidence(bytes, &policy) {
            Ok(VerifiedEvidence {
                claims,
                fresh: Some(fresh),
                ..
            }) if claims.nonce == nonce => {
                report.verified += 1;
                report.largest_batch = report.largest_batch.max(fresh.leaf_count);
                roots.insert(fresh.root);
            }
            Ok(_) => {
                report.refused += 1;
                report
                    .first_refusal
                    .get_or_insert_with(|| "evidence for another nonce".to_owned());
            }
            Err(error) => {
                report.refused += 1;
                report
                    .first_refusal
                    .get_or_insert_with(|| error.to_string());
            }
        }
    }
    report.roots = roots.len();
    report
}

/// Rounds of `batch` back-to-back quotes until `seconds` have passed.
async fn raw_quote(
    tcti: &str,
    state_dir: &std::path::Path,
    pcrs: &str,
    batch: usize,
    seconds: u64,
) -> Result<(), String> {
    let selection: PcrSelection = pcrs.parse()?;
    let tpm = Tpm::open(TpmConfig {
        tcti: tcti.parse().map_err(|e| format!("{e}"))?,
        state_dir: state_dir.to_owned(),
        ..TpmConfig::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut times = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        times.extend(
            tpm.time_quotes(selection.clone(), batch.max(1))
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    let total: Duration = times.iter().sum();
    let mut us: Vec<u32> = times
        .iter()
        .map(|t| t.as_micros().min(u32::MAX as u128) as u32)
        .collect();
    us.sort_unstable();
    println!(
        "raw_quotes={} rate={:.1}/s p50={}us p99={}us max={}us",
        us.len(),
        us.len() as f64 / total.as_secs_f64(),
        percentile(&us, 50.0),
        percentile(&us, 99.0),
        us.last().copied().unwrap_or(0),
    );
    Ok(())
}
