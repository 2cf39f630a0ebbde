//! attestd-bench: drives a running daemon's socket with N concurrent clients, each
//! on its own connection, and prints latency percentiles and throughput.
//!
//! `attestd-bench --socket /run/attestd/api.sock --clients 64 --seconds 10`
//! `attestd-bench --rpc fetch-x509 ...` measures the SPIFFE Workload API instead
//! (the caller must be registered; the first calls fill the SVID cache).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use attestd_proto::v1::attestation_client::AttestationClient;
use attestd_proto::v1::AttestRequest;
use clap::Parser;
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
async fn one(
    rpc: Rpc,
    channel: &tonic::transport::Channel,
    nonce: &mut [u8; 32],
    rng: &ring::rand::SystemRandom,
) -> Result<(), tonic::Status> {
    use attestd_proto::spiffe::spiffe_workload_api_client::SpiffeWorkloadApiClient;
    match rpc {
        Rpc::Attest => {
            let _ = rng.fill(nonce);
            AttestationClient::new(channel.clone())
                .attest(AttestRequest {
                    nonce: nonce.to_vec(),
                    audience: String::new(),
                    hardware_fresh: false,
                })
                .await?;
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
    Ok(())
}

struct ClientResult {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn client_loop(args: &Args, barrier: &tokio::sync::Barrier) -> Result<ClientResult, String> {
    let channel = attestd::api::client::connect(&args.socket)
        .await
        .map_err(|e| format!("connect {}: {e}", args.socket.display()))?;
    let rng = ring::rand::SystemRandom::new();
    let mut nonce = [0u8; 32];
    for _ in 0..args.warmup {
        one(args.rpc, &channel, &mut nonce, &rng)
            .await
            .map_err(|s| format!("warm-up failed: {s}"))?;
    }
    // Every client measures over the same window, after everyone has warmed up.
    barrier.wait().await;
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let mut result = ClientResult {
        latencies_us: Vec::with_capacity(100_000),
        errors: 0,
    };
    while Instant::now() < until {
        let started = Instant::now();
        match one(args.rpc, &channel, &mut nonce, &rng).await {
            Ok(_) => result
                .latencies_us
                .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32),
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
    let args = std::sync::Arc::new(Args::parse());
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
    for task in tasks {
        match task.await {
            Ok(Ok(result)) => {
                latencies.extend(result.latencies_us);
                errors += result.errors;
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
    if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
