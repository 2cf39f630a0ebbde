//! What a verified boot log says about the boot: Secure Boot state, the
//! boot applications and kernel that ran, and the kernel command line.
//!
//! A replay proves the *digests*; event data is only as good as its link to
//! them. Where a digest is a hash of the event data (the SecureBoot variable,
//! GRUB's and systemd's command lines) the data is checked against every
//! verified bank's digest before it becomes a claim. Where it is not (a boot
//! application's digest is its Authenticode hash; the device path is not
//! covered), only the digests are claims and the path is a label.
//!
//! Kernel command line sources, last one in log order wins:
//! - GRUB: EV_IPL in PCR 8, data "kernel_cmdline: <cmdline>\0", digest over
//!   the command line without prefix (with or without the NUL, both seen).
//!   A mismatch is an error: the event says it is a command line.
//! - systemd-boot / systemd-stub: EV_IPL in PCR 12, data the command line
//!   in UTF-16, digest over it without (older: with) the trailing NUL.
//!   PCR 12 EV_IPL events whose data does not hash to the digest are
//!   systemd's other PCR 12 records ("Credentials initrd", …) and are skipped.
//! - Not recoverable: the Linux EFI stub (≥ 6.x, e.g. OVMF direct kernel
//!   boot with QEMU `-append`, which OVMF itself does not measure) logs the
//!   load options as EV_EVENT_TAG in PCR 9 whose data is only the
//!   description "LOADED_IMAGE::LoadOptions"; the text is not in the log,
//!   so `kernel_cmdline` stays `None` there.

use std::collections::BTreeMap;

use crate::tpm2::HashAlg;

use super::event_type::{
    self, EV_EFI_BOOT_SERVICES_APPLICATION, EV_EFI_VARIABLE_DRIVER_CONFIG, EV_IPL, EV_NO_ACTION,
};
use super::replay::pcr_index;
use super::uefi::{
    image_load_device_path, parse_uefi_variable, utf16le_lossy, EFI_GLOBAL_VARIABLE,
};
use super::{device_path_text, Event, EventLog, EventLogError};

const GRUB_KERNEL_CMDLINE_PREFIX: &[u8] = b"kernel_cmdline: ";

/// Claims about a boot, from events in PCRs a quote vouched for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootClaims {
    /// The SecureBoot variable as measured into PCR 7; `None` if PCR 7 was
    /// not verified or the firmware did not measure it.
    pub secure_boot: Option<bool>,
    /// EV_EFI_BOOT_SERVICES_APPLICATION events in PCR 4, in boot order.
    pub boot_applications: Vec<BootApplication>,
    /// Digests of the last boot application in PCR 4: on a shim/GRUB or a
    /// direct-kernel boot, the kernel. Empty if there is none.
    pub kernel_digests: Vec<(u16, Vec<u8>)>,
    /// The kernel command line, when the log carries its text (see the
    /// module documentation for which boot paths do).
    pub kernel_cmdline: Option<String>,
    /// Measured events in verified PCRs: the events this verdict rests on.
    pub events_replayed: usize,
    /// PCRs whose replay matched the quote in at least one bank, ascending.
    pub verified_pcrs: Vec<u8>,
}

/// A UEFI application the firmware measured before running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootApplication {
    pub pcr: u32,
    /// (TPM_ALG_ID, PE Authenticode digest) for each verified bank.
    pub digests: Vec<(u16, Vec<u8>)>,
    /// The device path the image was loaded from, as text, when it parses.
    /// Not covered by the digest: a label, not evidence.
    pub path: Option<String>,
}

