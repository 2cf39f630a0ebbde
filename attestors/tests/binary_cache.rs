//! The binary digest cache against real processes: one hash for many processes of
//! a binary, never a stale digest after a rewrite or a replacement, the racy rule,
//! size limits, vanished processes, and the memory bound.

#[path = "support/workloads.rs"]
mod workloads;

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use attestd_attestors::binary::{
    BinaryDigestCache, BinaryDigestConfig, BinaryError, CacheStats, DEFAULT_RACY_WINDOW,
};
use workloads::{
    cp, extend_sparse, inode, sha256_of, sha256_of_file, sleep_binary, sleep_with_tail, Workload,
};

/// For tests whose subject is not the racy rule: the files they execute were
/// written moments ago and would otherwise never be cached.
fn settled_cache(config: BinaryDigestConfig) -> BinaryDigestCache {
    BinaryDigestCache::with_racy_window(config, Duration::ZERO)
}

fn counts(stats: CacheStats) -> (u64, u64, u64, u64) {
    (
        stats.hashes_started,
        stats.hashes_completed,
        stats.hits,
        stats.misses,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_processes_of_one_binary_cause_one_hash() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("sleep");
    cp(&sleep_binary(), &exe);
    let workloads: Vec<Workload> = (0..50).map(|_| Workload::start(&exe)).collect();
    let cache = Arc::new(settled_cache(BinaryDigestConfig::default()));

    let mut requests = tokio::task::JoinSet::new();
    for workload in &workloads {
        let cache = Arc::clone(&cache);
        let pid = workload.pid();
        requests.spawn(async move { cache.digest_of_pid(pid).await });
    }
    let expected = sha256_of_file(&exe);
    let mut answered = 0;
    while let Some(answer) = requests.join_next().await {
        let digest = answer.unwrap().unwrap();
        assert_eq!(digest.sha256, expected);
        assert_eq!(digest.size, std::fs::metadata(&exe).unwrap().len());
        answered += 1;
    }
    assert_eq!(answered, 50);
    let stats = cache.stats();
    assert_eq!(stats.hashes_started, 1, "{stats:?}");
    assert_eq!(stats.hashes_completed, 1, "{stats:?}");
    assert_eq!(stats.hits + stats.misses, 50, "{stats:?}");
    assert_eq!((stats.entries, stats.in_flight), (1, 0), "{stats:?}");
}

#[tokio::test]
async fn rewrite_in_place_changes_the_digest_on_the_next_call() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("tool");
    cp(&sleep_binary(), &exe);
    let original_inode = inode(&exe);
    let cache = settled_cache(BinaryDigestConfig::default());

    let first = Workload::start(&exe);
    let before = cache.digest_of_pid(first.pid()).await.unwrap();
    assert_eq!(before.sha256, sha256_of_file(&sleep_binary()));
    // Asked again: a hit, so the old digest really is in the cache.
    assert_eq!(cache.digest_of_pid(first.pid()).await.unwrap(), before);
    assert_eq!(cache.stats().hits, 1);
    first.stop();

    // Same inode, new bytes (a tail the ELF loader ignores, so it still runs).
    let rewritten = sleep_with_tail(&dir.path().join("v2"), &[0xab; 4096]);
    cp(&dir.path().join("v2"), &exe);
    assert_eq!(inode(&exe), original_inode, "cp must rewrite in place");

    let second = Workload::start(&exe);
    let after = cache.digest_of_pid(second.pid()).await.unwrap();
    assert_ne!(after, before);
    assert_eq!(after.sha256, sha256_of(&rewritten));
    assert_eq!(after.size, rewritten.len() as u64);
    assert_eq!(cache.stats().hashes_started, 2);
}

#[tokio::test]
async fn same_size_rewrite_in_place_changes_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("tool");
    let version_one = sleep_with_tail(&dir.path().join("v1"), &[0xaa; 16]);
    let version_two = sleep_with_tail(&dir.path().join("v2"), &[0xbb; 16]);
    assert_eq!(version_one.len(), version_two.len());
    cp(&dir.path().join("v1"), &exe);
    // Distinct mtimes make the two versions differ in the key even if both writes
    // fell in one ctime tick (that case is the racy rule's, tested below).
    set_mtime(&exe, 978_307_200);
    let cache = settled_cache(BinaryDigestConfig::default());

    let first = Workload::start(&exe);
    let before = cache.digest_of_pid(first.pid()).await.unwrap();
    assert_eq!(before.sha256, sha256_of(&version_one));
    assert_eq!(cache.stats().entries, 1);
    first.stop();

    let original_inode = inode(&exe);
    cp(&dir.path().join("v2"), &exe);
    set_mtime(&exe, 1_009_843_200);
    assert_eq!(inode(&exe), original_inode);

    let second = Workload::start(&exe);
    let after = cache.digest_of_pid(second.pid()).await.unwrap();
    assert_eq!(after.sha256, sha256_of(&version_two));
    assert_eq!(after.size, before.size);
}

