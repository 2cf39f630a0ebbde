//! Shared fixtures for attestd's end-to-end tests: real swtpm processes, real tools, our code.

pub mod swtpm;

pub use swtpm::{Swtpm, SwtpmOptions, TestCa};

use std::path::{Path, PathBuf};

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the repository root")
        .to_path_buf()
}

/// The Python of the test venv, where the independent verifiers live.
pub fn venv_python() -> PathBuf {
    let python = repo_root().join("target/venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/ensure-deps.sh (make test runs it first)",
        python.display()
    );
    python
}

/// `tpm2_checkquote` over the files `attestd quote` writes into `dir`
/// (`ak.pem`, `quote.msg`, `quote.sig`, `quote.pcrs`, SHA-256 bank), with
/// `qualifying_hex` as the expected qualifying data. Callers run it as they
/// need (with a deadline, or not).
pub fn tpm2_checkquote(dir: &Path, qualifying_hex: &str) -> std::process::Command {
    let mut command = std::process::Command::new("tpm2_checkquote");
    command
        .arg("-u")
        .arg(dir.join("ak.pem"))
        .arg("-m")
        .arg(dir.join("quote.msg"))
        .arg("-s")
        .arg(dir.join("quote.sig"))
        .arg("-f")
        .arg(dir.join("quote.pcrs"))
        .arg("-g")
        .arg("sha256")
        .arg("-q")
        .arg(qualifying_hex);
    command
}
