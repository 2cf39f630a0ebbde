//! The issuer's configuration: one TOML file. Everything else the issuer needs is
//! in the files it names (CA, EK trust) or is derived at start-up, so replicas
//! that share these files serve one fleet alike.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::oidc::IssuerUrl;
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
    /// The OIDC discovery listener (docs/oidc.md); absent: none.
    pub oidc: Option<OidcConfig>,
}

/// The JWT-SVID signing keys and their rotation schedule (docs/oidc.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The first JWT-SVID signing key (ECDSA P-256, PKCS#8 PEM), mode 0600,
    /// active since the epoch. Generated on first start when no key is
    /// active. Default: `jwt.key` in the directory of `ca.key`.
    pub key: Option<PathBuf>,
    /// The rotated keys: `<activation, Unix seconds>.key` files, mode 0600.
    /// Default: `jwt-keys` next to `key`.
    pub keys_dir: Option<PathBuf>,
    /// No JWT-SVID lives longer than this, whatever its entry says: a
    /// retired key stays published this long (plus `clock_skew_secs`) after
    /// its successor starts signing.
    #[serde(default = "default_jwt_max_ttl")]
    pub max_ttl_secs: u64,
    /// A new key is published this long before it signs.
    #[serde(default = "default_jwt_prepublish")]
    pub prepublish_secs: u64,
    /// Allowance for relying parties' clocks and leeway.
    #[serde(default = "default_jwt_clock_skew")]
    pub clock_skew_secs: u64,
    /// Automatic rotation: each key signs this long, then its successor
    /// (made by the issuer) takes over. Absent: only `jwt rotate` rotates.
    pub rotate_after_secs: Option<u64>,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            key: None,
            keys_dir: None,
            max_ttl_secs: default_jwt_max_ttl(),
            prepublish_secs: default_jwt_prepublish(),
            clock_skew_secs: default_jwt_clock_skew(),
            rotate_after_secs: None,
        }
    }
}

/// The OIDC discovery listener: `/.well-known/openid-configuration` and the
/// JWK Set of the JWT-SVID keys, over HTTPS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Where it listens, e.g. "0.0.0.0:443".
    pub listen: SocketAddr,
    /// The issuer URL relying parties are given: https, no query, fragment
    /// or trailing slash. It is also the `iss` of every JWT-SVID.
    pub issuer: String,
    /// A certificate chain (PEM) for the issuer URL's host, e.g. from ACME;
    /// with `key`. Absent: a certificate from the issuer's CA.
    pub cert: Option<PathBuf>,
    /// The private key of `cert` (PEM), mode 0600.
    pub key: Option<PathBuf>,
    /// Most connections open at once; more are closed as they arrive.
    #[serde(default = "default_oidc_max_connections")]
    pub max_connections: usize,
    /// Time allowed for the TLS handshake, for each request's headers, and
    /// for an idle keep-alive connection.
    #[serde(default = "default_oidc_header_timeout")]
    pub header_timeout_secs: u64,
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
/// The most any entry's `jwt_ttl_secs` may be.
fn default_jwt_max_ttl() -> u64 {
    MAX_JWT_TTL_SECS
}
fn default_jwt_prepublish() -> u64 {
    24 * 3600
}
fn default_jwt_clock_skew() -> u64 {
    300
}
fn default_oidc_max_connections() -> usize {
    512
}
fn default_oidc_header_timeout() -> u64 {
    10
}

/// The longest a JWT-SVID may live (docs/issuer.md: entries' `jwt_ttl_secs`).
pub const MAX_JWT_TTL_SECS: u64 = 24 * 3600;

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
        check_jwt(&config.jwt).map_err(|(key, message)| invalid(format!("jwt.{key}"), message))?;
        if let Some(oidc) = &config.oidc {
            check_oidc(oidc).map_err(|(key, message)| invalid(format!("oidc.{key}"), message))?;
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

    /// Where the first JWT signing key lives: `jwt.key`, or next to the CA key.
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

    /// Where rotated JWT signing keys live: `jwt.keys_dir`, or `jwt-keys`
    /// next to the first key.
    pub fn jwt_keys_dir(&self) -> PathBuf {
        match &self.jwt.keys_dir {
            Some(path) => path.clone(),
            None => self
                .jwt_key_path()
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join("jwt-keys"),
        }
    }

    /// The `iss` of JWT-SVIDs: the OIDC issuer URL, when there is one.
    pub fn jwt_issuer(&self) -> Option<&str> {
        self.oidc.as_ref().map(|oidc| oidc.issuer.as_str())
    }
}

