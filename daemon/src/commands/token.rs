//! `attestd token`: a JWT-SVID for the calling process, on stdout, for scripts
//! and legacy jobs that would otherwise keep a static cloud key.

use attestd::api::client;
use attestd_proto::spiffe::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use attestd_proto::spiffe::JwtsvidRequest;

use super::Failure;
use crate::cli::TokenArgs;

pub async fn token(args: TokenArgs) -> Result<(), Failure> {
    let socket = &args.socket.socket;
    let channel = client::connect(socket).await.map_err(|e| {
        Failure::daemon(format!("cannot reach attestd at {}: {e}", socket.display()))
    })?;
    let mut request = tonic::Request::new(JwtsvidRequest {
        audience: args.audiences.clone(),
        spiffe_id: args.spiffe_id.clone().unwrap_or_default(),
    });
    // The SPIFFE Workload API's required header (it keeps browsers out).
    request.metadata_mut().insert(
        "workload.spiffe.io",
        tonic::metadata::MetadataValue::from_static("true"),
    );
    let response = SpiffeWorkloadApiClient::new(channel)
        .fetch_jwtsvid(request)
        .await
        .map_err(|status| Failure::daemon(format!("attestd refused: {}", status.message())))?
        .into_inner();
    let svid = response
        .svids
        .first()
        .ok_or_else(|| Failure::daemon("attestd returned no JWT-SVID"))?;
    // Only the token on stdout, so that $(attestd token …) is the token; which
    // identity it carries goes to stderr.
    eprintln!("attestd: JWT-SVID for {}", svid.spiffe_id);
    println!("{}", svid.svid);
    Ok(())
}
