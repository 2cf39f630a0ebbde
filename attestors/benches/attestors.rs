//! What the per-request attestors cost, on this very process: the unix and cgroup
//! attestors, and the procfs reads underneath them. These run on every Describe
//! and Attest, so they bound the daemon's throughput (see docs/BENCHMARKS.md).

use attestd_attestors::cgroup::CgroupAttestor;
use attestd_attestors::procfs::ProcFs;
use attestd_attestors::selector::Attestor;
use attestd_attestors::unix::UnixAttestor;
use criterion::{criterion_group, criterion_main, Criterion};

fn attestors(c: &mut Criterion) {
    let pid = std::process::id() as i32;
    let procfs = ProcFs::new();
    let unix = UnixAttestor::new(procfs.clone());
    let cgroup = CgroupAttestor::new(procfs.clone());
    c.bench_function("unix attestor (status, exe link, cached names)", |b| {
        b.iter(|| unix.attest(pid))
    });
    c.bench_function("cgroup attestor", |b| b.iter(|| cgroup.attest(pid)));
    c.bench_function("procfs status read", |b| b.iter(|| procfs.status(pid)));
    c.bench_function("procfs cgroup read", |b| b.iter(|| procfs.cgroup(pid)));
    c.bench_function("procfs exe readlink", |b| b.iter(|| procfs.exe_path(pid)));
}

criterion_group!(benches, attestors);
criterion_main!(benches);
