//! The issuer's configuration: one TOML file. Everything else the issuer needs is
//! in the files it names (CA, EK trust) or is derived at start-up, so replicas
//! that share these files serve one fleet alike.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::policy::{NodePolicy, PolicyError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the gRPC-over-TLS server listens, e.g. "127.0.0.1:8443".
    pub listen: SocketAddr,
    /// The SPIFFE trust domain, e.g. "example.org".
    pub trust_domain: String,
    /// Names the TLS server certificate is issued for (DNS names or IP addresses).
    #[serde(default = "default_server_names")]
    pub server_names: Vec<String>,
    /// Node SVID lifetime.
    #[serde(default = "default_node_svid_ttl")]
    pub node_svid_ttl_secs: u64,
    /// How long a node has to answer a challenge.
    #[serde(default = "default_challenge_ttl")]
    pub challenge_ttl_secs: u64,
    pub ca: CaConfig,
    #[serde(default)]
    pub ek: EkConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    /// The registration entries file (TOML, docs/issuer.md); absent: no
    /// workload is entitled to an SVID. Re-read on SIGHUP.
    pub entries: Option<PathBuf>,
    #[serde(default)]
    pub jwt: JwtConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The JWT-SVID signing key (ECDSA P-256, PKCS#8 PEM), mode 0600.
    /// Generated on first start if it does not exist. Default: `jwt.key` in
    /// the directory of `ca.key`.
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    /// The CA certificate (PEM). Generated here on first start if neither it nor
    /// `key` exists; both must exist, or neither.
    pub cert: PathBuf,
    /// The CA private key (PKCS#8 PEM), mode 0600.
    pub key: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EkConfig {
    /// A directory of PEM files: the EK root and intermediate CAs to trust
    /// (manufacturers, clouds, hypervisors).
    pub roots_dir: Option<PathBuf>,
    /// A file of enrolled EKs: one hex SHA-256 of the EK public key
    /// (SubjectPublicKeyInfo DER) per line; `#` starts a comment.
    pub allowlist: Option<PathBuf>,
}

/// Which EK trust applies to a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EkTrustMode {
    /// An EK certificate that chains to `ek.roots_dir`, or an enrolled EK hash.
    #[default]
    Either,
    /// Only an EK certificate that chains to `ek.roots_dir`.
    Certificate,
    /// Only an enrolled EK hash.
    Allowlist,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default)]
    pub ek_trust: EkTrustMode,
    /// The PCRs every node quotes, as "bank:i,j,...", e.g. "sha256:0,1,2,3,4,5,6,7".
    #[serde(default = "default_quote_pcrs")]
    pub quote_pcrs: Vec<String>,
    /// Refuse nodes that send no boot event log.
    #[serde(default)]
    pub require_event_log: bool,
    /// Rules that must all hold; see docs/issuer.md for the grammar.
    #[serde(default)]
    pub rules: Vec<String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            ek_trust: EkTrustMode::default(),
            quote_pcrs: default_quote_pcrs(),
            require_event_log: false,
            rules: Vec::new(),
        }
    }
}

fn default_server_names() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into()]
}
fn default_node_svid_ttl() -> u64 {
    3600
}
fn default_challenge_ttl() -> u64 {
    60
}
fn default_quote_pcrs() -> Vec<String> {
    vec!["sha256:0,1,2,3,4,5,6,7".into()]
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {key}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{}: policy: {0}", path.display())]
    Policy { path: PathBuf, source: PolicyError },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks a config; `path` is for messages only.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            message,
        };
        let deserializer = toml::Deserializer::new(text);
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let key = error.path().to_string();
            invalid(key, error.into_inner().message().trim().to_owned())
        })?;
        if !is_trust_domain(&config.trust_domain) {
            return Err(invalid(
                "trust_domain".into(),
                format!(
                    "{:?} is not a SPIFFE trust domain (lowercase letters, digits, '.', '-', '_')",
                    config.trust_domain
                ),
            ));
        }
        if config.node_svid_ttl_secs == 0 {
            return Err(invalid(
                "node_svid_ttl_secs".into(),
                "must be at least 1".into(),
            ));
        }
        if config.challenge_ttl_secs == 0 {
            return Err(invalid(
                "challenge_ttl_secs".into(),
                "must be at least 1".into(),
            ));
        }
        if config.server_names.is_empty() {
            return Err(invalid(
                "server_names".into(),
                "name at least one DNS name or IP address".into(),
            ));
        }
        if config.ek.roots_dir.is_none() && config.ek.allowlist.is_none() {
            return Err(invalid(
                "ek".into(),
                "set ek.roots_dir, ek.allowlist, or both: with neither, no node can be trusted"
                    .into(),
            ));
        }
        // Parse the policy now, so a typo fails at start-up and names the rule.
        config.node_policy().map_err(|source| ConfigError::Policy {
            path: path.to_owned(),
            source,
        })?;
        Ok(config)
    }

    pub fn node_policy(&self) -> Result<NodePolicy, PolicyError> {
        NodePolicy::parse(&self.policy)
    }

    pub fn node_svid_ttl(&self) -> Duration {
        Duration::from_secs(self.node_svid_ttl_secs)
    }

    pub fn challenge_ttl(&self) -> Duration {
        Duration::from_secs(self.challenge_ttl_secs)
    }

    /// Where the JWT signing key lives: `jwt.key`, or next to the CA key.
    pub fn jwt_key_path(&self) -> PathBuf {
        match &self.jwt.key {
            Some(path) => path.clone(),
            None => self
                .ca
                .key
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join("jwt.key"),
        }
    }
}

/// SPIFFE trust domain names: lowercase letters, digits, dots, dashes and
/// underscores, 1 to 255 of them.
pub fn is_trust_domain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
}
