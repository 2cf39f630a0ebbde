//! attestd-bench: drives a running daemon's socket with N concurrent clients, each
//! on its own connection, and prints latency percentiles and throughput.
//!
//! `attestd-bench --socket /run/attestd/api.sock --clients 64 --seconds 10`

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
    about = "Load generator for attestd's Attest RPC"
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
}

struct ClientResult {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn client_loop(args: &Args, barrier: &tokio::sync::Barrier) -> Result<ClientResult, String> {
    let channel = attestd::api::client::connect(&args.socket)
        .await
        .map_err(|e| format!("connect {}: {e}", args.socket.display()))?;
    let mut client = AttestationClient::new(channel);
    let rng = ring::rand::SystemRandom::new();
    let mut nonce = [0u8; 32];
    let mut request = || {
        let _ = rng.fill(&mut nonce);
        AttestRequest {
            nonce: nonce.to_vec(),
            audience: String::new(),
            hardware_fresh: false,
        }
    };
    for _ in 0..args.warmup {
        client
            .attest(request())
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
        match client.attest(request()).await {
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
