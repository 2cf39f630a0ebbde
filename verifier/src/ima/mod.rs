//! The Linux IMA measurement list
//! (`/sys/kernel/security/ima/binary_runtime_measurements`): parsing and
//! replay against a verified quote of the PCR IMA extends (normally 10).
//!
//! IMA measures every file the policy names before it is used and extends
//! PCR 10 with a hash of each log entry's template data. As with the boot
//! log, the list comes from the attester and proves nothing until its
//! replay equals the quoted PCR; then each listed file digest is what the
//! kernel measured.
//!
//! Templates: `ima-ng` and `ima-sig` are parsed. Every other template is
//! refused with an error naming it, rather than kept opaque: the template
//! name is not covered by the template hash, so an attacker who could make
//! entries opaque could hide measured files from the claims while the PCR
//! still matched. The legacy `ima` template (no template-data length) is
//! refused the same way.
//!
//! Byte order is the kernel's (host order; little-endian on every platform
//! attested here). Entries extended after the quote are tolerated (see
//! [`verify_ima_log`]), since a busy kernel keeps appending between the quote
//! and the moment the daemon reads the list.

mod parse;
mod verify;

#[cfg(test)]
#[path = "support_test.rs"]
mod test_support;

use crate::tpm2::{HashAlg, ParseError};

pub use parse::{
    parse_ima_log, ImaEntry, ImaLog, ImaTemplate, MAX_ENTRIES, MAX_IMA_LOG_LEN,
    MAX_TEMPLATE_DATA_LEN,
};
pub use verify::{replay_ima_log, verify_ima_log, ImaClaims, ImaFile};

/// Why an IMA log was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImaError {
    #[error("the IMA log is {size} bytes; at most {max} are accepted")]
    LogTooLarge { size: usize, max: usize },
    #[error("IMA entry {entry} is malformed: {source}")]
    Malformed {
        entry: usize,
        #[source]
        source: ParseError,
    },
    #[error("the IMA log has more than {max} entries")]
    TooManyEntries { max: usize },
    #[error("IMA entry {entry} uses template {name:?}; only ima-ng and ima-sig are supported")]
    UnsupportedTemplate { entry: usize, name: String },
    #[error("IMA entry {entry}: the d-ng field does not start with \"<algorithm>:\\0\"")]
    MissingDigestAlgorithm { entry: usize },
    #[error("IMA entry {entry}: a {algorithm} file digest is {actual} bytes, not {expected}")]
    FileDigestLength {
        entry: usize,
        algorithm: String,
        expected: usize,
        actual: usize,
    },
    #[error("IMA entry {entry}: the logged template digest {logged} is not SHA-1 of the template data ({computed})")]
    TemplateDigestMismatch {
        entry: usize,
        logged: String,
        computed: String,
    },
    #[error("PCR {pcr} is not in the quote in any bank, so the IMA log cannot be checked")]
    PcrNotQuoted { pcr: u8 },
    #[error("PCR {bank}:{pcr} was quoted as {quoted} but the IMA log replays to {replayed} (and no prefix of it matches)")]
    PcrMismatch {
        bank: HashAlg,
        pcr: u8,
        quoted: String,
        replayed: String,
    },
}
