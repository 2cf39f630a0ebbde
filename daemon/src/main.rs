//! attestd: turns a host's TPM 2.0 into identity for the host and its workloads.
//! `main` only parses arguments and maps failures to exit codes; the work lives in
//! the library crates and the command modules.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_logging(&cli.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("attestd: cannot start the async runtime: {error}");
            return ExitCode::from(71); // EX_OSERR
        }
    };
    match runtime.block_on(commands::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("attestd: {}", failure.message);
            ExitCode::from(failure.exit_code)
        }
    }
}
