//! Command-line interface: what an operator types, with help text that says what
//! each option means and what the defaults are.

use std::path::PathBuf;

use attestd_attestors::tpm::{AkAlgorithm, EkAlgorithm, PcrSelection, Tcti};
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "attestd",
    version,
    about = "Hardware-rooted identity from the TPM, for this host and its workloads",
    long_about = "attestd proves this host to an issuer with its TPM 2.0 (EK -> AK -> quote -> \
                  event logs) and gives local workloads signed evidence and SPIFFE identities. \
                  No bootstrap secret is needed."
)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log filter, e.g. "info" or "attestd=debug" (RUST_LOG syntax).
    #[arg(long, global = true, env = "ATTESTD_LOG", default_value = "warn")]
    pub log: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: attest callers on the API socket until SIGTERM or SIGINT.
    /// SIGHUP re-reads the configuration: a valid one restarts the service with
    /// it, an invalid one is logged and the running one stays. Tells systemd
    /// (Type=notify) READY, RELOADING and STOPPING.
    Run(ConfigArgs),
    /// Check a configuration (all layers) and print every problem with its file,
    /// line and key. Exits 0 when valid, 64 otherwise.
    CheckConfig(ConfigArgs),
    /// Ask the daemon for signed evidence about this very process, and write it
    /// to --out (a COSE_Sign1; see docs/evidence.md).
    Evidence(EvidenceArgs),
    /// Print the selectors the daemon sees for this very process.
    Describe(SocketArgs),
    /// Ask the running daemon whether it is healthy: it answers workloads and,
    /// when an issuer is configured, holds an unexpired node SVID. Prints
    /// SERVING or NOT_SERVING; exits 0 only for SERVING (for systemd, probes
    /// and scripts).
    Healthcheck(SocketArgs),
    /// Print a JWT-SVID for this very process to stdout, from the daemon's
    /// SPIFFE Workload API: for scripts and jobs that hand a token to a cloud
    /// (e.g. `aws sts assume-role-with-web-identity --web-identity-token
    /// "$(attestd token --audience sts.amazonaws.com)"`) instead of a stored key.
    Token(TokenArgs),
    /// Print the daemon's counters and gauges, one `name value` line each,
    /// sorted (the credential cache, requests to the issuer; docs/workload-api.md).
    Stats(SocketArgs),
    /// Quote PCRs with the AK and write tpm2-tools files for cross-checking.
    ///
    /// Writes ak.pem, ak.pub (TPMT_PUBLIC), ak.name, quote.msg, quote.sig and
    /// quote.pcrs to --out, then verifies them with attestd-verifier. Check them with:
    /// tpm2_checkquote -u DIR/ak.pem -m DIR/quote.msg -s DIR/quote.sig
    /// -f DIR/quote.pcrs -g sha256 -q NONCE
    Quote(QuoteArgs),
    /// The TPM's endorsement key: what the issuer enrols.
    #[command(subcommand)]
    Ek(EkCommand),
}

