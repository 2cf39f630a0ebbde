//! The subcommands, and the one place that turns their errors into exit codes.

mod config;
mod ek;
mod evidence;
mod quote;
mod token;

use std::fmt::Display;

use attestd_attestors::tpm::{Tpm, TpmConfig, TpmError};

use crate::cli::{Command, EkCommand, TpmArgs};

/// A failed command: what to tell the operator and which sysexits code to return.
pub struct Failure {
    pub message: String,
    pub exit_code: u8,
}

impl Failure {
    /// The TPM or the environment failed (EX_UNAVAILABLE / EX_SOFTWARE-like: 69).
    pub fn tpm(error: TpmError) -> Self {
        Failure {
            message: error.to_string(),
            exit_code: 69,
        }
    }

    /// Writing output failed (EX_CANTCREAT).
    pub fn output(what: impl Display, error: impl Display) -> Self {
        Failure {
            message: format!("{what}: {error}"),
            exit_code: 73,
        }
    }

    /// The configuration is wrong (EX_USAGE: the operator can fix it).
    pub fn config(error: impl Display) -> Self {
        Failure {
            message: format!("invalid configuration:\n{error}"),
            exit_code: 64,
        }
    }

    /// The daemon could not be reached or refused (EX_UNAVAILABLE).
    pub fn daemon(error: impl Display) -> Self {
        Failure {
            message: error.to_string(),
            exit_code: 69,
        }
    }

    /// An input file could not be read or parsed (EX_NOINPUT).
    pub fn input(what: impl Display, error: impl Display) -> Self {
        Failure {
            message: format!("{what}: {error}"),
            exit_code: 66,
        }
    }

    /// The evidence did not verify (EX_DATAERR).
    pub fn verification(error: impl Display) -> Self {
        Failure {
            message: format!("verification failed: {error}"),
            exit_code: 65,
        }
    }
}

pub async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Run(args) => config::run(args).await,
        Command::CheckConfig(args) => config::check(args),
        Command::Evidence(args) => evidence::evidence(args).await,
        Command::Describe(args) => evidence::describe(args).await,
        Command::Healthcheck(args) => evidence::healthcheck(args).await,
        Command::Token(args) => token::token(args).await,
        Command::Stats(args) => evidence::stats(args).await,
        Command::Quote(args) => quote::run(args).await,
        Command::Ek(EkCommand::Show(args)) => ek::show(args).await,
    }
}

async fn open_tpm(args: &TpmArgs) -> Result<Tpm, Failure> {
    Tpm::open(TpmConfig {
        tcti: args.tcti.clone(),
        state_dir: args.state_dir.clone(),
        ek_algorithm: args.ek_algorithm,
        ak_algorithm: args.ak_algorithm,
        ..TpmConfig::default()
    })
    .await
    .map_err(Failure::tpm)
}

/// Creates `dir` and writes each (name, bytes) pair into it. Only public data goes
/// through here, so the files are world-readable.
fn write_files(dir: &std::path::Path, files: &[(&str, &[u8])]) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| Failure::output(dir.display(), e))?;
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| Failure::output(path.display(), e))?;
    }
    Ok(())
}
