//! Replaying the IMA list into the PCR it extends and matching it to a
//! verified quote, then listing the measured files it proves.
//!
//! Per entry and bank the kernel (≥ 5.10, one digest per bank) extends:
//! - SHA-1: the logged template digest, SHA-1 of the template data;
//! - any other bank: that bank's hash of the template data;
//! - a violation (all-zero logged digest): all ones of the bank's size.
//!
//! Each non-violation's logged SHA-1 digest is checked against its template
//! data whether or not SHA-1 is quoted: a list whose digests lie is corrupt.

use crate::eventlog::hex;
use crate::tpm2::{HashAlg, PcrValues};

use super::{ImaEntry, ImaError, ImaLog};

/// The files a verified IMA list proves were measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImaClaims {
    /// Measured files in measurement order, violations excluded.
    pub files: Vec<ImaFile>,
    /// Violations within the verified entries.
    pub violations: usize,
    /// Entries for the PCR logged after the quote was taken: not verified,
    /// not in `files`, and not counted as violations.
    pub entries_after_quote: usize,
}

/// One measured file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImaFile {
    /// The logged name as text: valid UTF-8 is kept, backslashes, control
    /// characters and invalid bytes are escaped (`\\`, `\n`, `\x..`), so the
    /// string is unambiguous and prints on one line.
    pub path: String,
    /// The d-ng algorithm name, e.g. "sha256".
    pub algorithm: String,
    pub digest: Vec<u8>,
    /// The ima-sig signature (an IMA xattr signature), if one was logged.
    pub signature: Option<Vec<u8>>,
}

/// The value `pcr` of `bank` holds after every entry for it, from zero.
pub fn replay_ima_log(log: &ImaLog, bank: HashAlg, pcr: u8) -> Result<Vec<u8>, ImaError> {
    check_template_digests(log)?;
    let mut value = vec![0; bank.digest_len()];
    for entry in entries_for(log, pcr) {
        value = crate::eventlog::extend_pcr(bank, &value, &extended_digest(entry, bank));
    }
    Ok(value)
}

/// Checks the list against the quoted values of `pcr` (normally 10) in every
/// quoted bank and returns the files it proves.
///
/// The list may run past the quote: the kernel keeps appending between the
/// quote and the read. The shortest prefix of the list's `pcr` entries whose
/// replay equals the quoted value in every quoted bank is accepted (a hash
/// chain has at most one), and the entries after it are only counted.
pub fn verify_ima_log(log: &ImaLog, quoted: &PcrValues, pcr: u8) -> Result<ImaClaims, ImaError> {
    check_template_digests(log)?;
    let banks: Vec<(HashAlg, &[u8])> = quoted
        .iter()
        .filter(|(_, index, _)| *index == pcr)
        .map(|(bank, _, value)| (bank, value))
        .collect();
    if banks.is_empty() {
        return Err(ImaError::PcrNotQuoted { pcr });
    }
    let entries: Vec<&ImaEntry> = entries_for(log, pcr).collect();
    let mut values: Vec<Vec<u8>> = banks
        .iter()
        .map(|(bank, _)| vec![0; bank.digest_len()])
        .collect();
    let all_match = |values: &[Vec<u8>]| {
        banks
            .iter()
            .zip(values)
            .all(|((_, quoted), value)| *quoted == value.as_slice())
    };
    let mut verified_len = all_match(&values).then_some(0);
    for (position, entry) in entries.iter().enumerate() {
        if verified_len.is_some() {
            break;
        }
        for ((bank, _), value) in banks.iter().zip(values.iter_mut()) {
            *value = crate::eventlog::extend_pcr(*bank, value, &extended_digest(entry, *bank));
        }
        if all_match(&values) {
            verified_len = Some(position + 1);
        }
    }
    let Some(verified_len) = verified_len else {
        return Err(mismatch(&banks, &values, pcr));
    };
    let verified = entries.get(..verified_len).unwrap_or_default();
    Ok(ImaClaims {
        files: verified
            .iter()
            .filter(|entry| !entry.is_violation())
            .map(|entry| ImaFile {
                path: escape_path(&entry.path),
                algorithm: entry.file_digest_algorithm.clone(),
                digest: entry.file_digest.clone(),
                signature: entry.signature.clone(),
            })
            .collect(),
        violations: verified.iter().filter(|entry| entry.is_violation()).count(),
        entries_after_quote: entries.len() - verified.len(),
    })
}

/// The first bank whose full replay differs from its quoted value.
fn mismatch(banks: &[(HashAlg, &[u8])], values: &[Vec<u8>], pcr: u8) -> ImaError {
    let differing = banks
        .iter()
        .zip(values)
        .find(|((_, quoted), value)| *quoted != value.as_slice())
        .or_else(|| banks.iter().zip(values).next());
    match differing {
        Some(((bank, quoted), value)) => ImaError::PcrMismatch {
            bank: *bank,
            pcr,
            quoted: hex(quoted),
            replayed: hex(value),
        },
        None => ImaError::PcrNotQuoted { pcr },
    }
}

fn entries_for(log: &ImaLog, pcr: u8) -> impl Iterator<Item = &ImaEntry> {
    log.entries
        .iter()
        .filter(move |entry| entry.pcr == u32::from(pcr))
}

fn check_template_digests(log: &ImaLog) -> Result<(), ImaError> {
    for (index, entry) in log.entries.iter().enumerate() {
        if entry.is_violation() {
            continue;
        }
        let computed = HashAlg::Sha1.digest(&entry.template_data);
        if computed != entry.template_digest {
            return Err(ImaError::TemplateDigestMismatch {
                entry: index,
                logged: hex(&entry.template_digest),
                computed: hex(&computed),
            });
        }
    }
    Ok(())
}

fn extended_digest(entry: &ImaEntry, bank: HashAlg) -> Vec<u8> {
    if entry.is_violation() {
        vec![0xff; bank.digest_len()]
    } else if bank == HashAlg::Sha1 {
        entry.template_digest.to_vec()
    } else {
        bank.digest(&entry.template_data)
    }
}

/// See [`ImaFile::path`].
fn escape_path(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for character in chunk.valid().chars() {
            match character {
                '\\' => text.push_str("\\\\"),
                '\n' => text.push_str("\\n"),
                '\t' => text.push_str("\\t"),
                '\r' => text.push_str("\\r"),
                c if c.is_control() => {
                    text.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
                }
                c => text.push(c),
            }
        }
        for byte in chunk.invalid() {
            text.push_str(&format!("\\x{byte:02x}"));
        }
    }
    text
}

#[cfg(test)]
#[path = "verify_test.rs"]
mod tests;
