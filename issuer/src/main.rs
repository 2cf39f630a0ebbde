//! attestd-issuer: verifies attestd nodes, and mints SVIDs for them and their workloads.

use std::path::PathBuf;
use std::process::ExitCode;

use attestd_issuer::{Config, Issuer};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "attestd-issuer",
    version,
    about = "The reference issuer for attestd: node attestation with no bootstrap secret, and SVIDs for the workloads of attested nodes"
)]
struct Cli {
    /// Log filter, e.g. "info" or "attestd_issuer=debug".
    #[arg(
        long,
        env = "ATTESTD_ISSUER_LOG",
        default_value = "info",
        global = true
    )]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve node attestation and workload identity over TLS (and OIDC
    /// discovery, with [oidc]) until SIGTERM or SIGINT. SIGHUP reloads the EK
    /// roots, the allowlist, the registration entries, the JWT keys and the
    /// OIDC certificate files.
    Run {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Check a config file (its policy rules, and its registration entries
    /// file if it names one) without serving.
    CheckConfig {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Registration entries: which workloads get which SPIFFE IDs.
    Entries {
        #[command(subcommand)]
        command: EntriesCommand,
    },
    /// JWT-SVID signing keys: rotate them, list them (docs/oidc.md).
    Jwt {
        #[command(subcommand)]
        command: JwtCommand,
    },
    /// Print the CA certificate (PEM) daemons must trust, creating the CA if
    /// it does not exist yet.
    Bundle {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Verify an evidence file offline (no issuer, node or network needed):
    /// its signature, its node SVID chain against the policy's CA bundle, its
    /// nonce and age, and the policy's nodes, selectors and audience. Prints
    /// what it proved and exits 0, or prints why it refused and exits 1.
    /// Get evidence with `attestd evidence --nonce HEX --out FILE`.
    Verify {
        /// The evidence (a COSE_Sign1 file), or "-" for standard input.
        #[arg(value_name = "EVIDENCE")]
        evidence: PathBuf,
        /// The offline policy (TOML): trust_domain, bundle, and optionally
        /// max_age_secs, nodes, required_selectors, audience. See docs/issuer.md.
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        /// The nonce the relying party gave the workload, hex (8 to 64 bytes).
        #[arg(long, value_name = "HEX")]
        nonce: String,
        /// Verify as of this time (seconds since the Unix epoch) instead of
        /// now, e.g. to audit evidence kept from the past.
        #[arg(long, value_name = "UNIX_SECS")]
        at: Option<i64>,
    },
}

#[derive(Subcommand)]
enum JwtCommand {
    /// Add a signing key that activates one pre-publication window from now
    /// ([jwt] prepublish_secs). Running issuers publish it within their poll
    /// interval (at once on SIGHUP) and sign with it from its activation
    /// time; the old key stays published until its tokens have expired.
    /// Run it as the issuer's user: the key file is private to its owner.
    Rotate {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// List the signing keys: activation time, state, kid and file.
    List {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum EntriesCommand {
    /// Check an entries file. Prints how many entries it holds and exits 0,
    /// or prints each problem and exits 64 (66 if it cannot be read).
    Check {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The issuer's trust domain, e.g. example.org. Without it, the
        /// entries must all share one.
        #[arg(long, value_name = "TD")]
        trust_domain: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("attestd-issuer: cannot start the async runtime: {error}");
            return ExitCode::from(71);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err((message, code)) => {
            eprintln!("attestd-issuer: {message}");
            ExitCode::from(code)
        }
    }
}

async fn run(command: Command) -> Result<(), (String, u8)> {
    let load = |path: &PathBuf| {
        Config::load(path).map_err(|e| (format!("invalid configuration: {e}"), 64))
    };
    match command {
        Command::CheckConfig { config: path } => {
            let config = load(&path)?;
            if let Some(entries) = &config.entries {
                check_entries(entries, Some(&config.trust_domain))?;
            }
            println!("{}: ok", path.display());
            Ok(())
        }
        Command::Entries {
            command: EntriesCommand::Check { file, trust_domain },
        } => check_entries(&file, trust_domain.as_deref()),
        Command::Jwt {
            command: JwtCommand::Rotate { config },
        } => {
            let config = load(&config)?;
            let now = unix_now();
            let rotated =
                attestd_issuer::jwt::rotate(&config, now).map_err(|e| (e.to_string(), 74))?;
            println!("kid: {}", rotated.kid);
            println!(
                "activates at: {} (Unix seconds; in {} s)",
                rotated.activation,
                rotated.activation - now
            );
            println!("file: {}", rotated.path.display());
            let schedule = attestd_issuer::jwt::Schedule::from_config(&config.jwt);
            println!(
                "running issuers publish it within {} s, or at once on SIGHUP",
                schedule.poll_interval().as_secs()
            );
            Ok(())
        }
        Command::Jwt {
            command: JwtCommand::List { config },
        } => {
            use attestd_issuer::jwt::KeyState;
            let config = load(&config)?;
            let keys =
                attestd_issuer::jwt::list(&config, unix_now()).map_err(|e| (e.to_string(), 74))?;
            for key in keys {
                let state = match key.state {
                    KeyState::Pending => "pending".to_owned(),
                    KeyState::Upcoming => "published".to_owned(),
                    KeyState::Signing => "signing".to_owned(),
                    KeyState::Retired { until } => format!("retired-until-{until}"),
                    KeyState::Expired => "expired".to_owned(),
                };
                println!(
                    "{} {state} {} {}",
                    key.activation,
                    key.kid,
                    key.path.display()
                );
            }
            Ok(())
        }
        Command::Bundle { config } => {
            let config = load(&config)?;
            let ca = attestd_issuer::ca::Ca::load_or_generate(&config.ca, &config.trust_domain)
                .map_err(|e| (e.to_string(), 69))?;
            print!("{}", ca.cert_pem());
            Ok(())
        }
        Command::Verify {
            evidence,
            policy,
            nonce,
            at,
        } => verify(&evidence, &policy, &nonce, at),
        Command::Run { config } => {
            let config = load(&config)?;
            let issuer = Issuer::bind(config)
                .await
                .map_err(|e| (e.to_string(), 69))?;
            let shutdown = async {
                let Ok(mut terminate) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                };
                tokio::select! {
                    _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
                }
            };
            issuer
                .serve(shutdown)
                .await
                .map_err(|e| (e.to_string(), 69))
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// Checks an entries file; prints each problem on its own line.
fn check_entries(file: &std::path::Path, trust_domain: Option<&str>) -> Result<(), (String, u8)> {
    use attestd_issuer::entries::{Entries, EntriesError};
    if let Some(domain) = trust_domain {
        if !attestd_issuer::config::is_trust_domain(domain) {
            return Err((
                format!("--trust-domain {domain:?} is not a SPIFFE trust domain (lowercase letters, digits, '.', '-', '_')"),
                64,
            ));
        }
    }
    match Entries::load(file, trust_domain) {
        Ok((entries, _)) => {
            println!(
                "{}: {} entries, trust domain {}",
                file.display(),
                entries.len(),
                entries.trust_domain().unwrap_or("(none)")
            );
            Ok(())
        }
        Err(error) => {
            let problems = error.problems();
            for problem in &problems {
                eprintln!("{problem}");
            }
            let code = if matches!(error, EntriesError::Read { .. }) {
                66
            } else {
                64
            };
            Err((
                format!("{}: {} problem(s)", file.display(), problems.len()),
                code,
            ))
        }
    }
}

/// Exit codes as sysexits(3): 1 refused, 64 usage, 66 unreadable input.
fn verify(
    evidence: &std::path::Path,
    policy: &std::path::Path,
    nonce: &str,
    at: Option<i64>,
) -> Result<(), (String, u8)> {
    use attestd_issuer::offline::{read_evidence, LoadedPolicy, OfflineError};
    let code = |error: &OfflineError| match error {
        OfflineError::Read { .. } => 66,
        OfflineError::Policy { .. } => 64,
        OfflineError::TooLarge { .. }
        | OfflineError::Refused(_)
        | OfflineError::NodeNotAllowed { .. } => 1,
    };
    let fail = |error: OfflineError| (error.to_string(), code(&error));
    let nonce = hex::decode(nonce.trim()).map_err(|e| (format!("--nonce is not hex: {e}"), 64))?;
    let policy = LoadedPolicy::load(policy).map_err(fail)?;
    let bytes = read_evidence(evidence).map_err(fail)?;
    let now = at.unwrap_or_else(unix_now);
    let verified = policy.verify(&bytes, &nonce, now).map_err(fail)?;
    let claims = &verified.claims;
    println!("evidence: accepted");
    if let Some(node) = &verified.node {
        println!("node: {}", node.spiffe_id);
        println!("node SVID valid until: {} (unix)", node.not_after);
    }
    println!(
        "issued at: {} (unix), {} s before the verification time",
        claims.issued_at,
        now.saturating_sub(claims.issued_at)
    );
    println!("selectors: {}", claims.selectors.join(" "));
    if let Some(fresh) = &verified.fresh {
        println!(
            "hardware-fresh: quoted by the node's AK, leaf {} of {}, root {}, TPM clock {} ms",
            fresh.leaf_index,
            fresh.leaf_count,
            hex::encode(fresh.root),
            fresh.clock
        );
        for (bank, index, value) in fresh.pcrs.iter() {
            println!("pcr: {bank}:{index} {}", hex::encode(value));
        }
    }
    if let Some(binary) = &claims.binary {
        println!(
            "binary: {} sha256:{}",
            binary.path,
            hex::encode(binary.sha256)
        );
    }
    println!(
        "host: {} ({} {}, boot {})",
        claims.host.hostname, claims.host.os, claims.host.kernel, claims.host.boot_id
    );
    if let Some(audience) = &claims.audience {
        println!("audience: {audience}");
    }
    Ok(())
}
