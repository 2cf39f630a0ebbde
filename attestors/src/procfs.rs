//! The seam between attestors and `/proc`: every read of a process's files goes
//! through [`ProcFs`], so tests point it at a fixture tree and the parsing of
//! hostile bytes lives in one place.
//!
//! Everything here treats `/proc` content as hostile. A process chooses its own
//! name (`comm`, up to 15 bytes of anything but NUL) and the names of any cgroups
//! delegated to it, so reads are size-capped, parsing is strict, and a file that
//! does not have the kernel's shape is an error, never a guess.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::binary::FileKey;
use crate::selector::AttestorError;

/// `/proc/<pid>/status` is ~1.5 KiB, but its `Groups:` line holds up to
/// NGROUPS_MAX (65536) ids of up to 10 digits each.
const STATUS_LIMIT: u64 = 1024 * 1024;
/// One line per hierarchy (at most 16 v1 hierarchies plus v2), each path at most
/// PATH_MAX (4096): the kernel fails the read rather than print a longer path.
const CGROUP_LIMIT: u64 = 128 * 1024;
/// `pid (comm) ` plus 50 numeric fields: well under 1 KiB.
const STAT_LIMIT: u64 = 64 * 1024;

/// Where `/proc` is, and how to read a process's files from it.
#[derive(Clone, Debug)]
pub struct ProcFs {
    root: PathBuf,
}

/// A process's uids or gids, as in the `Uid:`/`Gid:` lines of
/// `/proc/<pid>/status`, mapped into the reader's user namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    pub real: u32,
    /// What the kernel checks for access, and what `SO_PEERCRED` reports.
    pub effective: u32,
    pub saved: u32,
    pub filesystem: u32,
}

/// The parts of `/proc/<pid>/status` attestors use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStatus {
    /// The command name, for logs only: the process chooses it. The kernel
    /// escapes `\n` and `\` in it; bytes that are not UTF-8 are replaced.
    pub name: String,
    /// The thread-group id (the process id `SO_PEERCRED` reports).
    pub tgid: i32,
    /// The id the file was read for (a thread id if a thread was named).
    pub pid: i32,
    pub ppid: i32,
    pub uid: Ids,
    pub gid: Ids,
    /// Supplementary group ids, in the kernel's order.
    pub groups: Vec<u32>,
}

impl Default for ProcFs {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcFs {
    /// The system's `/proc`.
    pub fn new() -> Self {
        Self::at("/proc")
    }

    /// A procfs mounted (or faked, in tests) at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        ProcFs { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Parsed `/proc/<pid>/status`.
    pub fn status(&self, pid: i32) -> Result<ProcStatus, AttestorError> {
        let path = self.pid_file(pid, "status")?;
        let bytes = self.read_capped(pid, &path, STATUS_LIMIT)?;
        parse_status(&bytes).map_err(|reason| AttestorError::Malformed { path, reason })
    }

    /// The raw text of `/proc/<pid>/cgroup`; see `cgroup::parse_cgroup_file`.
    /// Cgroup names that are not UTF-8 are refused rather than replaced, so two
    /// different cgroups never read as the same text.
    pub fn cgroup(&self, pid: i32) -> Result<String, AttestorError> {
        let path = self.pid_file(pid, "cgroup")?;
        let bytes = self.read_capped(pid, &path, CGROUP_LIMIT)?;
        String::from_utf8(bytes).map_err(|error| AttestorError::Malformed {
            path,
            reason: format!("not UTF-8 at byte {}", error.utf8_error().valid_up_to()),
        })
    }

    /// Where the process's executable was when it was executed, as the kernel
    /// reports it through `/proc/<pid>/exe`. A file since deleted or replaced
    /// keeps the kernel's ` (deleted)` suffix. The path is resolved in the
    /// target's mount namespace, so for a containerised process it is a path
    /// inside the container.
    pub fn exe_path(&self, pid: i32) -> Result<PathBuf, AttestorError> {
        let path = self.pid_file(pid, "exe")?;
        std::fs::read_link(&path).map_err(|error| {
            if error.kind() == ErrorKind::NotFound && self.pid_dir_exists(pid) {
                // The process is there but has no mm: a kernel thread or a zombie.
                AttestorError::NoExecutable { pid }
            } else {
                self.io_error(pid, path, error)
            }
        })
    }

    /// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks
    /// after boot. With the pid it names one process for the life of a boot,
    /// which is how a reused pid is told apart.
    pub fn start_time_ticks(&self, pid: i32) -> Result<u64, AttestorError> {
        let path = self.pid_file(pid, "stat")?;
        let bytes = self.read_capped(pid, &path, STAT_LIMIT)?;
        parse_stat_start_time(&bytes, pid)
            .map_err(|reason| AttestorError::Malformed { path, reason })
    }

