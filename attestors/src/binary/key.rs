//! The cache key of an executable, and the "racy" rule that decides when a digest
//! may be reused under it. docs/binary-cache.md argues why this is safe.

use std::ffi::CString;
use std::fs::Metadata;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A file timestamp as the kernel reports it, in seconds and nanoseconds since
/// the epoch. Either part may be negative for pre-1970 times (`utimensat` allows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Timestamp {
    pub(crate) secs: i64,
    pub(crate) nanos: i64,
}

impl Timestamp {
    fn as_nanos(self) -> i128 {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }
}

/// Identifies one version of one file, from `fstat` of an open fd.
///
/// `(dev, ino)` names the inode: a file replaced by rename is a different inode.
/// `ctime` moves on every write, truncate, chmod, link and rename, and no system
/// call can set it back, so a rewrite in place shows up there; `mtime` and `size`
/// are redundant with it on an honest clock but cost nothing and catch a write
/// whose ctime landed in the same clock tick when the size or `mtime` differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) size: u64,
    pub(crate) mtime: Timestamp,
    pub(crate) ctime: Timestamp,
}

impl FileKey {
    pub(crate) fn from_metadata(metadata: &Metadata) -> Self {
        FileKey {
            dev: metadata.dev(),
            ino: metadata.ino(),
            size: metadata.size(),
            mtime: Timestamp {
                secs: metadata.mtime(),
                nanos: metadata.mtime_nsec(),
            },
            ctime: Timestamp {
                secs: metadata.ctime(),
                nanos: metadata.ctime_nsec(),
            },
        }
    }

    /// The key of the file `path` resolves to, from the attributes the kernel
    /// already holds (`statx` with `AT_STATX_DONT_SYNC`): on FUSE and network
    /// filesystems this asks no server, so it cannot hang on a hostile one. On a
    /// local filesystem it is exactly what `fstat` would say. Where cached
    /// attributes lag, the key differs from the `fstat` key of the same file,
    /// which only ever costs a cache miss.
    pub fn of_path_without_sync(path: &Path) -> io::Result<FileKey> {
        Self::of_path_at_without_sync(libc::AT_FDCWD, path)
    }

    /// As [`FileKey::of_path_without_sync`], for `path` relative to the
    /// directory `dir` (or `AT_FDCWD`).
    pub fn of_path_at_without_sync(dir: RawFd, path: &Path) -> io::Result<FileKey> {
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
        // SAFETY: `statx` is plain data; all-zeroes is a valid value for it.
        let mut stx: libc::statx = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is NUL-terminated and `stx` is writable; statx writes
        // only within it.
        let rc = unsafe {
            libc::statx(
                dir,
                path.as_ptr(),
                libc::AT_STATX_DONT_SYNC,
                libc::STATX_BASIC_STATS,
                &mut stx,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let wanted = libc::STATX_INO | libc::STATX_SIZE | libc::STATX_MTIME | libc::STATX_CTIME;
        if stx.stx_mask & wanted != wanted {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the filesystem did not report inode, size and times",
            ));
        }
        Ok(FileKey {
            dev: libc::makedev(stx.stx_dev_major, stx.stx_dev_minor),
            ino: stx.stx_ino,
            size: stx.stx_size,
            mtime: Timestamp {
                secs: stx.stx_mtime.tv_sec,
                nanos: i64::from(stx.stx_mtime.tv_nsec),
            },
            ctime: Timestamp {
                secs: stx.stx_ctime.tv_sec,
                nanos: i64::from(stx.stx_ctime.tv_nsec),
            },
        })
    }

    /// The latest of the two timestamps a write can move. `mtime` can be set into
    /// the future with `utimensat`, so it is not enough to look at `ctime`.
    fn last_change(&self) -> Timestamp {
        self.mtime.max(self.ctime)
    }
}

/// Whether bytes read from this file starting at `read_started` are the file's
/// content for as long as its key stays `key`.
///
/// Linux stamps files from a coarse clock (one jiffy, 1–10 ms; a whole second on
/// ext4 with 128-byte inodes, two seconds on FAT). A write in the same tick as the
/// last change leaves the key as it was, so it is only after the last change plus
/// one tick that every write is guaranteed to move the key. Like git's "racy clean"
/// rule, a read that began within `racy_window` of the last change is not trusted
/// beyond the request that made it. A timestamp in the future (a clock stepped back
/// or an `mtime` set ahead) is never settled.
pub(crate) fn settled_before(
    key: &FileKey,
    read_started: SystemTime,
    racy_window: Duration,
) -> bool {
    let Ok(since_epoch) = read_started.duration_since(UNIX_EPOCH) else {
        return false;
    };
    let read_started = since_epoch.as_nanos() as i128;
    let window = racy_window.as_nanos() as i128;
    key.last_change().as_nanos() + window < read_started
}

#[cfg(test)]
#[path = "key_test.rs"]
mod tests;
