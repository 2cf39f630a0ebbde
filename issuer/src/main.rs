//! attestd-issuer: verifies attestd nodes and mints their SVIDs.

use std::path::PathBuf;
use std::process::ExitCode;

use attestd_issuer::{Config, Issuer};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "attestd-issuer",
    version,
    about = "The reference issuer for attestd: node attestation with no bootstrap secret"
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
    /// Serve node attestation over TLS until SIGTERM or SIGINT. SIGHUP reloads
    /// the EK roots and allowlist.
    Run {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Check a config file (and its policy rules) without serving.
    CheckConfig {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print the CA certificate (PEM) daemons must trust, creating the CA if
    /// it does not exist yet.
    Bundle {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
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
        Command::CheckConfig { config } => {
            load(&config)?;
            println!("{}: ok", config.display());
            Ok(())
        }
        Command::Bundle { config } => {
            let config = load(&config)?;
            let ca = attestd_issuer::ca::Ca::load_or_generate(&config.ca, &config.trust_domain)
                .map_err(|e| (e.to_string(), 69))?;
            print!("{}", ca.cert_pem());
            Ok(())
        }
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
