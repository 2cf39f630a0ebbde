//! The attestd daemon as a library: configuration, the local API, workload
//! attestation and evidence signing. `main.rs` only parses arguments.

pub mod api;
pub mod config;
pub mod daemon;
pub mod fresh;
pub mod identity;
pub mod node;
pub mod signer;
pub mod tpm2_files;
pub mod workload;
