//! `attestd-issuer verify`: checks an evidence file with no network, for
//! air-gapped sites and audits. The trust comes from the issuer's CA bundle:
//! the evidence must carry a node SVID chain (`x5chain`) that the issuer
//! signed for the key that signed the evidence, so no TPM, issuer or node has
//! to be reachable.

use std::path::{Path, PathBuf};

use attestd_proto::evidence::MAX_EVIDENCE_BYTES;
use attestd_verifier::evidence::{
    verify_evidence, EvidenceError, EvidencePolicy, NodeTrust, VerifiedEvidence,
};
use serde::Deserialize;

/// The offline policy file (TOML). See docs/issuer.md.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflinePolicy {
    /// The SPIFFE trust domain of the issuer, e.g. "example.org".
    pub trust_domain: String,
    /// The issuer's CA bundle (PEM, what `attestd-issuer bundle` prints).
    /// A relative path is taken from the policy file's directory.
    pub bundle: PathBuf,
    /// Oldest acceptable evidence, in seconds before the verification time.
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
    /// How far `iat` may lie ahead of the verification time (clock skew).
    #[serde(default = "default_skew")]
    pub max_future_skew_secs: u64,
    /// Only these nodes: SPIFFE IDs (`spiffe://TD/attestd/node/<hash>`) or
    /// bare EK hashes (64 hex digits). Empty: any node the issuer attested.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Selectors the workload must all have, e.g. "unix:uid:1000".
    #[serde(default)]
    pub required_selectors: Vec<String>,
    /// The relying party the evidence must have been made for; absent:
    /// evidence made for no particular audience.
    pub audience: Option<String>,
    /// Require hardware-fresh evidence: a TPM quote by the node's attested AK
    /// over a batch that includes this evidence.
    #[serde(default)]
    pub hardware_fresh: bool,
}

fn default_max_age() -> u64 {
    300
}
fn default_skew() -> u64 {
    30
}

#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Policy { path: PathBuf, message: String },
    #[error("{}: larger than {MAX_EVIDENCE_BYTES} bytes, so not attestd evidence", path.display())]
    TooLarge { path: PathBuf },
    #[error("evidence refused: {0}")]
    Refused(#[from] EvidenceError),
    #[error("evidence refused: node {node} is not one of the policy's nodes")]
    NodeNotAllowed { node: String },
}

/// A policy file, read and checked: the bundle is loaded and usable.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    policy: OfflinePolicy,
    trust: NodeTrust,
    /// `nodes`, each as a full SPIFFE ID.
    nodes: Vec<String>,
}

impl LoadedPolicy {
    pub fn load(path: &Path) -> Result<LoadedPolicy, OfflineError> {
        let text = std::fs::read_to_string(path).map_err(|source| OfflineError::Read {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |message: String| OfflineError::Policy {
            path: path.to_owned(),
            message,
        };
        let deserializer = toml::Deserializer::new(&text);
        let policy: OfflinePolicy =
            serde_path_to_error::deserialize(deserializer).map_err(|error| {
                let key = error.path().to_string();
                invalid(format!("{key}: {}", error.into_inner().message().trim()))
            })?;
        let bundle_path = match path.parent() {
            Some(dir) if policy.bundle.is_relative() => dir.join(&policy.bundle),
            _ => policy.bundle.clone(),
        };
        let bundle = std::fs::read(&bundle_path).map_err(|source| OfflineError::Read {
            path: bundle_path.clone(),
            source,
        })?;
        let roots = attestd_verifier::parse_pem_bundle(&bundle)
            .map_err(|error| invalid(format!("bundle {}: {error}", bundle_path.display())))?;
        let trust = NodeTrust::new(&roots, &policy.trust_domain)
            .map_err(|error| invalid(format!("bundle {}: {error}", bundle_path.display())))?;
        let nodes = policy
            .nodes
            .iter()
            .map(|node| node_id(node, &policy.trust_domain))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        Ok(LoadedPolicy {
            policy,
            trust,
            nodes,
        })
    }

    /// Verifies `evidence` for `nonce` as of `now_unix_secs`.
    pub fn verify(
        &self,
        evidence: &[u8],
        nonce: &[u8],
        now_unix_secs: i64,
    ) -> Result<VerifiedEvidence, OfflineError> {
        let policy = EvidencePolicy {
            expected_nonce: nonce.to_vec(),
            now_unix_secs,
            max_age_secs: self.policy.max_age_secs,
            max_future_skew_secs: self.policy.max_future_skew_secs,
            audience: self.policy.audience.clone(),
            trusted_keys: None,
            node_trust: Some(self.trust.clone()),
            required_selectors: self.policy.required_selectors.clone(),
            hardware_fresh: self
                .policy
                .hardware_fresh
                .then(attestd_verifier::evidence::FreshPolicy::default),
        };
        let verified = verify_evidence(evidence, &policy)?;
        if let Some(node) = &verified.node {
            if !self.nodes.is_empty() && !self.nodes.contains(&node.spiffe_id) {
                return Err(OfflineError::NodeNotAllowed {
                    node: node.spiffe_id.clone(),
                });
            }
        }
        Ok(verified)
    }
}

/// A node in the policy, as a SPIFFE ID: either given as one, or as the EK
/// hash the issuer names nodes by.
fn node_id(node: &str, trust_domain: &str) -> Result<String, String> {
    let prefix = format!("spiffe://{trust_domain}/attestd/node/");
    let hash = node.strip_prefix(&prefix).unwrap_or(node);
    if hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(format!("{prefix}{hash}"))
    } else {
        Err(format!(
            "nodes: {node:?} is neither {prefix}<64 lowercase hex> nor a bare EK hash"
        ))
    }
}

/// Reads an evidence file ("-": standard input), refusing anything larger
/// than evidence can be before it is all in memory.
pub fn read_evidence(path: &Path) -> Result<Vec<u8>, OfflineError> {
    use std::io::Read;
    let read_error = |source| OfflineError::Read {
        path: path.to_owned(),
        source,
    };
    let reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).map_err(read_error)?)
    };
    let mut bytes = Vec::new();
    reader
        .take(MAX_EVIDENCE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() > MAX_EVIDENCE_BYTES {
        return Err(OfflineError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}
