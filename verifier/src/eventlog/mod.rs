//! The TCG boot event log (PC Client Platform Firmware Profile, crypto-agile
//! format, as in `/sys/kernel/security/tpm0/binary_bios_measurements`):
//! parsing, replay into PCR values, and matching those to a verified quote.
//!
//! Why replay: a quote signs PCR values, which are hash chains nobody can
//! read. The log says what went into each chain. It is written by firmware
//! and handed over by the attester, so it proves nothing by itself; replayed
//! and equal to the quoted values, every digest in it is exactly what the
//! TPM measured. [`verify_event_log`] does that and only then reads claims
//! (Secure Boot, boot applications, kernel, command line) from the events
//! the quote vouched for.
//!
//! Firmware quirks handled (each documented where it is handled, each with a
//! unit test built from constructed bytes):
//! - trailing zero padding after the last event ([`parse_event_log`]);
//! - EV_NO_ACTION events after the header, such as "StartupLocality" and
//!   "SP800-155 Event", never extended; StartupLocality sets PCR 0's reset
//!   value ([`replay`]);
//! - an event missing a digest for a bank the Spec ID event declares: a
//!   clear error ([`replay`]);
//! - UTF-16 variable names with or without a trailing NUL (`uefi`);
//! - the SHA-1-format header's all-zero digest, which is not a SHA-1
//!   measurement and does not stand for a SHA-1 bank ([`parse_event_log`]).

mod claims;
mod device_path;
mod error;
pub mod event_type;
mod parse;
pub(crate) mod reader;
mod replay;
mod uefi;
mod verify;

#[cfg(test)]
#[path = "support_test.rs"]
mod test_support;

pub use claims::{BootApplication, BootClaims};
pub use device_path::device_path_text;
pub use error::EventLogError;
pub use parse::{
    parse_event_log, Event, EventLog, MAX_ALGORITHMS, MAX_EVENTS, MAX_EVENT_DATA_LEN, MAX_LOG_LEN,
    MAX_PCR_INDEX,
};
pub(crate) use replay::extend as extend_pcr;
pub use replay::replay;
pub use verify::verify_event_log;

/// Lowercase hex, for error messages that show digests and PCR values.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
