//! Shared fixtures for attestd's end-to-end tests: real swtpm processes, real tools, our code.

pub mod swtpm;

pub use swtpm::{Swtpm, SwtpmOptions, TestCa};
