//! Reading the measured-boot (TCG) and IMA event logs from securityfs. The logs are
//! evidence, not trusted input: they are read with a size cap and handed on as bytes
//! for the verifier to replay against a quote.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::error::TpmError;

/// Where the kernel exposes the logs. Configurable because containers and VMs mount
/// securityfs elsewhere, and tests point them at fixtures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLogPaths {
    pub boot: PathBuf,
    pub ima: PathBuf,
    /// Logs larger than this are refused rather than read into memory.
    pub max_bytes: u64,
}

impl Default for EventLogPaths {
    fn default() -> Self {
        EventLogPaths {
            boot: PathBuf::from("/sys/kernel/security/tpm0/binary_bios_measurements"),
            ima: PathBuf::from("/sys/kernel/security/ima/binary_runtime_measurements"),
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Both logs; `None` where the host has none (no measured boot, IMA off).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventLogs {
    pub boot: Option<Vec<u8>>,
    pub ima: Option<Vec<u8>>,
}

impl EventLogPaths {
    /// Reads both logs. Blocking file I/O: call from a blocking context.
    pub fn read(&self) -> Result<EventLogs, TpmError> {
        Ok(EventLogs {
            boot: read_log(&self.boot, self.max_bytes)?,
            ima: read_log(&self.ima, self.max_bytes)?,
        })
    }
}

/// Reads one log. securityfs reports size 0 for these files, so read to the end
/// through a cap instead of trusting metadata.
pub fn read_log(path: &Path, max_bytes: u64) -> Result<Option<Vec<u8>>, TpmError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(TpmError::EventLog {
                path: path.to_owned(),
                source,
            })
        }
    };
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| TpmError::EventLog {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > max_bytes {
        return Err(TpmError::EventLogTooLarge {
            path: path.to_owned(),
            limit: max_bytes,
        });
    }
    Ok(Some(bytes))
}

#[cfg(test)]
#[path = "eventlog_test.rs"]
mod tests;
