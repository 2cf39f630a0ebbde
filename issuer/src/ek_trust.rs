//! Which TPMs the issuer trusts: EK certificates that chain to a directory of CA
//! certificates, and/or EKs enrolled by the hash of their public key (swtpm,
//! air-gapped sites, TPMs without certificates). Both are read from files and
//! can be reloaded while the issuer runs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use attestd_verifier::{parse_pem_bundle, verify_ek_certificate};

use crate::config::{EkConfig, EkTrustMode};

/// Most files read from the roots directory.
const MAX_ROOT_FILES: usize = 256;
/// Largest allowlist file read.
const MAX_ALLOWLIST_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum EkTrustError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

/// How a node's EK came to be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EkVerdict {
    /// The EK certificate chains to a configured CA.
    Certificate { manufacturer: Option<String> },
    /// The EK's hash is enrolled.
    Enrolled,
}

impl std::fmt::Display for EkVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EkVerdict::Certificate {
                manufacturer: Some(m),
            } => write!(
                f,
                "EK certificate chains to a trusted CA (TPM manufacturer {m})"
            ),
            EkVerdict::Certificate { manufacturer: None } => {
                write!(f, "EK certificate chains to a trusted CA")
            }
            EkVerdict::Enrolled => write!(f, "EK hash is enrolled"),
        }
    }
}

/// The trust anchors in force; replaced whole on reload.
#[derive(Debug, Default, Clone)]
pub struct EkTrust {
    roots: Vec<Vec<u8>>,
    intermediates: Vec<Vec<u8>>,
    enrolled: HashSet<[u8; 32]>,
}

impl EkTrust {
    pub fn load(config: &EkConfig) -> Result<EkTrust, EkTrustError> {
        let mut trust = EkTrust::default();
        if let Some(dir) = &config.roots_dir {
            trust.load_roots(dir)?;
        }
        if let Some(path) = &config.allowlist {
            trust.enrolled = load_allowlist(path)?;
        }
        Ok(trust)
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.roots.len(),
            self.intermediates.len(),
            self.enrolled.len(),
        )
    }

    fn load_roots(&mut self, dir: &Path) -> Result<(), EkTrustError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| EkTrustError::Io { path, source }
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("pem" | "crt" | "cer" | "der")
                )
            })
            .collect();
        files.sort();
        if files.len() > MAX_ROOT_FILES {
            return Err(EkTrustError::Invalid {
                path: dir.to_owned(),
                reason: format!("more than {MAX_ROOT_FILES} certificate files"),
            });
        }
        for file in files {
            let bytes = std::fs::read(&file).map_err(io(&file))?;
            let certificates = parse_pem_bundle(&bytes).map_err(|e| EkTrustError::Invalid {
                path: file.clone(),
                reason: e.to_string(),
            })?;
            for der in certificates {
                let self_signed = x509_parser::parse_x509_certificate(&der)
                    .map(|(_, cert)| cert.subject() == cert.issuer())
                    .unwrap_or(false);
                if self_signed {
                    self.roots.push(der);
                } else {
                    self.intermediates.push(der);
                }
            }
        }
        Ok(())
    }

    /// Decides whether the EK with SubjectPublicKeyInfo `ek_spki` is trusted under
    /// `mode`. The error says exactly why not.
    pub fn check(
        &self,
        mode: EkTrustMode,
        ek_spki: &[u8],
        certificate: Option<&[u8]>,
        chain: &[Vec<u8>],
        now_unix_secs: i64,
    ) -> Result<EkVerdict, String> {
        let hash = ek_hash(ek_spki);
        let allow_list = matches!(mode, EkTrustMode::Either | EkTrustMode::Allowlist);
        let allow_cert = matches!(mode, EkTrustMode::Either | EkTrustMode::Certificate);
        if allow_list && self.enrolled.contains(&hash) {
            return Ok(EkVerdict::Enrolled);
        }
        let mut reasons = Vec::new();
        if allow_cert {
            match certificate {
                None => reasons.push("the TPM has no EK certificate".to_owned()),
                Some(der) => {
                    let mut intermediates = chain.to_vec();
                    intermediates.extend(self.intermediates.iter().cloned());
                    match verify_ek_certificate(der, &intermediates, &self.roots, now_unix_secs) {
                        Ok(verified) if verified.spki_der == ek_spki => {
                            return Ok(EkVerdict::Certificate {
                                manufacturer: verified.tpm_manufacturer,
                            })
                        }
                        Ok(_) => reasons.push(
                            "the EK certificate is for a different key than the EK presented"
                                .to_owned(),
                        ),
                        Err(error) => reasons.push(format!(
                            "the EK certificate does not chain to a trusted EK CA: {error}"
                        )),
                    }
                }
            }
        }
        if allow_list {
            reasons.push(format!("EK {} is not enrolled", hex::encode(hash)));
        }
        Err(reasons.join("; "))
    }
}

/// SHA-256 of the EK's SubjectPublicKeyInfo DER: the EK's name in SPIFFE IDs,
/// allowlists and evidence (`ueid`).
pub fn ek_hash(ek_spki: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, ek_spki);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

fn load_allowlist(path: &Path) -> Result<HashSet<[u8; 32]>, EkTrustError> {
    let io = |source| EkTrustError::Io {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_ALLOWLIST_BYTES {
        return Err(EkTrustError::Invalid {
            path: path.to_owned(),
            reason: format!("larger than {MAX_ALLOWLIST_BYTES} bytes"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut enrolled = HashSet::new();
    for (number, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let bytes = hex::decode(entry)
            .ok()
            .filter(|bytes| bytes.len() == 32)
            .ok_or_else(|| EkTrustError::Invalid {
                path: path.to_owned(),
                reason: format!(
                    "line {}: {entry:?} is not a hex SHA-256 (64 hex digits)",
                    number + 1
                ),
            })?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes);
        enrolled.insert(hash);
    }
    Ok(enrolled)
}
