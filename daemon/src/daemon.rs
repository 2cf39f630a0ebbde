//! Assembling and running the daemon: TPM, attestors, signer, the API socket.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use attestd_attestors::binary::{BinaryDigestCache, BinaryDigestConfig};
use attestd_attestors::cgroup::CgroupAttestor;
use attestd_attestors::host::HostInfo;
use attestd_attestors::procfs::ProcFs;
use attestd_attestors::selector::Attestor;
use attestd_attestors::tpm::{EkAlgorithm, Tpm, TpmConfig, TpmError};
use attestd_attestors::unix::UnixAttestor;
use attestd_proto::v1::attestation_server::AttestationServer;
use attestd_verifier::tpm2::{HashAlg, TpmPublic};
use tokio_stream::wrappers::ReceiverStream;
use tonic_health::ServingStatus;
use tracing::{info, warn};

use crate::api::service::{AttestationService, EvidenceMaker};
use crate::api::socket::{self, SocketError};
use crate::api::spiffe::WorkloadApiService;
use crate::config::Config;
use crate::fresh::FreshQuoter;
use crate::identity::{Identities, IssuerHealth};
use crate::node::{keep_attested, Backoff, IssuerClient, LogPaths, NodeAttester, NodeState};
use crate::signer::{EvidenceSigner, SignerError};
use crate::workload::WorkloadAttestor;
use attestd_proto::spiffe::spiffe_workload_api_server::SpiffeWorkloadApiServer;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("TPM: {0}")]
    Tpm(#[from] TpmError),
    #[error("the EK public key cannot be read: {0}")]
    Ek(String),
    #[error("host information: {0}")]
    Host(String),
    #[error(transparent)]
    Signer(#[from] SignerError),
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("gRPC server: {0}")]
    Server(#[from] tonic::transport::Error),
    #[error("issuer: {0}")]
    Issuer(String),
    #[error("configuration: {0}")]
    Config(String),
}

/// The pieces of a daemon; tests add attestors before `serve`.
pub struct Daemon {
    config: Config,
    extra_attestors: Vec<Arc<dyn Attestor>>,
}

impl Daemon {
    pub fn new(config: Config) -> Self {
        Daemon {
            config,
            extra_attestors: Vec::new(),
        }
    }

    /// Adds an attestor after the built-in ones (tests use this to hold a request
    /// at a known point).
    pub fn with_attestor(mut self, attestor: Arc<dyn Attestor>) -> Self {
        self.extra_attestors.push(attestor);
        self
    }

    /// Binds and serves until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RunError> {
        self.bind().await?.serve(shutdown).await
    }

    /// Opens the TPM, builds the attestors and the session key, and binds the socket.
    /// When this returns, clients can connect (they are served once `serve` runs).
    pub async fn bind(self) -> Result<BoundDaemon, RunError> {
        let config = self.config;
        raise_fd_limit(config.api.max_connections);
        let procfs = ProcFs::at(&config.attestors.proc_root);
        let (tpm, ueid) = if config.tpm.enabled {
            let (tpm, ueid) = open_tpm_ueid(&config).await?;
            (Some(tpm), Some(ueid))
        } else {
            warn!("TPM disabled: evidence carries no ueid and is not hardware-rooted");
            (None, None)
        };
        let host = HostInfo::collect().map_err(|e| RunError::Host(e.to_string()))?;
        let binaries = Arc::new(BinaryDigestCache::with_racy_window(
            BinaryDigestConfig {
                proc_root: config.attestors.proc_root.clone(),
                max_entries: config.binary.max_entries,
                max_file_bytes: config.binary.max_file_bytes,
                max_concurrent_hashes: config.binary.max_concurrent_hashes,
            },
            std::time::Duration::from_millis(config.binary.racy_window_ms),
        ));
        let mut attestors: Vec<Arc<dyn Attestor>> = vec![
            Arc::new(UnixAttestor::new(procfs.clone())),
            Arc::new(CgroupAttestor::new(procfs.clone())),
        ];
        attestors.extend(self.extra_attestors);
        let workload = Arc::new(WorkloadAttestor::new(
            attestors,
            binaries.clone(),
            procfs.clone(),
            host,
            config.attestors.deadline(),
        ));
        let signer = Arc::new(EvidenceSigner::generate()?);
        let fresh = match &tpm {
            Some((tpm, _)) => Some(Arc::new(FreshQuoter::spawn(
                tpm.clone(),
                config
                    .tpm
                    .fresh_pcrs
                    .parse()
                    .map_err(|e: String| RunError::Config(format!("tpm.fresh_pcrs: {e}")))?,
                config.tpm.fresh_max_batch,
            ))),
            None => None,
        };
        let node = match (&config.issuer.url, tpm) {
            (Some(url), Some((tpm, ek_algorithm))) => Some(node_attestation(
                &config,
                url,
                tpm,
                ek_algorithm,
                signer.public_key(),
            )?),
            _ => None,
        };
        let node_state = Arc::new(NodeState::default());
        let evidence = Arc::new(EvidenceMaker::new(
            signer,
            ueid,
            node_state.clone(),
            workload.host(),
            fresh,
        ));
        let identities = node.as_ref().map(|node| {
            Identities::new(
                node.issuer.identity(),
                evidence.clone(),
                config.issuer.svid_cache_entries,
            )
        });
        let service = AttestationService::new(
            workload.clone(),
            evidence.clone(),
            config.api.request_timeout(),
        )
        .with_identities(identities.clone());
        let workload_api = WorkloadApiService::new(workload.clone(), identities.clone());
        let listener = socket::bind(&config.api.socket, config.api.socket_mode)?;
        info!(
            socket = %config.api.socket.display(),
            mode = format!("{:o}", config.api.socket_mode),
            "listening"
        );
        Ok(BoundDaemon {
            config,
            procfs,
            listener,
            service,
            binaries,
            node,
            node_state,
            identities,
            workload_api,
        })
    }
}

