//! Running the issuer: load the CA, JWT key, EK trust and registration
//! entries, serve node attestation and workload identity over one TLS port,
//! reload EK trust and entries on SIGHUP, stop cleanly on SIGTERM/SIGINT.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use attestd_proto::v1::node_attestation_server::NodeAttestationServer;
use attestd_proto::v1::workload_identity_server::WorkloadIdentityServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tracing::{info, warn};

use crate::ca::{Ca, CaError};
use crate::config::Config;
use crate::ek_trust::{EkTrust, EkTrustError};
use crate::entries::EntriesError;
use crate::identity::{IdentityService, MAX_REQUEST_BYTES};
use crate::jwt::{JwtError, JwtSigner};
use crate::node::NodeService;
use crate::registry::{Registry, Reloaded};

/// Largest request: event logs and IMA logs can be several MiB.
const MAX_MESSAGE_BYTES: usize = 32 << 20;
/// The TLS server certificate is made at start-up and lives this long; a
/// replica running longer than this should be restarted (or the issuer
/// re-issues it on restart, since it is never written to disk).
const TLS_CERT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_CONCURRENT_REQUESTS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("CA: {0}")]
    Ca(#[from] CaError),
    #[error("EK trust: {0}")]
    EkTrust(#[from] EkTrustError),
    #[error("JWT signing key: {0}")]
    Jwt(#[from] JwtError),
    #[error("registration entries: {0}")]
    Entries(#[from] EntriesError),
    #[error("{0}")]
    Setup(String),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// An issuer whose CA is loaded and whose socket is bound.
pub struct Issuer {
    config: Config,
    ca: Arc<Ca>,
    jwt: Arc<JwtSigner>,
    ek_trust: Arc<RwLock<EkTrust>>,
    registry: Registry,
    listener: TcpListener,
}

impl Issuer {
    pub async fn bind(config: Config) -> Result<Issuer, ServeError> {
        let ca = Arc::new(Ca::load_or_generate(&config.ca, &config.trust_domain)?);
        let ek_trust = EkTrust::load(&config.ek)?;
        let (roots, intermediates, enrolled) = ek_trust.counts();
        info!(roots, intermediates, enrolled, "EK trust loaded");
        let jwt = Arc::new(JwtSigner::load_or_generate(&config.jwt_key_path())?);
        let registry = Registry::load(
            config.entries.as_deref(),
            &config.trust_domain,
            ca.cert_der(),
            jwt.jwks(),
        )?;
        let current = registry.current();
        info!(entries = current.entries.len(), revision = %current.revision, jwt_kid = %jwt.kid(), "registration entries loaded");
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Listen {
                    addr: config.listen,
                    source,
                })?;
        Ok(Issuer {
            config,
            ca,
            jwt,
            ek_trust: Arc::new(RwLock::new(ek_trust)),
            registry,
            listener,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The CA certificate (PEM): what daemons need to trust this issuer.
    pub fn bundle_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// Re-reads the EK roots and allowlist, and the registration entries. On
    /// error the old ones stay in force.
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            config: self.config.clone(),
            ek_trust: self.ek_trust.clone(),
            registry: self.registry.clone(),
        }
    }

    /// The revision of the entries and bundle in force (see WatchRevision).
    pub fn revision(&self) -> String {
        self.registry.current().revision.clone()
    }

    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let (cert_pem, key_pem) = self
            .ca
            .issue_tls_server(&self.config.server_names, TLS_CERT_LIFETIME)?;
        // The chain: our certificate, then the CA, so clients holding only the CA verify it.
        let chain = format!("{cert_pem}{}", self.ca.cert_pem());
        let tls = ServerTlsConfig::new().identity(Identity::from_pem(chain, key_pem.as_bytes()));
        let service = Arc::new(
            NodeService::new(self.config.clone(), self.ca.clone(), self.ek_trust.clone())
                .map_err(ServeError::Setup)?,
        );
        let identity = Arc::new(
            IdentityService::new(
                &self.config.trust_domain,
                self.ca.clone(),
                self.jwt.clone(),
                self.registry.clone(),
            )
            .map_err(ServeError::Setup)?,
        );
        // WatchRevision streams never end by themselves: end them, or a
        // graceful shutdown would wait for them forever.
        let shutdown = {
            let identity = identity.clone();
            async move {
                shutdown.await;
                identity.stop_watchers();
            }
        };
        let pruner = {
            let service = Arc::downgrade(&service);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    let Some(service) = service.upgrade() else {
                        break;
                    };
                    service.prune();
                }
            })
        };
        let reload = self.reload_handle();
        let sighup = tokio::spawn(async move {
            let Ok(mut hangups) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hangups.recv().await.is_some() {
                match reload.reload() {
                    Ok((roots, intermediates, enrolled)) => {
                        info!(roots, intermediates, enrolled, "SIGHUP: EK trust reloaded")
                    }
                    Err(error) => {
                        warn!(%error, "SIGHUP: EK trust not reloaded; keeping the old one")
                    }
                }
                match reload.reload_entries() {
                    Ok(Reloaded {
                        entries,
                        revision,
                        changed,
                    }) => {
                        info!(entries, %revision, changed, "SIGHUP: registration entries reloaded")
                    }
                    Err(error) => warn!(
                        %error,
                        "SIGHUP: registration entries not reloaded; keeping the old ones"
                    ),
                }
            }
        });
        info!(addr = %self.listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), trust_domain = %self.config.trust_domain, "serving");
        let result = Server::builder()
            .tls_config(tls)?
            .timeout(REQUEST_TIMEOUT)
            .concurrency_limit_per_connection(32)
            .layer(tower_limit(MAX_CONCURRENT_REQUESTS))
            .add_service(
                NodeAttestationServer::from_arc(service)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add_service(
                WorkloadIdentityServer::from_arc(identity)
                    .max_decoding_message_size(MAX_REQUEST_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            )
            // Without TCP_NODELAY, a response written in two parts waits for the
            // client's delayed ACK (40 ms on Linux) before the second goes out:
            // that alone was 80 of the 110 ms of a node attestation on loopback.
            .serve_with_incoming_shutdown(
                TcpIncoming::from(self.listener).with_nodelay(Some(true)),
                shutdown,
            )
            .await;
        pruner.abort();
        sighup.abort();
        info!("stopped");
        Ok(result?)
    }
}

fn tower_limit(max: usize) -> tower::limit::GlobalConcurrencyLimitLayer {
    tower::limit::GlobalConcurrencyLimitLayer::new(max)
}

#[derive(Clone)]
pub struct ReloadHandle {
    config: Config,
    ek_trust: Arc<RwLock<EkTrust>>,
    registry: Registry,
}

impl ReloadHandle {
    /// Re-reads the registration entries; WatchRevision streams see the new
    /// revision if the file changed. On error the old entries stay.
    pub fn reload_entries(&self) -> Result<Reloaded, EntriesError> {
        self.registry.reload()
    }

    /// Re-reads the EK trust; returns its roots, intermediates and enrolled EKs.
    pub fn reload(&self) -> Result<(usize, usize, usize), EkTrustError> {
        let fresh = EkTrust::load(&self.config.ek)?;
        let counts = fresh.counts();
        *self.ek_trust.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(counts)
    }
}
