//! Unit tests for `ak_store.rs`.
use super::*;

#[test]
fn new_file_is_private_and_never_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ak.bin");
    assert!(write_new_file(&path, b"first").unwrap());
    assert!(!write_new_file(&path, b"second").unwrap());
    assert_eq!(fs::read(&path).unwrap(), b"first");
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // No temporary files are left behind.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn corrupt_files_are_described() {
    let err = StoredAk::decode(b"garbage", AkAlgorithm::EccP256)
        .err()
        .unwrap();
    assert!(err.contains("bad magic"));
    let mut truncated = MAGIC.to_vec();
    truncated.extend_from_slice(&[0x01, 0x00, 0xaa]);
    let err = StoredAk::decode(&truncated, AkAlgorithm::EccP256)
        .err()
        .unwrap();
    assert!(err.contains("truncated"));
}
