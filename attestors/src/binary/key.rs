//! The cache key of an executable, and the "racy" rule that decides when a digest
//! may be reused under it. docs/binary-cache.md argues why this is safe.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
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
pub(crate) struct FileKey {
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
