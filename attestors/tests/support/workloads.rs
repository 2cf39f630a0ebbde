//! Test workloads for the binary cache: copies of a real executable, rewritten in
//! place or replaced, run as child processes that are killed when dropped.
//!
//! Every write to a file that will later be executed happens in a child process
//! (`cp`, `truncate`). If this process held the write fd itself, another test
//! thread forking at that moment would inherit it, and our exec would fail with
//! ETXTBSY until that child exec'd: a flaky test for reasons unrelated to the code.
#![allow(dead_code)] // shared by the unit and integration tests; each uses a part

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The system's `sleep`, a small ELF that runs until killed.
pub fn sleep_binary() -> PathBuf {
    ["/bin/sleep", "/usr/bin/sleep"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .expect("coreutils sleep is installed")
}

fn run(command: &mut Command) {
    let status = command.status().expect("helper command starts");
    assert!(status.success(), "{command:?} failed: {status}");
}

/// `cp from to`. Onto an existing file, GNU cp truncates and rewrites it in place:
/// same inode.
pub fn cp(from: &Path, to: &Path) {
    run(Command::new("cp").arg(from).arg(to));
}

/// Grows `path` to `len` bytes with a hole: instant, and ELF ignores trailing bytes.
pub fn extend_sparse(path: &Path, len: u64) {
    run(Command::new("truncate")
        .arg("-s")
        .arg(len.to_string())
        .arg(path));
}

/// Writes `sleep` followed by `tail` to `path` (not executed from this path, so a
/// direct write is fine). The result still runs as `sleep`.
pub fn sleep_with_tail(path: &Path, tail: &[u8]) -> Vec<u8> {
    let mut bytes = std::fs::read(sleep_binary()).expect("read sleep");
    bytes.extend_from_slice(tail);
    std::fs::write(path, &bytes).expect("write variant");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod variant");
    bytes
}

pub fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat").ino()
}

pub fn sha256_of(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

pub fn sha256_of_file(path: &Path) -> [u8; 32] {
    sha256_of(&std::fs::read(path).expect("read file"))
}

/// A running `<exe> 1000`, killed and reaped on drop (also when a test fails).
pub struct Workload {
    child: Child,
}

impl Workload {
    /// `spawn` returns only after the exec succeeded, so `/proc/<pid>/exe` already
    /// names `exe` when this returns.
    pub fn start(exe: &Path) -> Workload {
        let child = Command::new(exe)
            .arg("1000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", exe.display()));
        Workload { child }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits in i32")
    }

    /// Kills and reaps the process, so its pid no longer exists.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.kill();
    }
}
