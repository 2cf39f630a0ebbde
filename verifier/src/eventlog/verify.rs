//! Matching a replayed log to a verified quote, the step that turns a log
//! the attester could have written freely into evidence: only events in a
//! PCR whose replay equals the quoted value are believed.

use std::collections::{BTreeMap, BTreeSet};

use crate::tpm2::{HashAlg, PcrValues};

use super::claims::{extract_claims, BootClaims};
use super::replay::{replay, reset_value};
use super::{hex, EventLog, EventLogError};

/// PCRs the firmware log must account for whenever they are quoted: the
/// PC Client firmware PCRs, which every boot extends (at least with the
/// separator) and which no other log describes.
const FIRMWARE_PCRS: std::ops::RangeInclusive<u8> = 0..=7;

/// Checks the log against PCR values taken from a verified quote
/// (`VerifiedQuote::pcr_values`) and extracts claims from what it proves.
///
/// For every quoted bank the log must declare that bank; then every quoted
/// PCR of the bank that the log measures, and every quoted PCR 0–7 even if
/// the log never touches it, must replay to exactly the quoted value. Quoted
/// PCRs above 7 that the log does not measure (PCR 10 for IMA, PCRs
/// extended after boot) are left to their own logs.
///
/// Claims are read only from events in a PCR that was checked, and digests
/// are reported only for the banks that were checked.
pub fn verify_event_log(log: &EventLog, quoted: &PcrValues) -> Result<BootClaims, EventLogError> {
    let banks: BTreeSet<HashAlg> = quoted.iter().map(|(bank, _, _)| bank).collect();
    let mut verified: BTreeMap<u8, Vec<HashAlg>> = BTreeMap::new();
    for bank in banks {
        let replayed = replay(log, bank)?;
        for (_, pcr, quoted_value) in quoted.iter().filter(|(b, _, _)| *b == bank) {
            let replayed_value = match replayed.get(&pcr) {
                Some(value) => value.clone(),
                None if FIRMWARE_PCRS.contains(&pcr) => reset_value(bank),
                None => continue,
            };
            if quoted_value != replayed_value.as_slice() {
                return Err(EventLogError::PcrMismatch {
                    bank,
                    pcr,
                    quoted: hex(quoted_value),
                    replayed: hex(&replayed_value),
                });
            }
            verified.entry(pcr).or_default().push(bank);
        }
    }
    extract_claims(log, &verified)
}

#[cfg(test)]
#[path = "verify_test.rs"]
mod tests;