fn set_mtime(path: &std::path::Path, secs: u64) {
    // futimens on a read-only fd: no write fd is ever open on an executable.
    std::fs::File::open(path)
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

#[tokio::test]
async fn replaced_and_renamed_binary_gets_a_new_digest_while_the_old_process_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("tool");
    let version_one = sleep_with_tail(&dir.path().join("v1"), &[0x11; 16]);
    let version_two = sleep_with_tail(&dir.path().join("v2"), &[0x22; 16]);
    cp(&dir.path().join("v1"), &exe);
    let cache = settled_cache(BinaryDigestConfig::default());

    let old_process = Workload::start(&exe);
    let old_digest = cache.digest_of_pid(old_process.pid()).await.unwrap();
    assert_eq!(old_digest.sha256, sha256_of(&version_one));

    let staged = dir.path().join("tool.new");
    cp(&dir.path().join("v2"), &staged);
    std::fs::rename(&staged, &exe).unwrap();
    let new_process = Workload::start(&exe);

    let new_digest = cache.digest_of_pid(new_process.pid()).await.unwrap();
    assert_eq!(new_digest.sha256, sha256_of(&version_two));
    // The old process still runs the old, now unlinked, file: its digest is not the
    // one the path now leads to. (Its key is new: the unlink moved its ctime.)
    let again = cache.digest_of_pid(old_process.pid()).await.unwrap();
    assert_eq!(again.sha256, old_digest.sha256);
    assert_ne!(again.key, old_digest.key);
    // Three hashes, not two: the rename unlinked the old file, which moved its
    // ctime, so even the old process's file is a new key. Conservative, and right.
    let stats = cache.stats();
    assert_eq!(counts(stats), (3, 3, 0, 3), "{stats:?}");
}

#[tokio::test]
async fn deleted_binary_is_hashed_through_the_running_process() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("tool");
    cp(&sleep_binary(), &exe);
    let workload = Workload::start(&exe);
    std::fs::remove_file(&exe).unwrap();
    let digest = BinaryDigestCache::new(BinaryDigestConfig::default())
        .digest_of_pid(workload.pid())
        .await
        .unwrap();
    assert_eq!(digest.sha256, sha256_of_file(&sleep_binary()));
}

#[tokio::test]
async fn freshly_written_binary_is_hashed_but_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("fresh");
    cp(&sleep_binary(), &exe);
    let workload = Workload::start(&exe);
    let cache = BinaryDigestCache::new(BinaryDigestConfig::default());

    let first = cache.digest_of_pid(workload.pid()).await.unwrap();
    let second = cache.digest_of_pid(workload.pid()).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(first.sha256, sha256_of_file(&exe));
    let stats = cache.stats();
    // Written well within the racy window of both reads: hashed twice, kept never.
    assert_eq!(counts(stats), (2, 2, 0, 2), "{stats:?}");
    assert_eq!(stats.entries, 0);
}

#[tokio::test]
async fn long_unchanged_binary_is_cached() {
    let system_sleep = sleep_binary();
    let metadata = std::fs::metadata(&system_sleep).unwrap();
    let last_change =
        UNIX_EPOCH + Duration::from_secs(metadata.ctime().max(metadata.mtime()) as u64 + 1);
    assert!(
        last_change + DEFAULT_RACY_WINDOW < SystemTime::now(),
        "precondition: {} changed within the racy window",
        system_sleep.display()
    );
    let workload = Workload::start(&system_sleep);
    let cache = BinaryDigestCache::new(BinaryDigestConfig::default());

    let first = cache.digest_of_pid(workload.pid()).await.unwrap();
    let second = cache.digest_of_pid(workload.pid()).await.unwrap();
    assert_eq!(first, second);
    let stats = cache.stats();
    assert_eq!(counts(stats), (1, 1, 1, 1), "{stats:?}");
    assert_eq!(stats.entries, 1);
}