    /// Opens `/proc/<pid>` and the files [`ProcessFiles::read_inputs`] reads, so
    /// that later reads skip the path walk. Every later read goes through these
    /// descriptors, which stay bound to the process that held `pid` when they
    /// were opened: once it exits they fail, even if the pid is reused. The
    /// caller must still prove (with a pidfd) that the process it means is the
    /// one that held `pid` at this moment.
    pub fn open_process(&self, pid: i32) -> Result<ProcessFiles, AttestorError> {
        let dir_path = self.pid_file(pid, "")?;
        let dir = open_at(None, &dir_path, libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|error| self.io_error(pid, dir_path.clone(), error))?;
        let open = |name: &str| {
            open_at(Some(&dir), Path::new(name), libc::O_RDONLY)
                .map(File::from)
                .map_err(|error| self.io_error(pid, dir_path.join(name), error))
        };
        Ok(ProcessFiles {
            pid,
            status: open("status")?,
            cgroup: open("cgroup")?,
            dir,
            dir_path,
        })
    }

    fn pid_file(&self, pid: i32, file: &str) -> Result<PathBuf, AttestorError> {
        if pid <= 0 {
            return Err(AttestorError::InvalidPid { pid });
        }
        Ok(self.root.join(pid.to_string()).join(file))
    }

    fn pid_dir_exists(&self, pid: i32) -> bool {
        self.root.join(pid.to_string()).is_dir()
    }

    fn read_capped(&self, pid: i32, path: &Path, limit: u64) -> Result<Vec<u8>, AttestorError> {
        read_capped(path, limit).map_err(|error| match error {
            AttestorError::Io { path, source } => self.io_error(pid, path, source),
            other => other,
        })
    }

    /// `ENOENT` for a pid whose directory is gone, and `ESRCH` (which procfs
    /// returns mid-read once the task has exited), both mean the process is gone.
    fn io_error(&self, pid: i32, path: PathBuf, error: std::io::Error) -> AttestorError {
        let gone = error.raw_os_error() == Some(libc::ESRCH)
            || (error.kind() == ErrorKind::NotFound && !self.pid_dir_exists(pid));
        if gone {
            AttestorError::ProcessGone { pid }
        } else {
            AttestorError::Io {
                path,
                source: error,
            }
        }
    }
}

/// What the `unix` and `cgroup` attestors and the executable digest are derived
/// from, read from one process in one pass. Equal inputs give equal selectors
/// (up to NSS renaming a user or group), which is what lets the daemon reuse an
/// answer for as long as a fresh read gives equal inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInputs {
    /// Effective uid and gid, as in `/proc/<pid>/status`.
    pub uid: u32,
    pub gid: u32,
    /// Supplementary group ids, sorted and without repeats.
    pub groups: Vec<u32>,
    /// The text of `/proc/<pid>/cgroup`.
    pub cgroup: String,
    /// Where `/proc/<pid>/exe` points (see [`ProcFs::exe_path`]).
    pub exe: PathBuf,
    /// The version of the executable file (see [`FileKey::of_path_without_sync`]).
    pub exe_key: FileKey,
}

/// `/proc/<pid>` held open; see [`ProcFs::open_process`].
#[derive(Debug)]
pub struct ProcessFiles {
    pid: i32,
    dir: OwnedFd,
    dir_path: PathBuf,
    status: File,
    cgroup: File,
}

impl ProcessFiles {
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Reads the process's credentials, cgroups and executable afresh. Nothing
    /// here can wait on another process: procfs is generated by the kernel, and
    /// the executable is looked at only through attributes the kernel already
    /// holds. It fails with `ProcessGone` once the process has exited.
    pub fn read_inputs(&self) -> Result<ProcessInputs, AttestorError> {
        let status_path = || self.dir_path.join("status");
        let status = read_at_capped(&self.status, STATUS_LIMIT)
            .map_err(|error| self.error(status_path(), error))?;
        let status = parse_status(&status).map_err(|reason| AttestorError::Malformed {
            path: status_path(),
            reason,
        })?;
        let cgroup_path = || self.dir_path.join("cgroup");
        let cgroup = read_at_capped(&self.cgroup, CGROUP_LIMIT)
            .map_err(|error| self.error(cgroup_path(), error))?;
        let cgroup = String::from_utf8(cgroup).map_err(|error| AttestorError::Malformed {
            path: cgroup_path(),
            reason: format!("not UTF-8 at byte {}", error.utf8_error().valid_up_to()),
        })?;
        let exe_path = || self.dir_path.join("exe");
        let exe =
            read_link_at(&self.dir, "exe").map_err(|error| self.exe_error(exe_path(), error))?;
        let exe_key = stat_at_without_sync(&self.dir, "exe")
            .map_err(|error| self.exe_error(exe_path(), error))?;
        let mut groups = status.groups;
        groups.sort_unstable();
        groups.dedup();
        Ok(ProcessInputs {
            uid: status.uid.effective,
            gid: status.gid.effective,
            groups,
            cgroup,
            exe,
            exe_key,
        })
    }

