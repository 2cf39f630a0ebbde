//! `attestd run` configuration: typed settings with defaults, loaded in layers
//! (defaults, the file, a drop-in directory, `ATTESTD_SECTION__KEY` variables).
//! Every problem is reported with where it came from: file and line, or variable.

mod layers;

use std::path::PathBuf;
use std::time::Duration;

use attestd_attestors::tpm::{AkAlgorithm, EkAlgorithm, PcrSelection, Tcti};
use serde::Deserialize;

pub use layers::{load, ConfigError, ConfigProblem, ConfigSources};

/// Where `attestd run` looks when no `--config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/attestd/attestd.toml";
/// Drop-ins: every `*.toml` here, in name order, after the main file.
pub const DEFAULT_DROPIN_DIR: &str = "/etc/attestd/attestd.d";

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub api: ApiConfig,
    pub tpm: TpmSection,
    pub attestors: AttestorsConfig,
    pub binary: BinaryConfig,
    pub issuer: IssuerSection,
}

/// The upstream issuer that turns this node's TPM evidence into a node SVID.
/// With no `url`, the daemon does not attest the node (workload evidence then
/// carries only the session key).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct IssuerSection {
    /// e.g. "https://issuer.example.org:8443"
    pub url: Option<String>,
    /// The issuer's CA certificates (PEM): all the daemon needs to trust it.
    /// Public data, not a secret.
    pub ca_bundle: Option<PathBuf>,
    /// The name to verify in the issuer's TLS certificate, if not the URL's host.
    pub server_name: Option<String>,
    /// First retry after a failed attestation; doubles up to `retry_max_ms`,
    /// with jitter.
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// One attestation exchange, both calls and the TPM work included.
    pub timeout_ms: u64,
    /// Where the measured-boot and IMA logs are read from.
    pub boot_event_log: PathBuf,
    pub ima_log: PathBuf,
    /// Workload selector sets whose SVIDs are cached (and, separately, JWT-SVID
    /// sets). Past this, the least recently used set no stream watches is
    /// dropped. About 3 KiB each.
    pub svid_cache_entries: usize,
}

impl Default for IssuerSection {
    fn default() -> Self {
        IssuerSection {
            url: None,
            ca_bundle: None,
            server_name: None,
            retry_initial_ms: 1_000,
            retry_max_ms: 60_000,
            timeout_ms: 30_000,
            boot_event_log: PathBuf::from("/sys/kernel/security/tpm0/binary_bios_measurements"),
            ima_log: PathBuf::from("/sys/kernel/security/ima/binary_runtime_measurements"),
            svid_cache_entries: 4096,
        }
    }
}

/// The local gRPC API on a Unix socket.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    pub socket: PathBuf,
    /// Permissions of the socket file: who may ask the daemon anything at all.
    /// A string of octal digits ("0666") or a TOML octal integer (0o666).
    #[serde(deserialize_with = "deserialize_mode")]
    pub socket_mode: u32,
    /// Requests being served at once, over all connections.
    pub max_concurrent_requests: usize,
    /// Open connections at once; beyond this, new connections are closed at accept.
    pub max_connections: usize,
    /// Open connections per caller uid, so one user's flood cannot lock others out.
    pub max_connections_per_uid: usize,
    /// Deadline for one request, attestation and signing included.
    pub request_timeout_ms: u64,
    /// Largest request or response message, in bytes.
    pub max_message_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            socket: PathBuf::from("/run/attestd/api.sock"),
            socket_mode: 0o666,
            max_concurrent_requests: 256,
            max_connections: 1024,
            max_connections_per_uid: 128,
            request_timeout_ms: 5_000,
            max_message_bytes: 64 * 1024,
        }
    }
}

impl ApiConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// The TPM. With `enabled = false` the daemon runs without one: evidence then has
/// no `ueid` and nothing is hardware-rooted (useful for development only).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TpmSection {
    pub enabled: bool,
    pub tcti: String,
    pub state_dir: PathBuf,
    pub ek_algorithm: String,
    pub ak_algorithm: String,
    /// PCRs that hardware-fresh quotes cover, as tpm2-tools writes them.
    pub fresh_pcrs: String,
    /// Most requests one hardware-fresh quote answers (1 to 65536).
    pub fresh_max_batch: usize,
}

impl Default for TpmSection {
    fn default() -> Self {
        TpmSection {
            enabled: true,
            tcti: Tcti::default().to_string(),
            state_dir: PathBuf::from("/var/lib/attestd"),
            ek_algorithm: EkAlgorithm::Rsa2048.to_string(),
            ak_algorithm: AkAlgorithm::EccP256.to_string(),
            fresh_pcrs: "sha256:0,1,2,3,4,5,6,7".to_owned(),
            fresh_max_batch: crate::fresh::DEFAULT_MAX_BATCH,
        }
    }
}

/// Workload attestors.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AttestorsConfig {
    /// Each attestor's deadline; a slow one is reported as failed, the rest still count.
    pub deadline_ms: u64,
    /// Where procfs is mounted (tests point this at fixtures).
    pub proc_root: PathBuf,
}