#[derive(Debug, Subcommand)]
pub enum EkCommand {
    /// Print the EK's hash (the line for the issuer's EK allowlist) and its
    /// certificate (subject, issuer, validity, PEM); optionally verify the
    /// certificate against the roots the issuer will trust, and write the files to --out.
    Show(EkArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Main configuration file (TOML). Without it, built-in defaults apply.
    #[arg(long, env = "ATTESTD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Drop-in directory: every *.toml in it is applied after --config, in name order.
    #[arg(long, env = "ATTESTD_CONFIG_DIR", default_value = attestd::config::DEFAULT_DROPIN_DIR)]
    pub config_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct SocketArgs {
    /// The daemon's API socket.
    #[arg(long, env = "ATTESTD_SOCKET", default_value = "/run/attestd/api.sock")]
    pub socket: PathBuf,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub socket: SocketArgs,
    /// The token's audience (`aud`); repeat for several. The relying party
    /// checks it: for AWS STS, sts.amazonaws.com.
    #[arg(long = "audience", required = true)]
    pub audiences: Vec<String>,
    /// Which SPIFFE ID, when this process is registered under several;
    /// default: the first the daemon returns.
    #[arg(long)]
    pub spiffe_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct EvidenceArgs {
    #[command(flatten)]
    pub socket: SocketArgs,
    /// The relying party's nonce, hex, 8 to 64 bytes.
    #[arg(long, value_parser = parse_evidence_nonce)]
    pub nonce: Nonce,
    /// Who the evidence is for (optional; becomes the attestd.audience claim).
    #[arg(long, default_value = "")]
    pub audience: String,
    /// Ask for hardware-fresh evidence: a TPM quote made after this request,
    /// over a batch that includes it (docs/evidence.md).
    #[arg(long)]
    pub hardware_fresh: bool,
    /// Where to write the evidence; "-" for standard output.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct TpmArgs {
    /// Which TPM: device:/dev/tpmrm0, swtpm:host=H,port=P, or tabrmd[:bus_type=session].
    #[arg(long, env = "ATTESTD_TCTI", default_value_t = Tcti::default())]
    pub tcti: Tcti,
    /// Directory for the AK blobs; the same directory gives the same AK on every run.
    #[arg(long, env = "ATTESTD_STATE_DIR", default_value = "/var/lib/attestd")]
    pub state_dir: PathBuf,
    /// AK type: ecc-p256 (default), rsa2048 or rsa2048-pss.
    #[arg(long, default_value_t = AkAlgorithm::EccP256)]
    pub ak_algorithm: AkAlgorithm,
    /// EK that parents the AK: rsa2048 (default), ecc-p256 or ecc-p384.
    #[arg(long, default_value_t = EkAlgorithm::Rsa2048)]
    pub ek_algorithm: EkAlgorithm,
}

#[derive(Debug, Args)]
pub struct QuoteArgs {
    #[command(flatten)]
    pub tpm: TpmArgs,
    /// Qualifying data for the quote, hex, 1 to 64 bytes (the verifier's nonce).
    #[arg(long, value_parser = parse_nonce)]
    pub nonce: Nonce,
    /// PCRs to quote, tpm2-tools syntax: sha256:0,1,2+sha1:0 or sha256:all.
    #[arg(long, default_value = "sha256:0,1,2,3,4,5,6,7")]
    pub pcrs: PcrSelection,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct EkArgs {
    /// Which TPM: device:/dev/tpmrm0, swtpm:host=H,port=P, or tabrmd[:bus_type=session].
    #[arg(long, env = "ATTESTD_TCTI", default_value_t = Tcti::default())]
    pub tcti: Tcti,
    /// Which EK: the daemon's `tpm.ek_algorithm` (rsa2048, ecc-p256 or ecc-p384).
    #[arg(long, default_value_t = EkAlgorithm::Rsa2048)]
    pub ek_algorithm: EkAlgorithm,
    /// Output directory for ek.pub, ek-cert.der and ek-chain-N.der (created if missing).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Trusted EK root CA certificates (PEM bundle or DER); when given, the EK
    /// certificate must chain to one of them.
    #[arg(long)]
    pub roots: Option<PathBuf>,
    /// Intermediate CA certificates (PEM bundle or DER), in addition to the chain
    /// stored in the TPM's NV.
    #[arg(long, requires = "roots")]
    pub intermediates: Option<PathBuf>,
}

/// Qualifying data for a quote, already checked to be 1 to 64 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nonce(pub Vec<u8>);

fn parse_nonce(text: &str) -> Result<Nonce, String> {
    let bytes = hex::decode(text.trim()).map_err(|e| format!("not hex: {e}"))?;
    match bytes.len() {
        0 => Err("the nonce is empty".into()),
        n if n > attestd_attestors::tpm::MAX_QUALIFYING_DATA => Err(format!(
            "the nonce is {n} bytes; a TPM quote carries at most {} bytes",
            attestd_attestors::tpm::MAX_QUALIFYING_DATA
        )),
        _ => Ok(Nonce(bytes)),
    }
}

fn parse_evidence_nonce(text: &str) -> Result<Nonce, String> {
    let bytes = hex::decode(text.trim()).map_err(|e| format!("not hex: {e}"))?;
    let (min, max) = (
        attestd_proto::evidence::NONCE_MIN,
        attestd_proto::evidence::NONCE_MAX,
    );
    if (min..=max).contains(&bytes.len()) {
        Ok(Nonce(bytes))
    } else {
        Err(format!(
            "the nonce is {} bytes; it must be {min} to {max}",
            bytes.len()
        ))
    }
}

pub fn init_logging(args: &LogArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal: journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[cfg(test)]
#[path = "cli_test.rs"]
mod tests;
