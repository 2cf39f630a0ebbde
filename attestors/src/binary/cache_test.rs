//! Unit tests for `cache.rs` that need a hash held in flight: a test hook pauses
//! the blocking read, so each test acts at a known point without sleeping.

#[path = "../../tests/support/workloads.rs"]
mod workloads;

use super::{BinaryDigestCache, HashPause, DEFAULT_RACY_WINDOW};
use crate::binary::{BinaryDigestConfig, BinaryError};
use std::io::Write;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use workloads::{cp, extend_sparse, sha256_of, sha256_of_file, sleep_binary, Workload};

/// A cache whose hashes of files of `min_size` bytes or more stop inside the read
/// and report on the first channel until released through the second. Dropping
/// the sender (a failed test unwinding) releases them too.
fn paused_cache(
    config: BinaryDigestConfig,
    racy_window: Duration,
    min_size: u64,
) -> (
    Arc<BinaryDigestCache>,
    UnboundedReceiver<()>,
    mpsc::Sender<()>,
) {
    let (reached, reached_rx) = unbounded_channel();
    let (release, release_rx) = mpsc::channel();
    let pause = Arc::new(HashPause {
        min_size,
        reached,
        release: Mutex::new(release_rx),
    });
    let cache = BinaryDigestCache::with_hash_pause(config, racy_window, pause);
    (Arc::new(cache), reached_rx, release)
}

/// A stand-in procfs in which every pid in `pids` executes `target`. The target is
/// never run, so tests may write it directly.
fn fake_proc(root: &Path, pids: &[i32], target: &Path) -> BinaryDigestConfig {
    for pid in pids {
        let dir = root.join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(target, dir.join("exe")).unwrap();
    }
    BinaryDigestConfig {
        proc_root: root.to_path_buf(),
        ..BinaryDigestConfig::default()
    }
}