impl Default for AttestorsConfig {
    fn default() -> Self {
        AttestorsConfig {
            deadline_ms: 1_000,
            proc_root: PathBuf::from("/proc"),
        }
    }
}

impl AttestorsConfig {
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }
}

/// The executable digest cache.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct BinaryConfig {
    pub max_entries: usize,
    pub max_file_bytes: u64,
    pub max_concurrent_hashes: usize,
    /// A digest is cached only once the file has been unchanged this long before
    /// hashing began (file timestamps are coarse; see docs/binary-cache.md).
    pub racy_window_ms: u64,
}

impl Default for BinaryConfig {
    fn default() -> Self {
        BinaryConfig {
            max_entries: 4096,
            max_file_bytes: 4 << 30,
            max_concurrent_hashes: 2,
            racy_window_ms: 2_000,
        }
    }
}

fn deserialize_mode<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Mode {
        Text(String),
        Number(u32),
    }
    let mode = match Mode::deserialize(deserializer)? {
        Mode::Number(n) => n,
        Mode::Text(text) => {
            u32::from_str_radix(text.trim_start_matches("0o"), 8).map_err(|_| {
                serde::de::Error::custom(format!("\"{text}\" is not an octal mode like \"0660\""))
            })?
        }
    };
    if mode > 0o777 {
        return Err(serde::de::Error::custom(format!(
            "mode {mode:o} has bits beyond 0777"
        )));
    }
    Ok(mode)
}

/// Settings that only make sense together, checked after all layers are merged.
impl Config {
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, key: &str, message: &str| {
            if !ok {
                problems.push((key.to_owned(), message.to_owned()));
            }
        };
        check(
            self.api.socket.is_absolute(),
            "api.socket",
            "must be an absolute path",
        );
        check(
            self.api.max_concurrent_requests > 0,
            "api.max_concurrent_requests",
            "must be at least 1",
        );
        check(
            self.api.max_connections > 0,
            "api.max_connections",
            "must be at least 1",
        );
        check(
            self.api.max_connections_per_uid > 0,
            "api.max_connections_per_uid",
            "must be at least 1",
        );
        check(
            (1..=600_000).contains(&self.api.request_timeout_ms),
            "api.request_timeout_ms",
            "must be between 1 and 600000",
        );
        check(
            (1024..=16 << 20).contains(&self.api.max_message_bytes),
            "api.max_message_bytes",
            "must be between 1024 and 16777216",
        );
        check(
            (1..=60_000).contains(&self.attestors.deadline_ms),
            "attestors.deadline_ms",
            "must be between 1 and 60000",
        );
        check(
            self.binary.max_entries > 0,
            "binary.max_entries",
            "must be at least 1",
        );
        check(
            self.binary.max_concurrent_hashes > 0,
            "binary.max_concurrent_hashes",
            "must be at least 1",
        );
        if self.issuer.url.is_some() {
            check(
                self.issuer.ca_bundle.is_some(),
                "issuer.ca_bundle",
                "is required with issuer.url: it is how the daemon knows the issuer",
            );
            check(
                self.tpm.enabled,
                "issuer.url",
                "node attestation needs the TPM (tpm.enabled = true)",
            );
            check(
                self.issuer
                    .url
                    .as_deref()
                    .is_some_and(|url| url.starts_with("https://")),
                "issuer.url",
                "must be an https:// URL",
            );
        }
        check(
            self.issuer.retry_initial_ms >= 1
                && self.issuer.retry_initial_ms <= self.issuer.retry_max_ms,
            "issuer.retry_initial_ms",
            "must be at least 1 and at most issuer.retry_max_ms",
        );
        check(
            (1..=600_000).contains(&self.issuer.timeout_ms),
            "issuer.timeout_ms",
            "must be between 1 and 600000",
        );
        check(
            (1..=1_000_000).contains(&self.issuer.svid_cache_entries),
            "issuer.svid_cache_entries",
            "must be between 1 and 1000000",
        );
        if let Err(e) = self.tpm.tcti.parse::<Tcti>() {
            problems.push(("tpm.tcti".into(), e.to_string()));
        }
        if let Err(e) = self.tpm.ek_algorithm.parse::<EkAlgorithm>() {
            problems.push(("tpm.ek_algorithm".into(), e));
        }
        if let Err(e) = self.tpm.ak_algorithm.parse::<AkAlgorithm>() {
            problems.push(("tpm.ak_algorithm".into(), e));
        }
        if let Err(e) = self.tpm.fresh_pcrs.parse::<PcrSelection>() {
            problems.push(("tpm.fresh_pcrs".into(), e));
        }
        if !(1..=65_536).contains(&self.tpm.fresh_max_batch) {
            problems.push((
                "tpm.fresh_max_batch".into(),
                "must be between 1 and 65536".into(),
            ));
        }
        problems
    }
}

#[cfg(test)]
#[path = "config_test.rs"]
mod tests;
