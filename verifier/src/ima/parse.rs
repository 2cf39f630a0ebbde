//! Parsing of the binary IMA measurement list: per entry the PCR, the SHA-1
//! template digest, the template name and the template data, whose fields
//! (`d-ng`, `n-ng`, `sig`) are each a u32 length and bytes.

use crate::eventlog::reader::LeReader;
use crate::tpm2::ParseError;

use super::ImaError;

/// Largest list accepted. A busy host's list grows by ~150 bytes per file;
/// 64 MiB holds a few hundred thousand entries.
pub const MAX_IMA_LOG_LEN: usize = 64 * 1024 * 1024;
/// Most entries accepted.
pub const MAX_ENTRIES: usize = 1 << 20;
/// Largest template data of one entry: a PATH_MAX name, a SHA-512 digest
/// and an RSA-4096 signature fit many times over.
pub const MAX_TEMPLATE_DATA_LEN: usize = 64 * 1024;
/// The kernel's IMA_TEMPLATE_NAME_LEN_MAX is 15; anything longer is not a name.
const MAX_TEMPLATE_NAME_LEN: usize = 255;
const SHA1_DIGEST_LEN: usize = 20;

/// A parsed IMA measurement list, in measurement order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImaLog {
    pub entries: Vec<ImaEntry>,
}

/// The templates this crate understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImaTemplate {
    /// `d-ng|n-ng`: file digest with its algorithm, file name.
    ImaNg,
    /// `d-ng|n-ng|sig`: as ima-ng plus the file's signature (possibly empty).
    ImaSig,
}

impl ImaTemplate {
    pub fn name(self) -> &'static str {
        match self {
            Self::ImaNg => "ima-ng",
            Self::ImaSig => "ima-sig",
        }
    }
}

/// One measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImaEntry {
    pub pcr: u32,
    /// SHA-1 over `template_data`, or all zeros for a violation.
    pub template_digest: [u8; SHA1_DIGEST_LEN],
    pub template: ImaTemplate,
    /// The template data exactly as logged: what every bank's template hash covers.
    pub template_data: Vec<u8>,
    /// The algorithm named in the d-ng field, e.g. "sha256".
    pub file_digest_algorithm: String,
    pub file_digest: Vec<u8>,
    /// The n-ng file name as logged, without its terminating NUL.
    pub path: Vec<u8>,
    /// The ima-sig signature; `None` for ima-ng and for an empty sig field.
    pub signature: Option<Vec<u8>>,
}

impl ImaEntry {
    /// A violation (a file measured while open for write, or written while
    /// measured) is logged with an all-zero template digest, and IMA
    /// extends all ones instead of the template hash.
    pub fn is_violation(&self) -> bool {
        self.template_digest.iter().all(|&byte| byte == 0)
    }
}

/// Parses `binary_runtime_measurements`.
pub fn parse_ima_log(bytes: &[u8]) -> Result<ImaLog, ImaError> {
    if bytes.len() > MAX_IMA_LOG_LEN {
        return Err(ImaError::LogTooLarge {
            size: bytes.len(),
            max: MAX_IMA_LOG_LEN,
        });
    }
    parse_entries(bytes, MAX_ENTRIES)
}

/// The entry loop, with the entry cap as a parameter so tests can reach it
/// without building a million entries.
fn parse_entries(bytes: &[u8], max_entries: usize) -> Result<ImaLog, ImaError> {
    let mut reader = LeReader::new(bytes);
    let mut entries = Vec::new();
    while !reader.is_empty() {
        if entries.len() >= max_entries {
            return Err(ImaError::TooManyEntries { max: max_entries });
        }
        let index = entries.len();
        entries.push(read_entry(&mut reader, index)?);
    }
    Ok(ImaLog { entries })
}

fn read_entry(reader: &mut LeReader<'_>, entry: usize) -> Result<ImaEntry, ImaError> {
    let m = |source| ImaError::Malformed { entry, source };
    let pcr = reader.u32("pcr").map_err(m)?;
    let template_digest = reader.array("template digest").map_err(m)?;
    let name = reader
        .u32_prefixed(MAX_TEMPLATE_NAME_LEN, "template name")
        .map_err(m)?;
    // Decided before reading on: the legacy "ima" template has no data length.
    let template = match name {
        b"ima-ng" => ImaTemplate::ImaNg,
        b"ima-sig" => ImaTemplate::ImaSig,
        other => {
            return Err(ImaError::UnsupportedTemplate {
                entry,
                name: String::from_utf8_lossy(other).into_owned(),
            })
        }
    };
    let data = reader
        .u32_prefixed(MAX_TEMPLATE_DATA_LEN, "template data")
        .map_err(m)?;
    let mut fields = LeReader::new(data);
    let digest_field = fields.u32_prefixed(data.len(), "d-ng").map_err(m)?;
    let name_field = fields.u32_prefixed(data.len(), "n-ng").map_err(m)?;
    let signature = match template {
        ImaTemplate::ImaNg => None,
        ImaTemplate::ImaSig => Some(fields.u32_prefixed(data.len(), "sig").map_err(m)?),
    };
    if !fields.is_empty() {
        return Err(m(ParseError::TrailingBytes {
            structure: template.name(),
            count: fields.remaining().len(),
        }));
    }
    let (algorithm, file_digest) = parse_digest_field(digest_field, entry)?;
    Ok(ImaEntry {
        pcr,
        template_digest,
        template,
        template_data: data.to_vec(),
        file_digest_algorithm: algorithm,
        file_digest: file_digest.to_vec(),
        path: name_field
            .strip_suffix(b"\0")
            .unwrap_or(name_field)
            .to_vec(),
        signature: signature
            .filter(|signature| !signature.is_empty())
            .map(<[u8]>::to_vec),
    })
}

/// d-ng: `<algorithm>:\0<digest>`.
fn parse_digest_field(field: &[u8], entry: usize) -> Result<(String, &[u8]), ImaError> {
    let nul = field
        .iter()
        .position(|&byte| byte == 0)
        .ok_or(ImaError::MissingDigestAlgorithm { entry })?;
    let (prefix, rest) = field.split_at(nul);
    let algorithm = prefix
        .strip_suffix(b":")
        .filter(|name| {
            !name.is_empty()
                && name
                    .iter()
                    .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-' || *byte == b'_')
        })
        .ok_or(ImaError::MissingDigestAlgorithm { entry })?;
    let algorithm = String::from_utf8_lossy(algorithm).into_owned();
    let digest = rest.get(1..).unwrap_or_default();
    if let Some(expected) = known_digest_len(&algorithm) {
        if digest.len() != expected {
            return Err(ImaError::FileDigestLength {
                entry,
                algorithm,
                expected,
                actual: digest.len(),
            });
        }
    }
    Ok((algorithm, digest))
}

/// Digest sizes of the kernel hash algorithm names IMA writes.
fn known_digest_len(algorithm: &str) -> Option<usize> {
    Some(match algorithm {
        "md5" => 16,
        "sha1" => 20,
        "sha224" => 28,
        "sha256" | "sm3" | "sm3-256" | "streebog256" => 32,
        "sha384" => 48,
        "sha512" | "streebog512" | "wp512" => 64,
        _ => return None,
    })
}

#[cfg(test)]
#[path = "parse_test.rs"]
mod tests;
