//! TPM errors a person can act on: the operation that failed, what the TPM or the
//! TSS said in words, and the raw response code for searching.

use std::path::PathBuf;

use tss_esapi::constants::response_code::Tss2ResponseCode;

use super::tcti::TctiParseError;

/// Everything that can go wrong talking to the TPM.
#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    #[error("invalid TCTI: {0}")]
    Tcti(#[from] TctiParseError),

    /// The TPM or the TSS stack returned a response code.
    #[error("{operation}: {description} (0x{code:x})")]
    Tpm {
        operation: &'static str,
        description: String,
        code: u32,
    },

    /// tss-esapi refused a value before it reached the TPM.
    #[error("{operation}: {detail}")]
    Wrapper {
        operation: &'static str,
        detail: String,
    },

    #[error("{0}")]
    InvalidRequest(String),

    #[error("PCR bank {bank} is not active on this TPM (active banks: {active})")]
    BankNotActive { bank: String, active: String },

    #[error("no EK certificate in NV index 0x{index:08x}")]
    NoEkCertificate { index: u32 },

    #[error("EK certificate in NV index 0x{index:08x} is malformed: {reason}")]
    MalformedEkCertificate { index: u32, reason: String },

    #[error("{action} {path}: {source}")]
    State {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("AK state in {path} is unusable: {reason}")]
    CorruptAkState { path: PathBuf, reason: String },

    #[error("reading event log {path}: {source}")]
    EventLog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("event log {path} is larger than the {limit}-byte limit")]
    EventLogTooLarge { path: PathBuf, limit: u64 },

    #[error("the PCRs kept changing while quoting ({attempts} attempts); retry later")]
    PcrsUnstable { attempts: u32 },

    #[error("the TPM request queue is full ({capacity} requests waiting)")]
    QueueFull { capacity: usize },

    #[error("the TPM did not answer within {seconds} s")]
    Timeout { seconds: u64 },

    #[error("the TPM owner thread has stopped")]
    OwnerGone,
}

impl TpmError {
    /// Wraps a tss-esapi error with the operation that produced it.
    pub(crate) fn esapi(operation: &'static str) -> impl FnOnce(tss_esapi::Error) -> TpmError {
        move |error| match error {
            tss_esapi::Error::Tss2Error(rc) => {
                let code = raw_code(rc);
                TpmError::Tpm {
                    operation,
                    description: describe_response_code(code),
                    code,
                }
            }
            tss_esapi::Error::WrapperError(kind) => TpmError::Wrapper {
                operation,
                detail: kind.to_string(),
            },
        }
    }

