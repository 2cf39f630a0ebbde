//! `attestd run` and `attestd check-config`.

use attestd::config::{self, Config, ConfigSources};
use attestd::daemon::Daemon;
use sd_notify::NotifyState;
use tracing::{error, info, warn};

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
    let mut config = load(&args)?;
    let mut signals = Signals::install()?;
    let mut last_good = config.clone();
    loop {
        let bound = match Daemon::new(config.clone()).bind().await {
            Ok(bound) => bound,
            // A reloaded configuration that validated but cannot start (the new
            // socket directory is missing, say): go back to the one that ran.
            Err(error) if config != last_good => {
                error!(%error, "the reloaded configuration cannot start; going back to the previous one");
                config = last_good.clone();
                continue;
            }
            Err(error) => return Err(run_failure(error)),
        };
        last_good = config.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut serving = tokio::spawn(bound.serve(async {
            let _ = stopped.await;
        }));
        notify(&[
            NotifyState::Ready,
            NotifyState::Status(&format!("serving on {}", config.api.socket.display())),
        ]);
        let reload = loop {
            tokio::select! {
                result = &mut serving => {
                    // The server ended without being asked to.
                    notify(&[NotifyState::Stopping]);
                    return match result {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(error)) => Err(run_failure(error)),
                        Err(panic) => Err(run_failure(panic)),
                    };
                }
                signal = signals.next() => match signal {
                    Signal::Stop(name) => {
                        info!("{name}: shutting down");
                        notify(&[NotifyState::Stopping]);
                        let _ = stop.send(());
                        return match serving.await {
                            Ok(Ok(())) => Ok(()),
                            Ok(Err(error)) => Err(run_failure(error)),
                            Err(panic) => Err(run_failure(panic)),
                        };
                    }
                    Signal::Reload => {
                        let mut states = vec![NotifyState::Reloading];
                        // systemd >= 253 (Type=notify-reload) needs the time with RELOADING=1.
                        if let Ok(now) = NotifyState::monotonic_usec_now() {
                            states.push(now);
                        }
                        notify(&states);
                        match load(&args) {
                            Ok(new) => break new,
                            Err(failure) => {
                                // Keep serving with what runs; say why in the log
                                // and in `systemctl status`.
                                let problems = failure.message.replace('\n', "; ");
                                error!("SIGHUP: the configuration was not reloaded: {problems}");
                                notify(&[
                                    NotifyState::Ready,
                                    NotifyState::Status(&format!(
                                        "serving on {}; the last reload failed: {problems}",
                                        config.api.socket.display()
                                    )),
                                ]);
                            }
                        }
                    }
                }
            }
        };
        info!("SIGHUP: configuration valid; restarting the service with it");
        let _ = stop.send(());
        match serving.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(run_failure(error)),
            Err(panic) => return Err(run_failure(panic)),
        }
        config = reload;
    }
}

fn run_failure(error: impl std::fmt::Display) -> Failure {
    Failure {
        message: error.to_string(),
        exit_code: 69,
    }
}

/// Tells the service manager (systemd with Type=notify) about a state change.
/// Does nothing when NOTIFY_SOCKET is unset; a failure to tell it is logged, not
/// fatal: the daemon serves either way.
fn notify(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(false, states) {
        warn!(%error, "cannot notify the service manager");
    }
}

enum Signal {
    Stop(&'static str),
    Reload,
}

/// SIGTERM and SIGINT stop the daemon; SIGHUP reloads its configuration.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, Failure> {
        use tokio::signal::unix::{signal, SignalKind};
        let install = |kind: SignalKind| {
            signal(kind).map_err(|e| Failure {
                message: format!("cannot install a signal handler: {e}"),
                exit_code: 71,
            })
        };
        Ok(Signals {
            terminate: install(SignalKind::terminate())?,
            interrupt: install(SignalKind::interrupt())?,
            hangup: install(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.terminate.recv() => Signal::Stop("SIGTERM"),
            _ = self.interrupt.recv() => Signal::Stop("SIGINT"),
            _ = self.hangup.recv() => Signal::Reload,
        }
    }
}
