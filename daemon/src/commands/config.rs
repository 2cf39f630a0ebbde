//! `attestd run` and `attestd check-config`.

use attestd::config::{self, Config, ConfigSources};
use attestd::daemon::Daemon;
use tracing::info;

use super::Failure;
use crate::cli::ConfigArgs;

fn load(args: &ConfigArgs) -> Result<Config, Failure> {
    config::load(&ConfigSources {
        file: args.config.clone(),
        dropin_dir: Some(args.config_dir.clone()),
        env: std::env::vars().collect(),
    })
    .map_err(Failure::config)
}

pub fn check(args: ConfigArgs) -> Result<(), Failure> {
    let config = load(&args)?;
    println!(
        "configuration is valid; the daemon would listen on {} (mode {:o})",
        config.api.socket.display(),
        config.api.socket_mode
    );
    Ok(())
}

pub async fn run(args: ConfigArgs) -> Result<(), Failure> {
    let config = load(&args)?;
    let shutdown = async {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = terminate.recv() => info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
        }
    };
    Daemon::new(config)
        .serve(shutdown)
        .await
        .map_err(|error| Failure {
            message: error.to_string(),
            exit_code: 69,
        })
}
