//! The one error type of the TPM structure parsers; each variant names the
//! field that failed so a rejected blob can be diagnosed from the message.

/// Why a TPM structure could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{field}: needs {needed} byte(s) but only {available} remain")]
    Truncated {
        field: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("{field}: size {size} exceeds the maximum of {max}")]
    TooLarge {
        field: &'static str,
        size: usize,
        max: usize,
    },
    #[error("{structure}: {count} unexpected trailing byte(s)")]
    TrailingBytes {
        structure: &'static str,
        count: usize,
    },
    #[error("{field}: unsupported algorithm 0x{alg:04x}")]
    UnsupportedAlgorithm { field: &'static str, alg: u16 },
    #[error("{field}: invalid value 0x{value:x}")]
    InvalidValue { field: &'static str, value: u64 },
    #[error("{field}: length {actual} does not match the expected {expected}")]
    LengthMismatch {
        field: &'static str,
        expected: usize,
        actual: usize,
    },
}