/// A daemon whose socket exists; `serve` starts answering.
pub struct BoundDaemon {
    config: Config,
    procfs: ProcFs,
    listener: tokio::net::UnixListener,
    service: AttestationService,
    binaries: Arc<BinaryDigestCache>,
    node: Option<NodeAttester>,
    node_state: Arc<NodeState>,
    identities: Option<Arc<Identities>>,
    workload_api: WorkloadApiService,
}

fn node_attestation(
    config: &Config,
    url: &str,
    tpm: Tpm,
    ek_algorithm: EkAlgorithm,
    session_public_key: &[u8],
) -> Result<NodeAttester, RunError> {
    let Some(bundle_path) = &config.issuer.ca_bundle else {
        return Err(RunError::Issuer(
            "issuer.ca_bundle is required with issuer.url".into(),
        ));
    };
    let bundle = std::fs::read(bundle_path)
        .map_err(|e| RunError::Issuer(format!("{}: {e}", bundle_path.display())))?;
    let issuer = IssuerClient::new(url, &bundle, config.issuer.server_name.as_deref())
        .map_err(|e| RunError::Issuer(e.to_string()))?;
    Ok(NodeAttester {
        tpm,
        ek_algorithm,
        issuer,
        session_public_key: session_public_key.to_vec(),
        logs: LogPaths {
            boot: config.issuer.boot_event_log.clone(),
            ima: config.issuer.ima_log.clone(),
        },
        backoff: Backoff {
            initial: std::time::Duration::from_millis(config.issuer.retry_initial_ms),
            max: std::time::Duration::from_millis(config.issuer.retry_max_ms),
        },
        timeout: std::time::Duration::from_millis(config.issuer.timeout_ms),
    })
}

impl BoundDaemon {
    /// The workload SVID cache (None without an issuer), for its statistics.
    pub fn identities(&self) -> Option<Arc<Identities>> {
        self.identities.clone()
    }

    /// The node's standing with the issuer (its node SVID, or the last error).
    pub fn node_state(&self) -> Arc<NodeState> {
        self.node_state.clone()
    }

    /// The executable digest cache, for statistics.
    pub fn binaries(&self) -> Arc<BinaryDigestCache> {
        self.binaries.clone()
    }

