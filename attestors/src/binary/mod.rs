//! SHA-256 of the executable a process runs, hashed once per version of the file
//! and then served from a bounded cache (`BinaryDigestCache`).
//!
//! Hashing a large binary on every request would make the daemon's CPU and disk a
//! lever for any local caller. The cache is keyed by what `fstat` says about the
//! file behind `/proc/<pid>/exe` (device, inode, size, mtime, ctime), concurrent
//! requests for the same version share one hash, at most `max_concurrent_hashes`
//! hashes run at once, and files over `max_file_bytes` are refused unread.
//! docs/binary-cache.md gives the safety argument.
//!
//! Layout: `key` (the key and the "racy" rule), `hash` (reading through the fd),
//! `lru` (the memory bound), `cache` (single-flight and the public type).

mod cache;
mod error;
mod hash;
mod key;
mod lru;

use std::path::PathBuf;

pub use cache::{BinaryDigestCache, DEFAULT_RACY_WINDOW};
pub use error::{BinaryError, IoOperation};
pub use key::FileKey;

/// How the cache behaves. Tests point `proc_root` elsewhere; the daemon uses the
/// defaults unless configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinaryDigestConfig {
    /// Where procfs is mounted: `<proc_root>/<pid>/exe` is opened.
    pub proc_root: PathBuf,
    /// Most digests kept; the least recently used is forgotten first. 0 disables
    /// caching (every request hashes, still single-flight).
    pub max_entries: usize,
    /// Executables larger than this are refused with `TooLarge` without reading a
    /// byte, so one request costs at most this much reading.
    pub max_file_bytes: u64,
    /// Hashes running at once, across all callers. 0 is taken as 1.
    pub max_concurrent_hashes: usize,
}

impl Default for BinaryDigestConfig {
    fn default() -> Self {
        BinaryDigestConfig {
            proc_root: PathBuf::from("/proc"),
            max_entries: 4096,
            max_file_bytes: 4 << 30,
            max_concurrent_hashes: 2,
        }
    }
}

/// The digest of an executable, how many bytes were hashed, and the version of
/// the file they were read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BinaryDigest {
    pub sha256: [u8; 32],
    pub size: u64,
    /// The file's key when it was hashed: a caller that saw the process's
    /// executable under this key knows the digest is of that same file.
    pub key: FileKey,
}

/// Counters for tests and metrics.
///
/// A request served from the cache is a hit; any other request that got as far as
/// looking (it joined a hash in flight or started one) is a miss. Requests refused
/// before the lookup (`ProcessGone`, `TooLarge`, ...) are neither.
/// `hashes_started - hashes_completed - in_flight` is the number of failed hashes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hashes_started: u64,
    /// Hashes that produced a digest (cached or not: see the racy rule).
    pub hashes_completed: u64,
    pub hits: u64,
    pub misses: u64,
    /// Digests held now; never more than `max_entries`.
    pub entries: usize,
    /// Hashes started and not yet finished, including those waiting for a permit.
    pub in_flight: usize,
}