#[tokio::test]
async fn binary_over_the_size_limit_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("huge");
    cp(&sleep_binary(), &exe);
    extend_sparse(&exe, 1 << 30);
    let workload = Workload::start(&exe);
    let cache = BinaryDigestCache::new(BinaryDigestConfig {
        max_file_bytes: 512 << 20,
        ..BinaryDigestConfig::default()
    });

    let refused = cache.digest_of_pid(workload.pid()).await;
    assert!(
        matches!(refused, Err(BinaryError::TooLarge { size, limit }) if size == 1 << 30 && limit == 512 << 20),
        "{refused:?}"
    );
    assert_eq!(
        cache.stats(),
        CacheStats::default(),
        "nothing was hashed or looked up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_binary_is_hashed_once_and_then_served_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("huge");
    cp(&sleep_binary(), &exe);
    extend_sparse(&exe, 1 << 30);
    let workload = Workload::start(&exe);
    let cache = settled_cache(BinaryDigestConfig::default());

    let first = cache.digest_of_pid(workload.pid()).await.unwrap();
    assert_eq!(first.size, 1 << 30);
    assert_eq!(cache.digest_of_pid(workload.pid()).await.unwrap(), first);
    let stats = cache.stats();
    assert_eq!(counts(stats), (1, 1, 1, 1), "{stats:?}");
}

#[tokio::test]
async fn pid_that_does_not_exist_is_process_gone() {
    let cache = BinaryDigestCache::new(BinaryDigestConfig::default());
    // Above any pid_max Linux allows (2^22).
    let missing = cache.digest_of_pid(i32::MAX).await;
    assert!(
        matches!(missing, Err(BinaryError::ProcessGone { pid: i32::MAX })),
        "{missing:?}"
    );
    for pid in [0, -1] {
        let invalid = cache.digest_of_pid(pid).await;
        assert!(
            matches!(invalid, Err(BinaryError::ProcessGone { pid: p }) if p == pid),
            "{invalid:?}"
        );
    }
}

#[tokio::test]
async fn reaped_process_is_process_gone() {
    let workload = Workload::start(&sleep_binary());
    let pid = workload.pid();
    workload.stop();
    let cache = BinaryDigestCache::new(BinaryDigestConfig::default());
    let gone = cache.digest_of_pid(pid).await;
    assert!(
        matches!(gone, Err(BinaryError::ProcessGone { .. })),
        "{gone:?}"
    );
}

#[tokio::test]
async fn exe_that_is_not_a_regular_file_is_refused() {
    // A stand-in procfs whose <pid>/exe is a directory.
    let proc_root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(proc_root.path().join("42/exe")).unwrap();
    let cache = BinaryDigestCache::new(BinaryDigestConfig {
        proc_root: proc_root.path().to_path_buf(),
        ..BinaryDigestConfig::default()
    });
    let refused = cache.digest_of_pid(42).await;
    assert!(
        matches!(refused, Err(BinaryError::NotARegularFile)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn cache_never_holds_more_than_max_entries_and_forgets_the_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    // Four copies: four inodes, so four keys, though the bytes are the same.
    let workloads: Vec<Workload> = (0..4)
        .map(|i| {
            let exe = dir.path().join(format!("copy-{i}"));
            cp(&sleep_binary(), &exe);
            Workload::start(&exe)
        })
        .collect();
    let [a, b, c, d] = [0, 1, 2, 3].map(|i| workloads[i].pid());
    let cache = settled_cache(BinaryDigestConfig {
        max_entries: 2,
        ..BinaryDigestConfig::default()
    });

    for pid in [a, b, a, c, d] {
        cache.digest_of_pid(pid).await.unwrap();
        assert!(cache.stats().entries <= 2, "{:?}", cache.stats());
    }
    // a was used after b, so b went when c came in; then a went when d came in.
    let before = cache.stats();
    assert_eq!(counts(before), (4, 4, 1, 4), "{before:?}");
    cache.digest_of_pid(d).await.unwrap();
    cache.digest_of_pid(b).await.unwrap();
    let after = cache.stats();
    assert_eq!(
        (after.hits, after.hashes_started),
        (before.hits + 1, before.hashes_started + 1),
        "{after:?}"
    );
    assert_eq!(after.entries, 2);
}
