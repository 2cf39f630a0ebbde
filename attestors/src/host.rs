//! Facts about the host the daemon runs on: hostname, kernel release, operating
//! system, and boot id (`host:*` selectors).
//!
//! They are read from files, not syscalls, so a daemon in a container can be
//! pointed at the host's `/proc` and `/` (e.g. `/host/proc`, `/host`), and tests
//! at a fixture tree.

use std::path::Path;

use crate::procfs::read_capped;
use crate::selector::{Attestor, AttestorError, Selector};

/// `/proc/sys/kernel/*` values are a line each (a hostname is at most 64 bytes).
const SYSCTL_LIMIT: u64 = 4096;
/// os-release is a few hundred bytes; allow for vendors' long URLs.
const OS_RELEASE_LIMIT: u64 = 64 * 1024;
/// The os-release specification's default when no file or no `ID=` exists.
const DEFAULT_OS_ID: &str = "linux";

/// What identifies the host, collected once (at daemon start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInfo {
    /// `/proc/sys/kernel/hostname`: the hostname of the reader's UTS namespace.
    pub hostname: String,
    /// `/proc/sys/kernel/osrelease`, as `uname -r` prints it.
    pub kernel: String,
    /// os-release `ID` (`debian`, `ubuntu`, `rhel`), or `linux` if unknown.
    pub os: String,
    /// os-release `VERSION_ID` (`12`, `22.04`); rolling releases have none.
    pub os_version: Option<String>,
    /// `/proc/sys/kernel/random/boot_id`: a random UUID, new at every boot.
    pub boot_id: String,
}

impl HostInfo {
    /// Reads this host's `/proc` and `/etc/os-release`.
    pub fn collect() -> Result<Self, AttestorError> {
        Self::collect_from(Path::new("/proc"), Path::new("/"))
    }

    /// Reads `<proc_root>/sys/kernel/…` and the os-release file under `fs_root`
    /// (`etc/os-release`, else `usr/lib/os-release`, as the specification says).
    pub fn collect_from(proc_root: &Path, fs_root: &Path) -> Result<Self, AttestorError> {
        let kernel_dir = proc_root.join("sys").join("kernel");
        let hostname = read_line(&kernel_dir.join("hostname"))?;
        let kernel = read_line(&kernel_dir.join("osrelease"))?;
        let boot_id_path = kernel_dir.join("random").join("boot_id");
        let boot_id = read_line(&boot_id_path)?;
        if !is_uuid(&boot_id) {
            return Err(AttestorError::Malformed {
                path: boot_id_path,
                reason: format!("{boot_id:?} is not a UUID"),
            });
        }
        let (os, os_version) = read_os_release(fs_root)?;
        Ok(HostInfo {
            hostname,
            kernel,
            os,
            os_version,
            boot_id,
        })
    }

    /// `host:hostname`, `host:kernel`, `host:os`, `host:os-version` (when the
    /// OS has one) and `host:boot-id`.
    pub fn selectors(&self) -> Vec<Selector> {
        let mut selectors = vec![
            Selector::new("host", "hostname", self.hostname.as_str()),
            Selector::new("host", "kernel", self.kernel.as_str()),
            Selector::new("host", "os", self.os.as_str()),
        ];
        if let Some(version) = &self.os_version {
            selectors.push(Selector::new("host", "os-version", version.as_str()));
        }
        selectors.push(Selector::new("host", "boot-id", self.boot_id.as_str()));
        selectors
    }
}

/// Host selectors do not depend on the process: every caller gets the same.
impl Attestor for HostInfo {
    fn name(&self) -> &'static str {
        "host"
    }

    fn attest(&self, _pid: i32) -> Result<Vec<Selector>, AttestorError> {
        Ok(self.selectors())
    }
}

/// A one-line sysctl file: UTF-8, one trailing newline, not empty.
fn read_line(path: &Path) -> Result<String, AttestorError> {
    let malformed = |reason: &str| AttestorError::Malformed {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let bytes = read_capped(path, SYSCTL_LIMIT)?;
    let text = String::from_utf8(bytes).map_err(|_| malformed("not UTF-8"))?;
    let line = text.strip_suffix('\n').unwrap_or(&text);
    if line.is_empty() {
        return Err(malformed("empty"));
    }
    if line.contains('\n') {
        return Err(malformed("more than one line"));
    }
    Ok(line.to_owned())
}

fn read_os_release(fs_root: &Path) -> Result<(String, Option<String>), AttestorError> {
    for candidate in ["etc/os-release", "usr/lib/os-release"] {
        let path = fs_root.join(candidate);
        let bytes = match read_capped(&path, OS_RELEASE_LIMIT) {
            Ok(bytes) => bytes,
            Err(AttestorError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                continue
            }
            Err(error) => return Err(error),
        };
        let text = String::from_utf8_lossy(&bytes);
        let fields = parse_os_release(&text);
        let id = fields.id.unwrap_or_else(|| DEFAULT_OS_ID.to_owned());
        for (key, value) in [
            ("ID", Some(&id)),
            ("VERSION_ID", fields.version_id.as_ref()),
        ] {
            if let Some(value) = value.filter(|value| !is_os_release_id(value)) {
                return Err(AttestorError::Malformed {
                    path,
                    reason: format!("{key}={value:?} is not lowercase [a-z0-9._-]"),
                });
            }
        }
        return Ok((id, fields.version_id));
    }
    Ok((DEFAULT_OS_ID.to_owned(), None))
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct OsRelease {
    pub id: Option<String>,
    pub version_id: Option<String>,
}

/// The `ID` and `VERSION_ID` assignments of an os-release file: shell-style
/// `KEY=value`, `KEY="value"` or `KEY='value'`, `#` comments. Later assignments
/// win, as when the file is sourced by a shell.
pub(crate) fn parse_os_release(text: &str) -> OsRelease {
    let mut fields = OsRelease::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let slot = match key {
            "ID" => &mut fields.id,
            "VERSION_ID" => &mut fields.version_id,
            _ => continue,
        };
        *slot = Some(unquote(raw)).filter(|value| !value.is_empty());
    }
    fields
}

/// Shell unquoting as far as os-release uses it: single quotes are literal;
/// inside double quotes `\` escapes `"`, `\`, `$` and `` ` ``.
fn unquote(raw: &str) -> String {
    if let Some(inner) = raw
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
    {
        return inner.to_owned();
    }
    let Some(inner) = raw
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return raw.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some(next @ ('"' | '\\' | '$' | '`'))) => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// os-release restricts `ID` and `VERSION_ID` to lowercase letters, digits and
/// `._-`; anything else means the file is not what it claims to be.
fn is_os_release_id(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'.' | b'_' | b'-')
        })
}

/// `8-4-4-4-12` lowercase hex digits, as the kernel formats `boot_id`.
pub(crate) fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => byte == b'-',
            _ => byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte),
        })
}

#[cfg(test)]
#[path = "host_test.rs"]
mod tests;