    /// Reads through a descriptor bound to an exited process fail with `ESRCH`
    /// (or `ENOENT` for a name looked up in its directory).
    fn error(&self, path: PathBuf, error: std::io::Error) -> AttestorError {
        if error.raw_os_error() == Some(libc::ESRCH) || error.kind() == ErrorKind::NotFound {
            AttestorError::ProcessGone { pid: self.pid }
        } else {
            AttestorError::Io {
                path,
                source: error,
            }
        }
    }

    /// As `error`, except that a live process without an executable (a zombie)
    /// says so.
    fn exe_error(&self, path: PathBuf, error: std::io::Error) -> AttestorError {
        if error.kind() == ErrorKind::NotFound && self.status.read_at(&mut [0u8; 1], 0).is_ok() {
            AttestorError::NoExecutable { pid: self.pid }
        } else {
            self.error(path, error)
        }
    }
}

fn open_at(dir: Option<&OwnedFd>, path: &Path, flags: libc::c_int) -> std::io::Result<OwnedFd> {
    let path = c_path(path)?;
    let dir = dir.map_or(libc::AT_FDCWD, AsRawFd::as_raw_fd);
    // SAFETY: `path` is NUL-terminated; a non-negative result is a new descriptor
    // that we own.
    let fd = unsafe {
        libc::openat(
            dir,
            path.as_ptr(),
            flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: see above.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// readlinkat(2), growing the buffer up to PATH_MAX (the kernel never returns
/// a longer link).
fn read_link_at(dir: &OwnedFd, name: &str) -> std::io::Result<PathBuf> {
    const PATH_MAX: usize = 4096;
    let name = c_path(Path::new(name))?;
    let mut buffer = vec![0u8; 256];
    loop {
        // SAFETY: `name` is NUL-terminated and `buffer` is writable for its length.
        let n = unsafe {
            libc::readlinkat(
                dir.as_raw_fd(),
                name.as_ptr(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = n as usize;
        if n < buffer.len() {
            buffer.truncate(n);
            return Ok(PathBuf::from(OsString::from_vec(buffer)));
        }
        if buffer.len() > PATH_MAX {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                "link target longer than PATH_MAX",
            ));
        }
        buffer.resize(buffer.len() * 4, 0);
    }
}

fn stat_at_without_sync(dir: &OwnedFd, name: &str) -> std::io::Result<FileKey> {
    FileKey::of_path_at_without_sync(dir.as_raw_fd(), Path::new(name))
}

fn c_path(path: &Path) -> std::io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(ErrorKind::InvalidInput, "path contains NUL"))
}

/// Reads all of a procfs file from offset 0 through an open descriptor, refusing
/// more than `limit` bytes. procfs renders the whole file when the read at
/// offset 0 starts, and later reads continue from that rendering, so the bytes
/// are one consistent view. Only for files whose reads are short only at the
/// end: procfs seq_files and regular files.
fn read_at_capped(file: &File, limit: u64) -> std::io::Result<Vec<u8>> {
    const CHUNK: usize = 4096;
    let mut bytes = Vec::with_capacity(CHUNK);
    loop {
        let start = bytes.len();
        if start as u64 > limit {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                format!("larger than the {limit}-byte limit"),
            ));
        }
        bytes.resize(start + CHUNK, 0);
        match file.read_at(&mut bytes[start..], start as u64) {
            // A seq_file read copies out all it has rendered that fits, so a short
            // read is the end; so is one of a regular file (a test fixture).
            Ok(n) if n < CHUNK => {
                bytes.truncate(start + n);
                return Ok(bytes);
            }
            Ok(n) => bytes.truncate(start + n),
            Err(error) if error.kind() == ErrorKind::Interrupted => bytes.truncate(start),
            Err(error) => return Err(error),
        }
    }
}

