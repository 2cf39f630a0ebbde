//! The `unix` attestor: who a process runs as (effective uid and gid,
//! supplementary groups, and their names) and the path of its executable.
//!
//! The executable's digest (`unix:sha256`) is not made here: the daemon asks the
//! `binary` module's `BinaryDigestCache`, which reads through `/proc/<pid>/exe`.

use std::ffi::CStr;

use std::path::Path;

use crate::procfs::{ProcFs, ProcessInputs};
use crate::selector::{Attestor, AttestorError, Selector};

/// Buffers for getpwuid_r/getgrgid_r grow from here on ERANGE…
const NSS_BUFFER_START: usize = 1024;
/// …up to here: a group with tens of thousands of members needs a large buffer,
/// but a lookup must not let a directory service make us allocate without bound.
const NSS_BUFFER_LIMIT: usize = 1024 * 1024;
/// getpwuid_r may be interrupted by a signal; retry a few times, not forever.
const NSS_EINTR_RETRIES: u32 = 3;

/// Reports `unix:uid`, `unix:user`, `unix:gid`, `unix:group`,
/// `unix:supplementary-gid`, `unix:supplementary-group` and `unix:path`.
///
/// The ids are the *effective* ones: they are what the kernel checks for access,
/// and what `SO_PEERCRED` reports for the caller, so both views agree. Names
/// come from this host's NSS (`/etc/passwd`, `/etc/group`, or a directory
/// service), not from the workload's container; an id without a name gets no
/// name selector.
#[derive(Clone, Debug)]
pub struct UnixAttestor {
    procfs: ProcFs,
    names: std::sync::Arc<NameCache>,
}

impl UnixAttestor {
    pub fn new(procfs: ProcFs) -> Self {
        UnixAttestor {
            procfs,
            names: std::sync::Arc::new(NameCache::default()),
        }
    }
}

/// How long a looked-up name (or its absence) is reused. Every NSS lookup opens
/// and parses /etc/passwd or /etc/group (or asks a directory service), several
/// per request; a renamed user shows up here within this time.
const NAME_TTL: std::time::Duration = std::time::Duration::from_secs(30);
/// Names kept at most; the cache is simply emptied when full.
const NAME_CACHE_ENTRIES: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum NameKind {
    User,
    Group,
}

type NameEntry = (Option<Vec<u8>>, std::time::Instant);

/// uid and gid names, remembered for `NAME_TTL`.
#[derive(Debug, Default)]
struct NameCache {
    entries: std::sync::Mutex<std::collections::HashMap<(NameKind, u32), NameEntry>>,
}

impl NameCache {
    fn get(&self, kind: NameKind, id: u32) -> Option<Vec<u8>> {
        let now = std::time::Instant::now();
        {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((name, at)) = entries.get(&(kind, id)) {
                if now.duration_since(*at) < NAME_TTL {
                    return name.clone();
                }
            }
        }
        // Looked up without the lock held: NSS may be slow.
        let name = match kind {
            NameKind::User => user_name(id),
            NameKind::Group => group_name(id),
        };
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= NAME_CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert((kind, id), (name.clone(), now));
        name
    }
}

impl Attestor for UnixAttestor {
    fn name(&self) -> &'static str {
        "unix"
    }

    fn attest(&self, pid: i32) -> Result<Vec<Selector>, AttestorError> {
        let status = self.procfs.status(pid)?;
        let exe = self.procfs.exe_path(pid)?;
        let mut groups = status.groups;
        groups.sort_unstable();
        groups.dedup();
        Ok(self.selectors(status.uid.effective, status.gid.effective, &groups, &exe))
    }

    fn attest_inputs(
        &self,
        inputs: &ProcessInputs,
    ) -> Option<Result<Vec<Selector>, AttestorError>> {
        Some(Ok(self.selectors(
            inputs.uid,
            inputs.gid,
            &inputs.groups,
            &inputs.exe,
        )))
    }
}

