//! The local API on the daemon's Unix socket: socket handling, caller
//! identification, and the gRPC services.

pub mod authority;
pub mod client;
pub mod peer;
pub mod service;
pub mod socket;
pub mod spiffe;
