//! Unit tests for `key.rs`: what the key notices and when a read is settled.

use super::{settled_before, FileKey, Timestamp};
use std::time::{Duration, UNIX_EPOCH};

const WINDOW: Duration = Duration::from_secs(2);

fn key_changed_at(secs: i64, nanos: i64) -> FileKey {
    let at = Timestamp { secs, nanos };
    FileKey {
        dev: 8,
        ino: 1234,
        size: 43888,
        mtime: at,
        ctime: at,
    }
}

#[test]
fn read_long_after_the_last_change_is_settled() {
    let key = key_changed_at(1_000, 0);
    assert!(settled_before(
        &key,
        UNIX_EPOCH + Duration::from_secs(1_003),
        WINDOW
    ));
}

#[test]
fn read_within_the_window_of_the_last_change_is_racy() {
    let key = key_changed_at(1_000, 0);
    assert!(!settled_before(
        &key,
        UNIX_EPOCH + Duration::from_millis(1_001_500),
        WINDOW
    ));
    // Exactly at the edge is still racy: the rule is strict.
    assert!(!settled_before(
        &key,
        UNIX_EPOCH + Duration::from_secs(1_002),
        WINDOW
    ));
}

#[test]
fn mtime_set_into_the_future_is_never_settled() {
    let mut key = key_changed_at(1_000, 0);
    key.mtime = Timestamp {
        secs: 5_000,
        nanos: 0,
    };
    assert!(!settled_before(
        &key,
        UNIX_EPOCH + Duration::from_secs(1_010),
        WINDOW
    ));
}

#[test]
fn ctime_later_than_mtime_decides() {
    // utimensat can set mtime far into the past; the write that did so moved ctime.
    let mut key = key_changed_at(1_000, 0);
    key.mtime = Timestamp { secs: 10, nanos: 0 };
    assert!(!settled_before(
        &key,
        UNIX_EPOCH + Duration::from_secs(1_001),
        WINDOW
    ));
}

#[test]
fn pre_epoch_timestamps_compare_correctly() {
    let key = key_changed_at(-10, 500_000_000);
    assert!(settled_before(&key, UNIX_EPOCH, WINDOW));
}

#[test]
fn zero_window_settles_anything_strictly_older() {
    let key = key_changed_at(1_000, 0);
    assert!(settled_before(
        &key,
        UNIX_EPOCH + Duration::from_nanos(1_000_000_000_001),
        Duration::ZERO
    ));
    assert!(!settled_before(
        &key,
        UNIX_EPOCH + Duration::from_secs(1_000),
        Duration::ZERO
    ));
}

#[test]
fn key_tells_apart_every_field() {
    let base = key_changed_at(1_000, 0);
    let variants = [
        FileKey { dev: 9, ..base },
        FileKey { ino: 1235, ..base },
        FileKey {
            size: 43889,
            ..base
        },
        FileKey {
            mtime: Timestamp {
                secs: 1_000,
                nanos: 1,
            },
            ..base
        },
        FileKey {
            ctime: Timestamp {
                secs: 1_000,
                nanos: 1,
            },
            ..base
        },
    ];
    for variant in variants {
        assert_ne!(variant, base);
    }
}

#[test]
fn key_comes_from_fstat_of_the_open_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, b"abc").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let before = FileKey::from_metadata(&file.metadata().unwrap());
    assert_eq!(before.size, 3);
    // A rename over the path makes a new inode; the open fd still describes the old one.
    let replacement = dir.path().join("g");
    std::fs::write(&replacement, b"abc").unwrap();
    std::fs::rename(&replacement, &path).unwrap();
    let reopened = FileKey::from_metadata(&std::fs::metadata(&path).unwrap());
    assert_ne!(reopened.ino, before.ino);
    assert_eq!(
        FileKey::from_metadata(&file.metadata().unwrap()).ino,
        before.ino
    );
}
