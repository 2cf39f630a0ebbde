//! attestd-issuer: the reference upstream issuer. It verifies a node's TPM
//! identity and state (EK trust, AK activation, a quote bound to a fresh nonce
//! and the node's session key, replayed boot and IMA logs), applies a node
//! policy, and mints a node SVID. Attested daemons then ask it for their
//! workloads' X.509- and JWT-SVIDs, which registration entries grant, and
//! publishes the JWT keys by OIDC discovery. All of it is stateless apart
//! from the config, CA, JWT key, EK trust and entries files, so replicas
//! serve one fleet alike.

pub mod ca;
pub mod challenge;
pub mod config;
pub mod ek_trust;
pub mod entries;
pub mod identity;
pub mod jwt;
pub mod logs;
pub mod node;
pub mod node_selectors;
pub mod offline;
pub mod oidc;
pub mod policy;
pub mod registry;
pub mod server;

pub use config::Config;
pub use server::{Issuer, ServeError};
