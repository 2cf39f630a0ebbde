//! Every byte that crosses an attestd process boundary: the gRPC API (`v1`) and the
//! CBOR/COSE evidence format (`evidence`).

pub mod evidence;

/// Generated from `proto/attestd/v1/attestation.proto` (the workload API),
/// `node.proto` (node attestation with the issuer) and `identity.proto`
/// (minting workload SVIDs at the issuer).
#[cfg(feature = "grpc")]
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("attestd.v1");
}

/// The standard SPIFFE Workload API (`proto/spiffe/workload.proto`), which has
/// no protobuf package: its service is `/SpiffeWorkloadAPI/...` on the wire.
#[cfg(feature = "grpc")]
pub mod spiffe {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("_");
}
