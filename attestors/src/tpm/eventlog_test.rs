//! Unit tests for `eventlog.rs`.
use super::*;

#[test]
fn missing_log_is_none_and_oversized_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let paths = EventLogPaths {
        boot: dir.path().join("absent"),
        ima: dir.path().join("ima"),
        max_bytes: 4,
    };
    std::fs::write(&paths.ima, b"12345").unwrap();
    assert!(matches!(
        paths.read(),
        Err(TpmError::EventLogTooLarge { limit: 4, .. })
    ));
    std::fs::write(&paths.ima, b"1234").unwrap();
    let logs = paths.read().unwrap();
    assert_eq!(logs.boot, None);
    assert_eq!(logs.ima.as_deref(), Some(&b"1234"[..]));
}