    /// Serves until `shutdown` completes, then removes the socket.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RunError> {
        let BoundDaemon {
            config,
            procfs,
            listener,
            service,
            node,
            node_state,
            identities,
            workload_api,
            ..
        } = self;
        let (health, health_service) = tonic_health::server::health_reporter();
        // Serving means: workloads are answered, and (when an issuer is
        // configured) the node holds an unexpired node SVID.
        let node_task = match node {
            Some(node) => {
                health
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
                let state = node_state.clone();
                let reporter = health.clone();
                let watcher = tokio::spawn(async move {
                    let mut outcomes = state.outcomes();
                    loop {
                        let svid = state.current_svid();
                        let status = if svid.is_some() {
                            ServingStatus::Serving
                        } else {
                            ServingStatus::NotServing
                        };
                        reporter.set_service_status("", status).await;
                        // Look again at the next outcome, or when this SVID expires.
                        let expiry = svid.map(|svid| {
                            let left = svid.expires_at.saturating_sub(crate::node::unix_now());
                            std::time::Duration::from_secs(left.max(0) as u64 + 1)
                        });
                        tokio::select! {
                            changed = outcomes.changed() => if changed.is_err() { break },
                            () = async {
                                match expiry {
                                    Some(left) => tokio::time::sleep(left).await,
                                    None => std::future::pending().await,
                                }
                            } => {}
                        }
                    }
                });
                let runner = tokio::spawn(keep_attested(node, node_state.clone()));
                // The issuer's reachability for workload identities, as the
                // health service ISSUER_HEALTH_SERVICE: SVIDs are served from
                // the cache while it is NOT_SERVING.
                let follower = identities.clone().map(|identities| {
                    let reporter = health.clone();
                    let mut issuer_health = identities.health();
                    tokio::spawn(async move {
                        let follow = identities.follow_issuer(node_state.outcomes());
                        let report = async {
                            loop {
                                let status = match &*issuer_health.borrow_and_update() {
                                    IssuerHealth::Unreachable(_) => ServingStatus::NotServing,
                                    _ => ServingStatus::Serving,
                                };
                                reporter
                                    .set_service_status(ISSUER_HEALTH_SERVICE, status)
                                    .await;
                                if issuer_health.changed().await.is_err() {
                                    break;
                                }
                            }
                        };
                        tokio::join!(follow, report);
                    })
                });
                Some((runner, watcher, follower))
            }
            None => {
                health.set_service_status("", ServingStatus::Serving).await;
                None
            }
        };
        let socket_path: PathBuf = config.api.socket.clone();
        let incoming = socket::incoming(
            listener,
            procfs,
            config.api.max_connections,
            config.api.max_connections_per_uid,
        );
        let max_message = config.api.max_message_bytes;
        // Graceful shutdown waits for open requests, but a watch stream never
        // ends on its own: after SHUTDOWN_GRACE the rest are cut.
        let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            shutdown.await;
            let _ = stopping.send(());
        };
        let server = tonic::transport::Server::builder()
            .timeout(config.api.request_timeout())
            .concurrency_limit_per_connection(32)
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                config.api.max_concurrent_requests,
            ))
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
            .add_service(
                AttestationServer::new(service)
                    .max_decoding_message_size(max_message)
                    .max_encoding_message_size(max_message),
            )
            .add_service(
                SpiffeWorkloadApiServer::new(workload_api)
                    .max_decoding_message_size(max_message)
                    .max_encoding_message_size(max_message),
            )
            .add_service(health_service)
            .serve_with_incoming_shutdown(ReceiverStream::new(incoming), shutdown);
        let result = tokio::select! {
            result = server => result,
            () = async {
                if stopped.await.is_ok() {
                    tokio::time::sleep(SHUTDOWN_GRACE).await;
                } else {
                    std::future::pending::<()>().await;
                }
            } => {
                warn!(grace_s = SHUTDOWN_GRACE.as_secs(), "connections still open after the grace period; closing them");
                Ok(())
            }
        };
        if let Some((runner, watcher, follower)) = node_task {
            runner.abort();
            watcher.abort();
            if let Some(follower) = follower {
                follower.abort();
            }
        }
        let _ = std::fs::remove_file(&socket_path);
        info!("stopped");
        Ok(result?)
    }
}

/// Opens the TPM (creating or reloading the AK) and derives the UEID from the EK.
async fn open_tpm_ueid(config: &Config) -> Result<((Tpm, EkAlgorithm), Vec<u8>), RunError> {
    let tpm_config = TpmConfig {
        tcti: config.tpm.tcti.parse().map_err(TpmError::from)?,
        state_dir: config.tpm.state_dir.clone(),
        ek_algorithm: config
            .tpm
            .ek_algorithm
            .parse()
            .map_err(|e: String| RunError::Ek(e))?,
        ak_algorithm: config
            .tpm
            .ak_algorithm
            .parse()
            .map_err(|e: String| RunError::Ek(e))?,
        ..TpmConfig::default()
    };
    let ek_algorithm = tpm_config.ek_algorithm;
    let tpm = Tpm::open(tpm_config).await?;
    let ek = tpm.ek(ek_algorithm).await?;
    let spki = TpmPublic::parse(&ek.public)
        .ok()
        .and_then(|public| public.spki_der())
        .ok_or_else(|| RunError::Ek("unsupported EK public area".into()))?;
    let mut ueid = vec![0x01];
    ueid.extend(HashAlg::Sha256.digest(&spki));
    info!(ek = %hex::encode(&ueid[1..]), ak = %hex::encode(&tpm.ak().name), "TPM ready");
    Ok(((tpm, ek_algorithm), ueid))
}

/// The gRPC health service name that reports whether the issuer answers.
/// NOT_SERVING: workloads get cached SVIDs until they expire.
pub const ISSUER_HEALTH_SERVICE: &str = "attestd.issuer";

/// How long shutdown waits for open requests and streams before cutting them.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Descriptors one connection holds: the socket, the caller's pidfd, and its
/// `/proc/<pid>` directory, `status` and `cgroup` files.
const FDS_PER_CONNECTION: u64 = 5;
/// Descriptors for everything else: the listener, the TPM, logs, hashing.
const FDS_SPARE: u64 = 256;

/// Raises the soft limit on open files to what `max_connections` needs, within
/// the hard limit. Most systems start services with a soft limit of 1024, which
/// would cap the daemon at about 200 connections. Past the limit nothing breaks:
/// new connections are refused, and a connection that cannot hold its caller's
/// files open is served without reusing answers.
fn raise_fd_limit(max_connections: usize) {
    let wanted = (max_connections as u64)
        .saturating_mul(FDS_PER_CONNECTION)
        .saturating_add(FDS_SPARE);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 || limit.rlim_cur >= wanted
    {
        return;
    }
    let raised = libc::rlimit {
        rlim_cur: wanted.min(limit.rlim_max),
        rlim_max: limit.rlim_max,
    };
    // SAFETY: valid in-pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 || raised.rlim_cur < wanted {
        warn!(
            soft = raised.rlim_cur,
            hard = limit.rlim_max,
            wanted,
            "the open-file limit is below what api.max_connections needs; raise LimitNOFILE"
        );
    }
}
