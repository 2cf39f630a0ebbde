//! `attestd evidence` and `attestd describe`: clients of a running daemon, asking
//! about the calling process itself (for scripts and air-gapped hand-offs).

use std::io::Write;

use attestd::api::client;
use attestd_proto::v1::attestation_client::AttestationClient;
use attestd_proto::v1::{AttestRequest, DescribeRequest, StatsRequest};

use super::Failure;
use crate::cli::{EvidenceArgs, SocketArgs};

async fn connect(
    args: &SocketArgs,
) -> Result<AttestationClient<tonic::transport::Channel>, Failure> {
    let channel = client::connect(&args.socket).await.map_err(|e| {
        Failure::daemon(format!(
            "cannot reach attestd at {}: {e}",
            args.socket.display()
        ))
    })?;
    Ok(AttestationClient::new(channel))
}

pub async fn evidence(args: EvidenceArgs) -> Result<(), Failure> {
    let mut client = connect(&args.socket).await?;
    let response = client
        .attest(AttestRequest {
            nonce: args.nonce.0.clone(),
            audience: args.audience.clone(),
            hardware_fresh: args.hardware_fresh,
        })
        .await
        .map_err(|status| Failure::daemon(format!("attestd refused: {}", status.message())))?;
    let evidence = response.into_inner().evidence;
    if args.out.as_os_str() == "-" {
        std::io::stdout()
            .write_all(&evidence)
            .map_err(|e| Failure::output("stdout", e))?;
    } else {
        std::fs::write(&args.out, &evidence).map_err(|e| Failure::output(args.out.display(), e))?;
        eprintln!(
            "wrote {} bytes of evidence to {}",
            evidence.len(),
            args.out.display()
        );
    }
    Ok(())
}

pub async fn describe(args: SocketArgs) -> Result<(), Failure> {
    let mut client = connect(&args).await?;
    let response = client
        .describe(DescribeRequest {})
        .await
        .map_err(|status| Failure::daemon(format!("attestd refused: {}", status.message())))?
        .into_inner();
    for selector in &response.selectors {
        println!("{selector}");
    }
    for attestor in response.attestors.iter().filter(|a| !a.ok) {
        eprintln!("attestor {} failed: {}", attestor.name, attestor.error);
    }
    Ok(())
}

pub async fn healthcheck(args: SocketArgs) -> Result<(), Failure> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let channel = client::connect(&args.socket).await.map_err(|e| {
        Failure::daemon(format!(
            "cannot reach attestd at {}: {e}",
            args.socket.display()
        ))
    })?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|status| Failure::daemon(format!("attestd refused: {}", status.message())))?
        .into_inner()
        .status();
    println!("{}", status.as_str_name());
    if status == ServingStatus::Serving {
        Ok(())
    } else {
        Err(Failure {
            message: "not serving: the node has no valid node SVID (see the daemon's log)".into(),
            exit_code: 1,
        })
    }
}

pub async fn stats(args: SocketArgs) -> Result<(), Failure> {
    let mut client = connect(&args).await?;
    let response = client
        .stats(StatsRequest {})
        .await
        .map_err(|status| Failure::daemon(format!("attestd refused: {}", status.message())))?
        .into_inner();
    let mut values: Vec<_> = response.values.into_iter().collect();
    values.sort();
    for (name, value) in values {
        // Names come from the daemon; print only what a metric name may hold.
        if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            println!("attestd_{name} {value}");
        }
    }
    Ok(())
}