/// Waits until `misses` callers have done their lookup. Polls a counter that only
/// moves forward; the wait ends on the event itself, not on elapsed time.
async fn until_looked_up(cache: &BinaryDigestCache, misses: u64) {
    while cache.stats().misses < misses {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_binary_in_flight_does_not_stall_another_caller() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge");
    cp(&sleep_binary(), &huge);
    extend_sparse(&huge, 1 << 30);
    let huge_process = Workload::start(&huge);
    let small_process = Workload::start(&sleep_binary());
    let (cache, mut reached, release) =
        paused_cache(BinaryDigestConfig::default(), Duration::ZERO, 1 << 29);

    let huge_request = tokio::spawn({
        let cache = Arc::clone(&cache);
        let pid = huge_process.pid();
        async move { cache.digest_of_pid(pid).await }
    });
    reached.recv().await.unwrap();

    let small = cache.digest_of_pid(small_process.pid()).await.unwrap();
    assert_eq!(small.sha256, sha256_of_file(&sleep_binary()));
    let during = cache.stats();
    assert_eq!(
        during.in_flight, 1,
        "the huge hash is still running: {during:?}"
    );
    assert!(!huge_request.is_finished());

    release.send(()).unwrap();
    let huge_digest = huge_request.await.unwrap().unwrap();
    assert_eq!(huge_digest.size, 1 << 30);
    assert_eq!(
        cache.digest_of_pid(huge_process.pid()).await.unwrap(),
        huge_digest
    );
    let after = cache.stats();
    assert_eq!(
        (after.hashes_started, after.hits, after.in_flight),
        (2, 1, 0),
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_that_gives_up_does_not_cancel_the_shared_hash() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("exe");
    std::fs::write(&target, b"an executable").unwrap();
    let config = fake_proc(&dir.path().join("proc"), &[7], &target);
    let (cache, mut reached, release) = paused_cache(config, Duration::ZERO, 0);

    let abandoned = tokio::spawn({
        let cache = Arc::clone(&cache);
        async move { cache.digest_of_pid(7).await }
    });
    reached.recv().await.unwrap();
    // What tokio::time::timeout does to the daemon's call when the deadline fires.
    abandoned.abort();
    assert!(abandoned.await.unwrap_err().is_cancelled());

    // Two releases: if a second hash were wrongly started, it fails the count
    // below instead of hanging the test.
    release.send(()).unwrap();
    release.send(()).unwrap();
    let digest = cache.digest_of_pid(7).await.unwrap();
    assert_eq!(digest.sha256, sha256_of(b"an executable"));
    assert_eq!(cache.digest_of_pid(7).await.unwrap(), digest);
    let stats = cache.stats();
    assert_eq!(
        (stats.hashes_started, stats.hashes_completed),
        (1, 1),
        "{stats:?}"
    );
    assert_eq!(stats.entries, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racy_hash_in_flight_is_not_shared_with_a_later_caller() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("exe");
    std::fs::write(&target, b"just written").unwrap();
    let config = fake_proc(&dir.path().join("proc"), &[7], &target);
    let (cache, mut reached, release) = paused_cache(config, DEFAULT_RACY_WINDOW, 0);

    let first = tokio::spawn({
        let cache = Arc::clone(&cache);
        async move { cache.digest_of_pid(7).await }
    });
    reached.recv().await.unwrap();
    let second = tokio::spawn({
        let cache = Arc::clone(&cache);
        async move { cache.digest_of_pid(7).await }
    });
    until_looked_up(&cache, 2).await;
    // The first read began within the racy window: a write in the same clock tick
    // could have changed the bytes without changing the key, so the second caller
    // must have started a hash of its own.
    assert_eq!(cache.stats().hashes_started, 2, "{:?}", cache.stats());

    release.send(()).unwrap();
    release.send(()).unwrap();
    let expected = sha256_of(b"just written");
    assert_eq!(first.await.unwrap().unwrap().sha256, expected);
    assert_eq!(second.await.unwrap().unwrap().sha256, expected);
    assert_eq!(cache.stats().entries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_hash_in_flight_is_shared_with_a_later_caller() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("exe");
    std::fs::write(&target, b"settled").unwrap();
    let config = fake_proc(&dir.path().join("proc"), &[7, 8], &target);
    let (cache, mut reached, release) = paused_cache(config, Duration::ZERO, 0);

    let first = tokio::spawn({
        let cache = Arc::clone(&cache);
        async move { cache.digest_of_pid(7).await }
    });
    reached.recv().await.unwrap();
    let second = tokio::spawn({
        let cache = Arc::clone(&cache);
        async move { cache.digest_of_pid(8).await }
    });
    until_looked_up(&cache, 2).await;
    assert_eq!(cache.stats().hashes_started, 1, "{:?}", cache.stats());

    release.send(()).unwrap();
    release.send(()).unwrap();
    let first = first.await.unwrap().unwrap();
    assert_eq!(second.await.unwrap().unwrap(), first);
    assert_eq!(first.sha256, sha256_of(b"settled"));
    let stats = cache.stats();
    assert_eq!((stats.hashes_started, stats.entries), (1, 1), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_changed_during_hash_fails_every_waiter_and_is_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("exe");
    std::fs::write(&target, b"version one").unwrap();
    let config = fake_proc(&dir.path().join("proc"), &[7, 8], &target);
    let (cache, mut reached, release) = paused_cache(config, Duration::ZERO, 0);

    let first = tokio::spawn({
        let cache = Arc::clone(&cache);
        async move { cache.digest_of_pid(7).await }
    });
    reached.recv().await.unwrap();
    let second = tokio::spawn({
        let cache = Arc::clone(&cache);
        async move { cache.digest_of_pid(8).await }
    });
    until_looked_up(&cache, 2).await;
    // Asserted before anything is released: were there a second hash, it would stay
    // paused and the awaits below would never end.
    assert_eq!(cache.stats().hashes_started, 1, "{:?}", cache.stats());
    std::fs::OpenOptions::new()
        .append(true)
        .open(&target)
        .unwrap()
        .write_all(b", then two")
        .unwrap();
    release.send(()).unwrap();

    // Each waiter hears of the failure under its own pid.
    let first = first.await.unwrap();
    assert!(
        matches!(first, Err(BinaryError::ChangedWhileHashing { pid: 7 })),
        "{first:?}"
    );
    let second = second.await.unwrap();
    assert!(
        matches!(second, Err(BinaryError::ChangedWhileHashing { pid: 8 })),
        "{second:?}"
    );
    let stats = cache.stats();
    assert_eq!((stats.hashes_completed, stats.entries), (0, 0), "{stats:?}");

    // The failure was not remembered: the next caller hashes the new version.
    release.send(()).unwrap();
    let retried = cache.digest_of_pid(7).await.unwrap();
    assert_eq!(retried.sha256, sha256_of(b"version one, then two"));
}

#[test]
fn cache_and_its_future_can_cross_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let cache = BinaryDigestCache::new(BinaryDigestConfig::default());
    send_sync(&cache);
    // The daemon spawns each request; the future must be Send.
    send(&cache.digest_of_pid(1));
}
