//! Unit tests for `hash.rs`: the digest is SHA-256 of exactly the file, and a
//! file that changes under the read is refused.

use super::{sha256_of_open_file, READ_BUFFER_BYTES};
use crate::binary::error::HashFailure;
use crate::binary::key::FileKey;
use std::fs::File;
use std::io::Write;

fn reference_sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn file_with(bytes: &[u8]) -> (tempfile::TempDir, File, FileKey) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exe");
    std::fs::write(&path, bytes).unwrap();
    let file = File::open(&path).unwrap();
    let key = FileKey::from_metadata(&file.metadata().unwrap());
    (dir, file, key)
}

#[test]
fn empty_file_hashes_to_sha256_of_nothing() {
    let (_dir, file, key) = file_with(b"");
    assert_eq!(
        sha256_of_open_file(&file, &key).unwrap(),
        reference_sha256(b"")
    );
}

#[test]
fn file_spanning_several_buffers_hashes_like_one_shot_sha256() {
    // Not a multiple of the buffer: the last read is short.
    let bytes: Vec<u8> = (0..(3 * READ_BUFFER_BYTES + 12345))
        .map(|i| (i % 251) as u8)
        .collect();
    let (_dir, file, key) = file_with(&bytes);
    assert_eq!(
        sha256_of_open_file(&file, &key).unwrap(),
        reference_sha256(&bytes)
    );
}

#[test]
fn file_that_grew_after_fstat_is_refused() {
    let (dir, file, key) = file_with(b"original");
    let mut writer = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("exe"))
        .unwrap();
    writer.write_all(b" and more").unwrap();
    assert!(matches!(
        sha256_of_open_file(&file, &key),
        Err(HashFailure::Changed)
    ));
}

#[test]
fn file_truncated_after_fstat_is_refused() {
    let (dir, file, key) = file_with(b"original contents");
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("exe"))
        .unwrap()
        .set_len(3)
        .unwrap();
    assert!(matches!(
        sha256_of_open_file(&file, &key),
        Err(HashFailure::Changed)
    ));
}

#[test]
fn key_that_no_longer_matches_is_refused() {
    // Same bytes, but the key we were given describes another version (a ctime the
    // file does not have): the post-read fstat must notice.
    let (_dir, file, mut key) = file_with(b"same bytes");
    key.ctime.nanos = (key.ctime.nanos + 1) % 1_000_000_000;
    assert!(matches!(
        sha256_of_open_file(&file, &key),
        Err(HashFailure::Changed)
    ));
}
