//! Why the executable of a process could not be digested.

use std::fmt;
use std::io;
use std::sync::Arc;

/// The operation on the executable that failed, for `BinaryError::Io`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoOperation {
    /// Opening `/proc/<pid>/exe`.
    Open,
    /// `fstat` of the opened executable.
    Stat,
    /// Reading the executable's bytes.
    Read,
}

impl fmt::Display for IoOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoOperation::Open => "opening",
            IoOperation::Stat => "stat of",
            IoOperation::Read => "reading",
        })
    }
}

/// Why `BinaryDigestCache::digest_of_pid` gave no digest.
///
/// `Clone` because one hash can answer many callers (single-flight), so the
/// `io::Error` inside is shared through an `Arc`.
#[derive(Clone, Debug, thiserror::Error)]
pub enum BinaryError {
    /// No process with this pid is visible, or it has no executable any more (a
    /// zombie or a kernel thread). A pid of 0 or below is also reported here: it is
    /// what `SO_PEERCRED` gives for a peer in a pid namespace we cannot see.
    #[error("process {pid} is gone or has no executable")]
    ProcessGone { pid: i32 },
    /// A system call on the executable failed (permissions, I/O error, ...).
    #[error("{operation} the executable of process {pid} failed")]
    Io {
        pid: i32,
        operation: IoOperation,
        #[source]
        source: Arc<io::Error>,
    },
    /// The executable is larger than `BinaryDigestConfig::max_file_bytes`; none of
    /// it was read.
    #[error("the executable is {size} bytes, over the hashing limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    /// `/proc/<pid>/exe` does not lead to a regular file, so there is nothing
    /// whose digest would mean anything.
    #[error("the executable is not a regular file")]
    NotARegularFile,
    /// The file's size, timestamps or length changed while it was being read, so
    /// the bytes read may be a mix of two versions. Nothing was cached; asking again
    /// hashes the new version.
    #[error("the executable of process {pid} changed while it was being hashed")]
    ChangedWhileHashing { pid: i32 },
    /// `digest_of_pid` was called outside a tokio runtime.
    #[error("binary digests need a tokio runtime, and none is running on this thread")]
    NoRuntime,
    /// The background hashing task ended without an answer (the runtime shut down,
    /// or the task panicked).
    #[error("the hashing task ended without an answer: {reason}")]
    HashTaskLost { reason: String },
}

/// How a shared hash failed, without the pid: every caller waiting on the hash
/// turns it into a `BinaryError` carrying its own pid.
#[derive(Clone, Debug)]
pub(crate) enum HashFailure {
    Stat(Arc<io::Error>),
    Read(Arc<io::Error>),
    Changed,
    Lost(String),
}

impl HashFailure {
    pub(crate) fn into_error(self, pid: i32) -> BinaryError {
        match self {
            HashFailure::Stat(source) => BinaryError::Io {
                pid,
                operation: IoOperation::Stat,
                source,
            },
            HashFailure::Read(source) => BinaryError::Io {
                pid,
                operation: IoOperation::Read,
                source,
            },
            HashFailure::Changed => BinaryError::ChangedWhileHashing { pid },
            HashFailure::Lost(reason) => BinaryError::HashTaskLost { reason },
        }
    }
}
