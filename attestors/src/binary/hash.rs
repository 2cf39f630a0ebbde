//! SHA-256 of an already-open executable, read through its fd. Blocking: call it
//! from `spawn_blocking`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use ring::digest::{Context, SHA256};

use super::error::HashFailure;
use super::key::FileKey;

/// Read size. Large enough that syscalls cost little next to SHA-256, small enough
/// that `max_concurrent_hashes` buffers are a rounding error in the daemon's memory.
pub(crate) const READ_BUFFER_BYTES: usize = 256 * 1024;

/// Hashes exactly `expected.size` bytes of `file` and checks, afterwards, that the
/// file is still the version `expected` describes.
///
/// The fd was opened from `/proc/<pid>/exe`, so it is the mapped file even if its
/// path has since been replaced or unlinked; nothing here ever reopens a path.
/// Reading stops at `expected.size` (already checked against the size limit), so
/// a file that grows while we read cannot make us read more than we allowed.
pub(crate) fn sha256_of_open_file(
    file: &File,
    expected: &FileKey,
) -> Result<[u8; 32], HashFailure> {
    let mut context = Context::new(&SHA256);
    let buffer_len = usize::try_from(expected.size)
        .unwrap_or(usize::MAX)
        .clamp(1, READ_BUFFER_BYTES);
    let mut buffer = vec![0u8; buffer_len];
    let mut offset = 0u64;
    while offset < expected.size {
        let remaining = expected.size - offset;
        let want = usize::try_from(remaining).map_or(buffer.len(), |r| r.min(buffer.len()));
        let Some(chunk) = buffer.get_mut(..want) else {
            return Err(HashFailure::Lost("read buffer shorter than planned".into()));
        };
        // Positioned reads: the result does not depend on the fd's file offset.
        match file.read_at(chunk, offset) {
            // The file is shorter than fstat said: it was truncated under us.
            Ok(0) => return Err(HashFailure::Changed),
            Ok(read) => {
                let Some(bytes) = chunk.get(..read) else {
                    return Err(HashFailure::Lost(
                        "read() claimed more bytes than asked".into(),
                    ));
                };
                context.update(bytes);
                offset += read as u64;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(HashFailure::Read(Arc::new(error))),
        }
    }
    // A byte past the end means the file grew; its new tail was not hashed.
    if has_byte_at(file, expected.size)? {
        return Err(HashFailure::Changed);
    }
    // Size, mtime or ctime moved during the read: the bytes may mix two versions.
    let after = file
        .metadata()
        .map_err(|error| HashFailure::Stat(Arc::new(error)))?;
    if FileKey::from_metadata(&after) != *expected {
        return Err(HashFailure::Changed);
    }
    let digest = context.finish();
    let mut sha256 = [0u8; 32];
    if digest.as_ref().len() != sha256.len() {
        return Err(HashFailure::Lost(
            "SHA-256 gave a digest that is not 32 bytes".into(),
        ));
    }
    sha256.copy_from_slice(digest.as_ref());
    Ok(sha256)
}

fn has_byte_at(file: &File, offset: u64) -> Result<bool, HashFailure> {
    let mut probe = [0u8; 1];
    loop {
        match file.read_at(&mut probe, offset) {
            Ok(read) => return Ok(read > 0),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(HashFailure::Read(Arc::new(error))),
        }
    }
}

#[cfg(test)]
#[path = "hash_test.rs"]
mod tests;
