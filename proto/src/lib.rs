//! Every byte that crosses an attestd process boundary: the gRPC API (`v1`) and the
//! CBOR/COSE evidence format (`evidence`).

pub mod evidence;

/// Generated from `proto/attestd/v1/attestation.proto` (the workload API) and
/// `proto/attestd/v1/node.proto` (node attestation with the issuer).
#[cfg(feature = "grpc")]
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("attestd.v1");
}
