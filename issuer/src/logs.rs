//! The node's boot and IMA logs, replayed against the PCRs its quote covers
//! (attestd-verifier does the replay). What the replay proves becomes the
//! facts the node policy can look at.

use attestd_verifier::{
    parse_event_log, parse_ima_log, verify_event_log, verify_ima_log, PcrValues,
};

use crate::policy::BootFacts;

/// The PCR IMA extends.
const IMA_PCR: u8 = 10;
const TPM_ALG_SHA256: u16 = 0x000b;

/// Parses the TCG boot event log and checks it replays to the quoted PCRs.
pub fn boot_facts(log: &[u8], quoted: &PcrValues) -> Result<BootFacts, String> {
    let log = parse_event_log(log).map_err(|e| e.to_string())?;
    let claims = verify_event_log(&log, quoted).map_err(|e| e.to_string())?;
    Ok(BootFacts {
        secure_boot: claims.secure_boot,
        kernel_cmdline: claims.kernel_cmdline,
        kernel_sha256: claims
            .kernel_digests
            .iter()
            .find(|(alg, _)| *alg == TPM_ALG_SHA256)
            .map(|(_, digest)| digest.clone()),
    })
}

/// Parses the IMA log and, when the quote covers the IMA PCR, checks it
/// replays to it. Returns how many files it lists.
pub(crate) fn check_ima(log: &[u8], quoted: &PcrValues) -> Result<Option<usize>, String> {
    let log = parse_ima_log(log).map_err(|e| e.to_string())?;
    if quoted.iter().all(|(_, index, _)| index != IMA_PCR) {
        // Not quoted: nothing to check it against, and nothing is claimed from it.
        return Ok(None);
    }
    let claims = verify_ima_log(&log, quoted, IMA_PCR).map_err(|e| e.to_string())?;
    Ok(Some(claims.files.len()))
}
