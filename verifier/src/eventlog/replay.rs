//! Replaying a log into the PCR values it claims: every measured event
//! extends its PCR (PCR = H(PCR ‖ digest)) starting from the TPM's reset
//! value, exactly what the TPM did during boot.

use std::collections::BTreeMap;

use crate::tpm2::{HashAlg, ParseError};

use super::event_type::{self, EV_EFI_HCRTM_EVENT, EV_NO_ACTION};
use super::parse::MAX_PCR_INDEX;
use super::{Event, EventLog, EventLogError};

const STARTUP_LOCALITY_SIGNATURE: &[u8; 16] = b"StartupLocality\0";
/// An H-CRTM runs at locality 4 and PCR 0 starts from 0…04 (TPM 2.0 Part 1 §34.3).
const HCRTM_LOCALITY: u8 = 4;

/// The value of each PCR of `bank` that the log's events extend, after all
/// of them. PCRs without a measured event are absent, except PCR 0 when a
/// StartupLocality event gives it a non-zero reset value.
///
/// Quirks handled here:
/// - EV_NO_ACTION events anywhere in the log (the header, "StartupLocality",
///   "SP800-155 Event", …) are informational and never extended.
/// - The StartupLocality event (EV_NO_ACTION, PCR 0, data
///   "StartupLocality\0" + locality byte) records that TPM2_Startup ran at
///   locality 3 or 4, so PCR 0 starts at 0…0<locality>, not zero. An
///   EV_EFI_HCRTM_EVENT in PCR 0 likewise starts it at 0…04. Either must
///   come before the first PCR 0 measurement.
/// - An event lacking a digest for a bank the Spec ID event declares is an
///   error naming the event: replaying around it would give a value the TPM
///   never held.
pub fn replay(log: &EventLog, bank: HashAlg) -> Result<BTreeMap<u8, Vec<u8>>, EventLogError> {
    if !log.declares(bank) {
        return Err(EventLogError::BankNotInLog { bank });
    }
    let mut pcrs: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    let mut pcr0_measured = false;
    let mut pcr0_initialised = false;
    // events[0] is the Spec ID header: EV_NO_ACTION, never extended.
    for (index, event) in log.events.iter().enumerate().skip(1) {
        let pcr = pcr_index(event, index)?;
        if event.event_type == EV_NO_ACTION {
            if pcr == 0 {
                if let Some(locality) = startup_locality(event, index)? {
                    if pcr0_measured || pcr0_initialised {
                        return Err(EventLogError::MisplacedStartupLocality { event: index });
                    }
                    pcr0_initialised = true;
                    pcrs.insert(0, locality_reset_value(bank, locality));
                }
            }
            continue;
        }
        if event.event_type == EV_EFI_HCRTM_EVENT && pcr == 0 {
            if pcr0_measured {
                return Err(EventLogError::MisplacedStartupLocality { event: index });
            }
            pcrs.insert(0, locality_reset_value(bank, HCRTM_LOCALITY));
        }
        let digest = event_digest(event, index, bank)?;
        let value = pcrs
            .entry(pcr)
            .or_insert_with(|| vec![0; bank.digest_len()]);
        *value = extend(bank, value, digest);
        if pcr == 0 {
            pcr0_measured = true;
        }
    }
    Ok(pcrs)
}

/// PCR = H(PCR ‖ digest), what TPM2_PCR_Extend computes.
pub(crate) fn extend(bank: HashAlg, value: &[u8], digest: &[u8]) -> Vec<u8> {
    let mut context = ring::digest::Context::new(bank.ring_algorithm());
    context.update(value);
    context.update(digest);
    context.finish().as_ref().to_vec()
}

/// The value of a PCR no event extended: the TPM's reset value.
pub(crate) fn reset_value(bank: HashAlg) -> Vec<u8> {
    vec![0; bank.digest_len()]
}

fn locality_reset_value(bank: HashAlg, locality: u8) -> Vec<u8> {
    let mut value = reset_value(bank);
    if let Some(last) = value.last_mut() {
        *last = locality;
    }
    value
}

/// The event's PCR as a u8. The parser bounds it, but `EventLog` has public
/// fields and may have been built by hand.
pub(crate) fn pcr_index(event: &Event, index: usize) -> Result<u8, EventLogError> {
    u8::try_from(event.pcr)
        .ok()
        .filter(|pcr| u32::from(*pcr) <= MAX_PCR_INDEX)
        .ok_or(EventLogError::PcrIndexOutOfRange {
            event: index,
            pcr: event.pcr,
            max: MAX_PCR_INDEX,
        })
}

fn event_digest(event: &Event, index: usize, bank: HashAlg) -> Result<&[u8], EventLogError> {
    let digest = event
        .digest(bank.to_tpm())
        .ok_or_else(|| EventLogError::MissingDigest {
            event: index,
            pcr: event.pcr,
            event_type: event_type::describe(event.event_type),
            bank,
        })?;
    if digest.len() != bank.digest_len() {
        return Err(EventLogError::Malformed {
            event: index,
            source: ParseError::LengthMismatch {
                field: "TPMT_HA.digest",
                expected: bank.digest_len(),
                actual: digest.len(),
            },
        });
    }
    Ok(digest)
}

/// The locality of a StartupLocality event, `None` for other EV_NO_ACTION events.
fn startup_locality(event: &Event, index: usize) -> Result<Option<u8>, EventLogError> {
    if !event.data.starts_with(STARTUP_LOCALITY_SIGNATURE) {
        return Ok(None);
    }
    match event.data.get(STARTUP_LOCALITY_SIGNATURE.len()) {
        Some(&locality) => Ok(Some(locality)),
        None => Err(EventLogError::ShortStartupLocality {
            event: index,
            len: event.data.len(),
        }),
    }
}

#[cfg(test)]
#[path = "replay_test.rs"]
mod tests;
