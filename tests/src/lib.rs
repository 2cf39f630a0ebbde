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