impl UnixAttestor {
    /// `groups` sorted and without repeats.
    fn selectors(&self, uid: u32, gid: u32, groups: &[u32], exe: &Path) -> Vec<Selector> {
        let mut selectors = vec![Selector::new("unix", "uid", uid.to_string())];
        if let Some(name) = self.names.get(NameKind::User, uid) {
            selectors.push(Selector::from_bytes("unix", "user", &name));
        }
        selectors.push(Selector::new("unix", "gid", gid.to_string()));
        if let Some(name) = self.names.get(NameKind::Group, gid) {
            selectors.push(Selector::from_bytes("unix", "group", &name));
        }
        for &group in groups {
            selectors.push(Selector::new(
                "unix",
                "supplementary-gid",
                group.to_string(),
            ));
            if let Some(name) = self.names.get(NameKind::Group, group) {
                selectors.push(Selector::from_bytes("unix", "supplementary-group", &name));
            }
        }
        selectors.push(Selector::from_bytes(
            "unix",
            "path",
            exe.as_os_str().as_encoded_bytes(),
        ));
        selectors
    }
}

/// The login name of `uid`, if NSS knows one.
pub(crate) fn user_name(uid: u32) -> Option<Vec<u8>> {
    nss_lookup("getpwuid_r", uid, |buffer, out| {
        // SAFETY: `passwd` is plain data; all-zeroes is a valid value for it.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call, and `buffer` is writable
        // for `buffer.len()` bytes; getpwuid_r writes only within them.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut entry,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut result,
            )
        };
        if rc == 0 && !result.is_null() && !entry.pw_name.is_null() {
            // SAFETY: on success pw_name points at a NUL-terminated string inside
            // `buffer`, which outlives this borrow.
            *out = Some(unsafe { CStr::from_ptr(entry.pw_name) }.to_bytes().to_vec());
        }
        rc
    })
}

/// The name of group `gid`, if NSS knows one.
pub(crate) fn group_name(gid: u32) -> Option<Vec<u8>> {
    nss_lookup("getgrgid_r", gid, |buffer, out| {
        // SAFETY: `group` is plain data; all-zeroes is a valid value for it.
        let mut entry: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: as in `user_name`.
        let rc = unsafe {
            libc::getgrgid_r(
                gid,
                &mut entry,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut result,
            )
        };
        if rc == 0 && !result.is_null() && !entry.gr_name.is_null() {
            // SAFETY: as in `user_name`.
            *out = Some(unsafe { CStr::from_ptr(entry.gr_name) }.to_bytes().to_vec());
        }
        rc
    })
}

/// Runs a reentrant NSS lookup, growing its buffer on ERANGE up to a limit.
/// `call` returns the function's error code and stores the name on success.
/// A missing entry, an empty name and every failure give `None`: a name is an
/// extra, the numeric id is always reported.
fn nss_lookup(
    function: &'static str,
    id: u32,
    mut call: impl FnMut(&mut [libc::c_char], &mut Option<Vec<u8>>) -> libc::c_int,
) -> Option<Vec<u8>> {
    let mut buffer: Vec<libc::c_char> = vec![0; NSS_BUFFER_START];
    let mut interruptions = 0;
    loop {
        let mut name = None;
        match call(&mut buffer, &mut name) {
            0 => return name.filter(|name| !name.is_empty()),
            libc::ERANGE if buffer.len() < NSS_BUFFER_LIMIT => {
                let grown = (buffer.len() * 4).min(NSS_BUFFER_LIMIT);
                buffer.resize(grown, 0);
            }
            libc::EINTR if interruptions < NSS_EINTR_RETRIES => interruptions += 1,
            code => {
                tracing::debug!(
                    function,
                    id,
                    error = %std::io::Error::from_raw_os_error(code),
                    "name lookup failed; reporting the numeric id only"
                );
                return None;
            }
        }
    }
}

#[cfg(test)]
#[path = "unix_test.rs"]
mod tests;
