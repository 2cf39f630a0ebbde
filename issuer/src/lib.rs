//! attestd-issuer: the reference upstream issuer. It verifies a node's TPM
//! identity and state (EK trust, AK activation, a quote bound to a fresh nonce
//! and the node's session key, replayed boot and IMA logs), applies a node
//! policy, and mints a node SVID. All of it is stateless apart from the config,
//! CA and EK trust files, so replicas serve one fleet alike.

pub mod ca;
pub mod challenge;
pub mod config;
pub mod ek_trust;
mod logs;
pub mod node;
pub mod offline;
pub mod policy;
pub mod server;

pub use config::Config;
pub use server::{Issuer, ServeError};