/// The rotation schedule's bounds; the arithmetic is in docs/oidc.md.
fn check_jwt(jwt: &JwtConfig) -> Result<(), (&'static str, String)> {
    if !(1..=MAX_JWT_TTL_SECS).contains(&jwt.max_ttl_secs) {
        return Err((
            "max_ttl_secs",
            format!("must be 1 to {MAX_JWT_TTL_SECS}, not {}", jwt.max_ttl_secs),
        ));
    }
    const MAX_PREPUBLISH: u64 = 30 * 24 * 3600;
    if !(2..=MAX_PREPUBLISH).contains(&jwt.prepublish_secs) {
        return Err((
            "prepublish_secs",
            format!("must be 2 to {MAX_PREPUBLISH}, not {}", jwt.prepublish_secs),
        ));
    }
    if jwt.clock_skew_secs > 3600 {
        return Err(("clock_skew_secs", "must be at most 3600".into()));
    }
    if let Some(rotate_after) = jwt.rotate_after_secs {
        const MAX_ROTATE_AFTER: u64 = 10 * 365 * 24 * 3600;
        let least = 2 * jwt.prepublish_secs;
        if rotate_after < least || rotate_after > MAX_ROTATE_AFTER {
            return Err((
                "rotate_after_secs",
                format!(
                    "must be at least twice prepublish_secs ({least}) and at most {MAX_ROTATE_AFTER}, not {rotate_after}: \
                     the next key is made when the last one starts signing, and must be published prepublish_secs before it signs"
                ),
            ));
        }
    }
    Ok(())
}

fn check_oidc(oidc: &OidcConfig) -> Result<(), (&'static str, String)> {
    IssuerUrl::parse(&oidc.issuer).map_err(|reason| ("issuer", reason))?;
    match (&oidc.cert, &oidc.key) {
        (Some(_), Some(_)) | (None, None) => {}
        _ => {
            return Err((
                "cert",
                "set both cert and key (a publicly trusted certificate), or neither (a certificate from the issuer's CA)".into(),
            ))
        }
    }
    if !(1..=65_536).contains(&oidc.max_connections) {
        return Err(("max_connections", "must be 1 to 65536".into()));
    }
    if !(1..=300).contains(&oidc.header_timeout_secs) {
        return Err(("header_timeout_secs", "must be 1 to 300".into()));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "listen = \"127.0.0.1:0\"\ntrust_domain = \"example.org\"\n\
             [ca]\ncert = \"/ca.pem\"\nkey = \"/ca.key\"\n[ek]\nallowlist = \"/ek\"\n{extra}"
        );
        Config::parse(&text, Path::new("issuer.toml"))
    }

    fn refused(extra: &str, key: &str) {
        match parse(extra) {
            Err(ConfigError::Invalid { key: named, .. }) => assert_eq!(named, key, "{extra}"),
            other => panic!("{extra}: {other:?}"),
        }
    }

    #[test]
    fn jwt_rotation_defaults_and_bounds() {
        let config = parse("").unwrap();
        assert_eq!(config.jwt.max_ttl_secs, 86_400);
        assert_eq!(config.jwt.prepublish_secs, 86_400);
        assert_eq!(config.jwt.clock_skew_secs, 300);
        assert_eq!(config.jwt.rotate_after_secs, None);
        assert_eq!(config.jwt_key_path(), Path::new("/jwt.key"));
        assert_eq!(config.jwt_keys_dir(), Path::new("/jwt-keys"));
        assert!(config.oidc.is_none() && config.jwt_issuer().is_none());

        refused("[jwt]\nmax_ttl_secs = 0", "jwt.max_ttl_secs");
        refused("[jwt]\nmax_ttl_secs = 86401", "jwt.max_ttl_secs");
        refused("[jwt]\nprepublish_secs = 1", "jwt.prepublish_secs");
        refused("[jwt]\nclock_skew_secs = 3601", "jwt.clock_skew_secs");
        refused(
            "[jwt]\nprepublish_secs = 600\nrotate_after_secs = 1199",
            "jwt.rotate_after_secs",
        );
        refused("[jwt]\nkeys = \"/x\"", "jwt.keys");
        assert!(parse("[jwt]\nprepublish_secs = 600\nrotate_after_secs = 1200").is_ok());
    }

    #[test]
    fn the_oidc_section_needs_a_usable_issuer_url_and_both_or_neither_of_cert_and_key() {
        let base = "[oidc]\nlisten = \"127.0.0.1:8444\"\n";
        let config = parse(&format!("{base}issuer = \"https://oidc.example.org\"")).unwrap();
        assert_eq!(config.jwt_issuer(), Some("https://oidc.example.org"));
        let oidc = config.oidc.unwrap();
        assert_eq!((oidc.max_connections, oidc.header_timeout_secs), (512, 10));

        refused(
            &format!("{base}issuer = \"https://oidc.example.org/\""),
            "oidc.issuer",
        );
        refused(
            &format!("{base}issuer = \"http://oidc.example.org\""),
            "oidc.issuer",
        );
        refused(
            &format!("{base}issuer = \"https://o.example.org\"\ncert = \"/c.pem\""),
            "oidc.cert",
        );
        refused(
            &format!("{base}issuer = \"https://o.example.org\"\nmax_connections = 0"),
            "oidc.max_connections",
        );
        refused(
            &format!("{base}issuer = \"https://o.example.org\"\nheader_timeout_secs = 0"),
            "oidc.header_timeout_secs",
        );
        refused("[oidc]\nissuer = \"https://o.example.org\"", "oidc");
    }
}
