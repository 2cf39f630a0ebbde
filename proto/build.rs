//! Generates the gRPC code from `attestd/v1/*.proto` with the system protoc
//! (protobuf-compiler, installed by scripts/ensure-deps.sh).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=attestd");
    println!("cargo:rerun-if-changed=spiffe");
    if std::env::var_os("CARGO_FEATURE_GRPC").is_none() {
        return Ok(());
    }
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(
            &[
                "attestd/v1/attestation.proto",
                "attestd/v1/node.proto",
                "attestd/v1/identity.proto",
                "spiffe/workload.proto",
            ],
            &["."],
        )?;
    Ok(())
}