    /// The raw TSS2_RC, when the TPM or TSS produced this error.
    pub fn response_code(&self) -> Option<u32> {
        match self {
            TpmError::Tpm { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when the connection to the TPM failed, or left the ESAPI context unusable,
    /// so only a new context can help.
    pub fn is_connection_failure(&self) -> bool {
        match self {
            TpmError::Tpm { code, .. } => {
                let layer = code >> 16;
                let base = code & 0xffff;
                // TCTI layer (10): bad context, no connection, try again, I/O error.
                // ESYS layer (7): bad sequence, which is where ESYS stays after a
                // transport error in the middle of a command.
                (layer == 10 && matches!(base, 3 | 8 | 9 | 10)) || (layer == 7 && base == 7)
            }
            _ => false,
        }
    }
}

fn raw_code(rc: Tss2ResponseCode) -> u32 {
    use bitfield::BitRange;
    match rc {
        Tss2ResponseCode::Success => 0,
        Tss2ResponseCode::FormatZero(code) => code.bit_range(31, 0),
        Tss2ResponseCode::FormatOne(code) => code.bit_range(31, 0),
    }
}

/// Words for a TSS2_RC. Layers follow the TSS 2.0 overview spec: 0 is the TPM itself,
/// the others are software layers of the TSS.
pub fn describe_response_code(code: u32) -> String {
    let layer = (code >> 16) & 0xff;
    let base = code & 0xffff;
    match layer {
        0 => describe_tpm_code(base),
        6 => format!("FAPI: {}", describe_tss_base(base)),
        7 => format!("ESYS: {}", describe_tss_base(base)),
        8 => format!("SYS: {}", describe_tss_base(base)),
        9 => format!("marshalling: {}", describe_tss_base(base)),
        10 => format!("TPM connection (TCTI): {}", describe_tss_base(base)),
        11 | 12 => format!("resource manager: {}", describe_tpm_code(base)),
        other => format!("TSS layer {other}: {}", describe_tss_base(base)),
    }
}

fn describe_tss_base(base: u32) -> String {
    let text = match base {
        1 => "general failure",
        2 => "not implemented",
        3 => "bad context",
        4 => "ABI mismatch",
        5 => "bad reference",
        6 => "insufficient buffer",
        7 => "bad sequence",
        8 => "no connection to the TPM",
        9 => "try again",
        10 => "I/O error talking to the TPM (is it running and reachable?)",
        11 => "bad value",
        12 => "not permitted",
        13 => "invalid sessions",
        16 => "bad size",
        17 => "malformed response from the TPM",
        18 => "insufficient context",
        19 => "insufficient response",
        20 => "incompatible TCTI",
        21 => "not supported",
        22 => "bad TCTI structure",
        23 => "out of memory",
        24 => "bad ESYS_TR handle",
        27 => "response HMAC check failed",
        _ => return format!("TSS error {base}"),
    };
    text.to_owned()
}

fn describe_tpm_code(base: u32) -> String {
    const FORMAT_ONE: u32 = 0x080;
    if base & FORMAT_ONE != 0 {
        let number = (base >> 8) & 0xf;
        let about = if base & 0x40 != 0 {
            format!(" (parameter {number})")
        } else if number == 0 {
            String::new()
        } else if number <= 7 {
            format!(" (handle {number})")
        } else {
            format!(" (session {})", number - 8)
        };
        let text = match base & 0x3f {
            0x01 => "asymmetric algorithm not supported or not correct",
            0x02 => "inconsistent attributes",
            0x03 => "hash algorithm not supported or not appropriate",
            0x04 => "value out of range or not correct for the context",
            0x05 => "hierarchy not enabled or not correct for the use",
            0x07 => "key size not supported",
            0x08 => "mask generation function not supported",
            0x09 => "mode of operation not supported",
            0x0a => "type of the value not appropriate for the use",
            0x0b => "handle not correct for the use",
            0x0c => "unsupported key derivation function",
            0x0d => "value out of allowed range",
            0x0e => "authorization failed (dictionary-attack counter incremented)",
            0x0f => "invalid nonce size or nonce mismatch",
            0x10 => "physical presence required",
            0x12 => "unsupported or incompatible scheme",
            0x15 => "structure is the wrong size",
            0x16 => "unsupported symmetric algorithm or key size",
            0x17 => "incorrect structure tag",
            0x18 => "union selector is incorrect",
            0x1a => "not enough bytes to unmarshal a value",
            0x1b => "signature is not valid",
            0x1c => "key fields not compatible with the selected use",
            0x1d => "policy check failed",
            0x1f => "integrity check failed (wrong secret, key or credential blob)",
            0x20 => "invalid ticket",
            0x21 => "reserved bits not zero",
            0x22 => "authorization failure",
            0x23 => "policy has expired",
            0x24 => "command code in the policy does not match",
            0x25 => "public and sensitive portions not bound",
            0x26 => "curve not supported",
            0x27 => "point is not on the curve",
            _ => "TPM format-one error",
        };
        return format!("{text}{about}");
    }
    let text = match base {
        0x100 => "TPM not initialized (TPM2_Startup has not run)",
        0x101 => "TPM is in failure mode",
        0x103 => "improper use of a sequence handle",
        0x120 => "command is disabled",
        0x124 => "authorization session required but missing",
        0x125 => "policy failure in math operation or invalid authPolicy",
        0x127 => "PCR check failed",
        0x128 => "PCRs changed since checked",
        0x12d => "TPM is in field-upgrade mode",
        0x12f => "authValue or authPolicy not available for this entity",
        0x130 => "TPM reset required (_TPM_Init and Startup)",
        0x142 => "command size inconsistent",
        0x143 => "command not supported by this TPM",
        0x146 => "NV offset and size out of range",
        0x148 => "NV access locked",
        0x149 => "NV authorization failed",
        0x14a => "NV index not initialized",
        0x14b => "insufficient NV space",
        0x14c => "NV index or persistent object already defined",
        0x150 => "context blob not valid",
        0x152 => "handle is not a valid parent",
        0x901 => "TPM context gap too large",
        0x902 => "TPM object memory full",
        0x903 => "TPM session memory full",
        0x904 => "TPM out of memory",
        0x905 => "TPM out of session handles",
        0x906 => "TPM out of object handles",
        0x907 => "bad locality",
        0x908 => "TPM yielded; retry",
        0x909 => "command was cancelled",
        0x90a => "TPM is running self-tests; retry",
        0x910..=0x916 => "handle refers to an object that is not loaded",
        0x918..=0x91e => "session handle refers to a session that is not loaded",
        0x920 => "TPM is rate-limiting NV writes; retry",
        0x921 => "TPM is in dictionary-attack lockout",
        0x922 => "TPM asked to retry the command",
        0x923 => "NV is not available",
        _ => return format!("TPM error 0x{base:x}"),
    };
    text.to_owned()
}

#[cfg(test)]
#[path = "error_test.rs"]
mod tests;