/// Reads a whole file of at most `limit` bytes; a larger one is refused, not
/// truncated, since a truncated line could parse as something else.
pub(crate) fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, AttestorError> {
    let io_error = |source| AttestorError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "too large".
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > limit {
        return Err(AttestorError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}

/// Parses `/proc/<pid>/status`. Every key we use must appear exactly once: the
/// `Name:` line comes first and is the only one a process controls, so a name
/// that smuggled in a raw newline and a fake `Uid:` line would show up as a
/// duplicate key and be refused.
pub(crate) fn parse_status(bytes: &[u8]) -> Result<ProcStatus, String> {
    let mut name = None;
    let mut tgid = None;
    let mut pid = None;
    let mut ppid = None;
    let mut uid = None;
    let mut gid = None;
    let mut groups = None;

    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    for (index, line) in body.split(|&byte| byte == b'\n').enumerate() {
        let line_number = index + 1;
        let colon = line
            .iter()
            .position(|&byte| byte == b':')
            .ok_or_else(|| format!("line {line_number} has no `key:`"))?;
        let (key, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b"\t").unwrap_or(value);
        match key {
            b"Name" => set_once(
                &mut name,
                "Name",
                String::from_utf8_lossy(value).into_owned(),
            )?,
            b"Tgid" => set_once(&mut tgid, "Tgid", parse_number::<i32>(value, "Tgid")?)?,
            b"Pid" => set_once(&mut pid, "Pid", parse_number::<i32>(value, "Pid")?)?,
            b"PPid" => set_once(&mut ppid, "PPid", parse_number::<i32>(value, "PPid")?)?,
            b"Uid" => set_once(&mut uid, "Uid", parse_ids(value, "Uid")?)?,
            b"Gid" => set_once(&mut gid, "Gid", parse_ids(value, "Gid")?)?,
            b"Groups" => set_once(&mut groups, "Groups", parse_groups(value)?)?,
            _ => {}
        }
    }

    Ok(ProcStatus {
        name: name.ok_or("no Name line")?,
        tgid: tgid.ok_or("no Tgid line")?,
        pid: pid.ok_or("no Pid line")?,
        ppid: ppid.ok_or("no PPid line")?,
        uid: uid.ok_or("no Uid line")?,
        gid: gid.ok_or("no Gid line")?,
        groups: groups.ok_or("no Groups line")?,
    })
}

fn set_once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("{key} appears more than once"));
    }
    *slot = Some(value);
    Ok(())
}

/// Decimal digits only: `str::parse` would also take a leading `+`.
fn parse_number<T: std::str::FromStr>(text: &[u8], what: &str) -> Result<T, String> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(format!(
            "{what}: {:?} is not a number",
            String::from_utf8_lossy(text)
        ));
    }
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| {
            format!(
                "{what}: {:?} is out of range",
                String::from_utf8_lossy(text)
            )
        })
}

/// `Uid:`/`Gid:` hold exactly four tab-separated ids: real, effective, saved, fs.
fn parse_ids(value: &[u8], what: &str) -> Result<Ids, String> {
    let fields: Vec<&[u8]> = value.split(|&byte| byte == b'\t').collect();
    let [real, effective, saved, filesystem] = fields.as_slice() else {
        return Err(format!("{what} has {} fields, expected 4", fields.len()));
    };
    Ok(Ids {
        real: parse_number(real, what)?,
        effective: parse_number(effective, what)?,
        saved: parse_number(saved, what)?,
        filesystem: parse_number(filesystem, what)?,
    })
}

/// `Groups:` is a space-separated list, with a trailing space, possibly empty.
fn parse_groups(value: &[u8]) -> Result<Vec<u32>, String> {
    value
        .split(|&byte| byte == b' ')
        .filter(|field| !field.is_empty())
        .map(|field| parse_number(field, "Groups"))
        .collect()
}

/// Field 22 (`starttime`) of `/proc/<pid>/stat`. The line is
/// `pid (comm) state ppid …`, where comm is raw bytes chosen by the process and
/// may itself contain `) `, spaces or newlines; nothing after comm contains `)`,
/// so the fields start after the *last* `)`.
pub(crate) fn parse_stat_start_time(bytes: &[u8], expected_pid: i32) -> Result<u64, String> {
    const START_TIME_FIELD: usize = 22;
    // Fields numbered from 1: pid is 1, comm is 2, the rest follow comm.
    const FIRST_FIELD_AFTER_COMM: usize = 3;

    let open = bytes
        .iter()
        .position(|&byte| byte == b'(')
        .ok_or("no `(` before the command name")?;
    let close = bytes
        .iter()
        .rposition(|&byte| byte == b')')
        .ok_or("no `)` after the command name")?;
    if close < open {
        return Err("`)` before `(`".into());
    }
    let pid_field = bytes[..open]
        .strip_suffix(b" ")
        .ok_or("no space between pid and command name")?;
    let pid: i32 = parse_number(pid_field, "pid")?;
    if pid != expected_pid {
        return Err(format!("stat is for pid {pid}, expected {expected_pid}"));
    }

    let rest = &bytes[close + 1..];
    let rest = rest.strip_suffix(b"\n").unwrap_or(rest);
    let rest = rest
        .strip_prefix(b" ")
        .ok_or("no space after the command name")?;
    let field = rest
        .split(|&byte| byte == b' ')
        .nth(START_TIME_FIELD - FIRST_FIELD_AFTER_COMM)
        .ok_or("fewer than 22 fields")?;
    parse_number(field, "starttime")
}

#[cfg(test)]
#[path = "procfs_test.rs"]
mod tests;
