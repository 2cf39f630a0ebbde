//! Benchmarks for `binary`: cold hashing throughput over a 64 MiB executable (what
//! a cache miss costs) and a warm cache hit (what every later request costs).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use attestd_attestors::binary::{BinaryDigestCache, BinaryDigestConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const FILE_BYTES: u64 = 64 << 20;

/// `sleep` padded to 64 MiB with pseudo-random bytes (not zeros: a sparse tail would
/// be read from the zero page and flatter the figure). Page-cache warm after the
/// first pass, as an executable that is running always is.
fn write_executable(path: &Path) {
    let sleep = ["/bin/sleep", "/usr/bin/sleep"]
        .iter()
        .find(|p| Path::new(p).is_file())
        .expect("coreutils sleep is installed");
    let mut bytes = std::fs::read(sleep).expect("read sleep");
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    while (bytes.len() as u64) < FILE_BYTES {
        // xorshift64: cheap, incompressible enough for a read benchmark.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(FILE_BYTES as usize);
    std::fs::write(path, &bytes).expect("write executable");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn binary_digest(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("big-sleep");
    write_executable(&exe);
    let process = Running(
        Command::new(&exe)
            .arg("1000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the executable"),
    );
    let pid = process.0.id() as i32;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("tokio runtime");

    let mut group = c.benchmark_group("binary_digest");
    group.throughput(Throughput::Bytes(FILE_BYTES));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(12));
    // max_entries 0: nothing is kept, so every call is a full hash.
    let uncached = BinaryDigestCache::new(BinaryDigestConfig {
        max_entries: 0,
        ..BinaryDigestConfig::default()
    });
    group.bench_function("cold_hash_64MiB", |b| {
        b.iter(|| {
            runtime
                .block_on(uncached.digest_of_pid(pid))
                .expect("digest")
        })
    });
    group.finish();

    let mut group = c.benchmark_group("binary_digest");
    // The file was written a moment ago; a zero racy window lets it be cached.
    let cached = BinaryDigestCache::with_racy_window(BinaryDigestConfig::default(), Duration::ZERO);
    runtime
        .block_on(cached.digest_of_pid(pid))
        .expect("prime the cache");
    group.bench_function("warm_hit", |b| {
        b.iter(|| runtime.block_on(cached.digest_of_pid(pid)).expect("digest"))
    });
    group.finish();
    let stats = cached.stats();
    assert_eq!(
        stats.hashes_started, 1,
        "the warm benchmark hashed again: {stats:?}"
    );
    drop(process);
}

criterion_group!(benches, binary_digest);
criterion_main!(benches);