pub(crate) fn extract_claims(
    log: &EventLog,
    verified: &BTreeMap<u8, Vec<HashAlg>>,
) -> Result<BootClaims, EventLogError> {
    let mut claims = BootClaims {
        verified_pcrs: verified.keys().copied().collect(),
        ..BootClaims::default()
    };
    for (index, event) in log.events.iter().enumerate().skip(1) {
        if event.event_type == EV_NO_ACTION {
            continue;
        }
        let Some(banks) = verified.get(&pcr_index(event, index)?) else {
            continue;
        };
        claims.events_replayed += 1;
        let checked = CheckedEvent {
            event,
            index,
            banks,
        };
        match (event.pcr, event.event_type) {
            (7, EV_EFI_VARIABLE_DRIVER_CONFIG) => {
                if let Some(enabled) = checked.secure_boot()? {
                    claims.secure_boot = Some(enabled);
                }
            }
            (4, EV_EFI_BOOT_SERVICES_APPLICATION) => {
                claims.boot_applications.push(checked.boot_application());
            }
            (8, EV_IPL) => {
                if let Some(cmdline) = checked.grub_cmdline()? {
                    claims.kernel_cmdline = Some(cmdline);
                }
            }
            (12, EV_IPL) => {
                if let Some(cmdline) = checked.systemd_cmdline() {
                    claims.kernel_cmdline = Some(cmdline);
                }
            }
            _ => {}
        }
    }
    claims.kernel_digests = claims
        .boot_applications
        .last()
        .map(|application| application.digests.clone())
        .unwrap_or_default();
    Ok(claims)
}

/// An event in a verified PCR with the banks that verified it.
struct CheckedEvent<'a> {
    event: &'a Event,
    index: usize,
    banks: &'a [HashAlg],
}

impl CheckedEvent<'_> {
    /// Whether, in every verified bank, the event's digest is the hash of one
    /// of `candidates`. Replay already proved each bank has a digest.
    fn data_matches(&self, candidates: &[&[u8]]) -> Result<(), HashAlg> {
        for &bank in self.banks {
            let digest = self.event.digest(bank.to_tpm()).unwrap_or_default();
            if !candidates
                .iter()
                .any(|candidate| bank.digest(candidate) == digest)
            {
                return Err(bank);
            }
        }
        Ok(())
    }

    fn mismatch(&self, bank: HashAlg, claim: &'static str) -> EventLogError {
        EventLogError::EventDataMismatch {
            event: self.index,
            pcr: self.event.pcr,
            event_type: event_type::describe(self.event.event_type),
            bank,
            claim,
        }
    }

    /// The SecureBoot value if this EV_EFI_VARIABLE_DRIVER_CONFIG measures
    /// it; the digest covers the whole UEFI_VARIABLE_DATA (PFP §10.4.4).
    fn secure_boot(&self) -> Result<Option<bool>, EventLogError> {
        let variable = parse_uefi_variable(&self.event.data).map_err(|source| {
            EventLogError::MalformedEventData {
                event: self.index,
                pcr: self.event.pcr,
                event_type: event_type::describe(self.event.event_type),
                structure: "UEFI_VARIABLE_DATA",
                source,
            }
        })?;
        if variable.vendor != EFI_GLOBAL_VARIABLE || variable.name != "SecureBoot" {
            return Ok(None);
        }
        self.data_matches(&[&self.event.data])
            .map_err(|bank| self.mismatch(bank, "SecureBoot value"))?;
        // An absent variable is measured with no data: Secure Boot is off.
        Ok(Some(variable.data == [1]))
    }

    fn boot_application(&self) -> BootApplication {
        BootApplication {
            pcr: self.event.pcr,
            digests: self.verified_digests(),
            path: image_load_device_path(&self.event.data)
                .ok()
                .and_then(device_path_text),
        }
    }

    fn verified_digests(&self) -> Vec<(u16, Vec<u8>)> {
        self.event
            .digests
            .iter()
            .filter(|(alg_id, _)| self.banks.iter().any(|bank| bank.to_tpm() == *alg_id))
            .cloned()
            .collect()
    }

    fn grub_cmdline(&self) -> Result<Option<String>, EventLogError> {
        let Some(logged) = self.event.data.strip_prefix(GRUB_KERNEL_CMDLINE_PREFIX) else {
            return Ok(None);
        };
        let text = logged.strip_suffix(b"\0").unwrap_or(logged);
        self.data_matches(&[text, logged])
            .map_err(|bank| self.mismatch(bank, "kernel command line"))?;
        Ok(Some(String::from_utf8_lossy(text).into_owned()))
    }

    fn systemd_cmdline(&self) -> Option<String> {
        let data = self.event.data.as_slice();
        if !data.len().is_multiple_of(2) {
            return None;
        }
        let mut text = data;
        while let Some(rest) = text.strip_suffix(&[0, 0]) {
            text = rest;
        }
        self.data_matches(&[text, data]).ok()?;
        Some(utf16le_lossy(text))
    }
}

#[cfg(test)]
#[path = "claims_test.rs"]
mod tests;
