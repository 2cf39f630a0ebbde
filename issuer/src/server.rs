//! Running the issuer: load the CA, JWT keys, EK trust and registration
//! entries, serve node attestation and workload identity over one TLS port
//! (and OIDC discovery over another, if configured), re-read the JWT keys on
//! a timer, reload on SIGHUP, stop cleanly on SIGTERM/SIGINT.

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
use crate::jwt::{JwtError, JwtKeys, Refreshed};
use crate::node::{unix_now, NodeService};
use crate::oidc::{OidcCertificate, OidcError, OidcServer};
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
    #[error("JWT signing keys: {0}")]
    Jwt(#[from] JwtError),
    #[error("OIDC discovery: {0}")]
    Oidc(#[from] OidcError),
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

/// An issuer whose CA is loaded and whose sockets are bound.
pub struct Issuer {
    config: Config,
    ca: Arc<Ca>,
    jwt: Arc<JwtKeys>,
    ek_trust: Arc<RwLock<EkTrust>>,
    registry: Registry,
    listener: TcpListener,
    oidc: Option<OidcServer>,
}

impl Issuer {
    /// Loads everything and binds `listen` (and `oidc.listen`).
    pub async fn bind(config: Config) -> Result<Issuer, ServeError> {
        let listener = listen(config.listen).await?;
        let oidc = match &config.oidc {
            Some(oidc) => Some(listen(oidc.listen).await?),
            None => None,
        };
        Self::from_listeners(config, listener, oidc)
    }

    /// Loads everything, to serve on sockets the caller bound (the OIDC one
    /// exactly when `[oidc]` is configured); their addresses win over the
    /// config's.
    pub fn from_listeners(
        config: Config,
        listener: TcpListener,
        oidc_listener: Option<TcpListener>,
    ) -> Result<Issuer, ServeError> {
        let ca = Arc::new(Ca::load_or_generate(&config.ca, &config.trust_domain)?);
        let ek_trust = EkTrust::load(&config.ek)?;
        let (roots, intermediates, enrolled) = ek_trust.counts();
        info!(roots, intermediates, enrolled, "EK trust loaded");
        let jwt = Arc::new(JwtKeys::open(&config, unix_now())?);
        let published = jwt.published();
        let registry = Registry::load(
            config.entries.as_deref(),
            &config.trust_domain,
            ca.cert_der(),
            &published.spiffe_jwks,
        )?;
        let current = registry.current();
        info!(
            entries = current.entries.len(),
            revision = %current.revision,
            jwt_signing_kid = %jwt.signing_kid(unix_now()).unwrap_or_default(),
            jwt_published = ?published.kids,
            "registration entries and JWT keys loaded"
        );
        let oidc = match (&config.oidc, oidc_listener) {
            (Some(oidc), Some(listener)) => {
                Some(OidcServer::new(oidc, listener, &ca, jwt.clone())?)
            }
            (None, None) => None,
            _ => {
                return Err(ServeError::Setup(
                    "an OIDC listener is needed exactly when [oidc] is configured".into(),
                ))
            }
        };
        Ok(Issuer {
            config,
            ca,
            jwt,
            ek_trust: Arc::new(RwLock::new(ek_trust)),
            registry,
            listener,
            oidc,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where OIDC discovery is served, if it is.
    pub fn oidc_addr(&self) -> Option<SocketAddr> {
        self.oidc.as_ref().and_then(|oidc| oidc.local_addr().ok())
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
            jwt: self.jwt.clone(),
            oidc_certificate: self.oidc.as_ref().map(OidcServer::certificate),
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
                self.config.jwt_issuer().map(str::to_owned),
                self.registry.clone(),
            )
            .map_err(ServeError::Setup)?,
        );
        let stopping = Arc::new(tokio::sync::watch::channel(false).0);
        // WatchRevision streams never end by themselves: end them, or a
        // graceful shutdown would wait for them forever.
        let shutdown = {
            let identity = identity.clone();
            let stopping = stopping.clone();
            async move {
                shutdown.await;
                identity.stop_watchers();
                stopping.send_replace(true);
            }
        };
        let reload = self.reload_handle();
        let oidc = self
            .oidc
            .map(|server| tokio::spawn(server.serve(stopping.subscribe())));
        // Activation and retention times pass without a signal, and other
        // replicas (or `jwt rotate`) add key files: look again regularly.
        let key_timer = {
            let reload = reload.clone();
            let every = self.jwt.schedule().poll_interval();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    // File reads, and now and then a key to write and fsync.
                    let reload = reload.clone();
                    match tokio::task::spawn_blocking(move || reload.refresh_keys()).await {
                        Ok(Ok(refreshed)) if refreshed.changed => {
                            log_keys("JWT keys changed", &refreshed)
                        }
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => {
                            warn!(%error, "JWT keys not re-read; keeping the ones in force")
                        }
                        Err(error) => warn!(%error, "JWT key refresh task failed"),
                    }
                }
            })
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
                match reload.refresh_keys() {
                    Ok(refreshed) => log_keys("SIGHUP: JWT keys reloaded", &refreshed),
                    Err(error) => {
                        warn!(%error, "SIGHUP: JWT keys not reloaded; keeping the old ones")
                    }
                }
                match reload.reload_oidc_certificate() {
                    Ok(true) => info!("SIGHUP: OIDC TLS certificate reloaded"),
                    Ok(false) => {}
                    Err(error) => {
                        warn!(%error, "SIGHUP: OIDC TLS certificate not reloaded; keeping the old one")
                    }
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
        key_timer.abort();
        // Also when the gRPC server failed rather than was stopped.
        stopping.send_replace(true);
        if let Some(oidc) = oidc {
            match oidc.await {
                Ok(Err(error)) => warn!(%error, "OIDC discovery failed"),
                Err(error) => warn!(%error, "OIDC discovery task failed"),
                Ok(Ok(())) => {}
            }
        }
        info!("stopped");
        Ok(result?)
    }
}

async fn listen(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })
}

fn log_keys(what: &str, refreshed: &Refreshed) {
    info!(
        published = ?refreshed.published,
        signing = %refreshed.signing,
        made = ?refreshed.made,
        "{what}"
    );
}

fn tower_limit(max: usize) -> tower::limit::GlobalConcurrencyLimitLayer {
    tower::limit::GlobalConcurrencyLimitLayer::new(max)
}

#[derive(Clone)]
pub struct ReloadHandle {
    config: Config,
    ek_trust: Arc<RwLock<EkTrust>>,
    registry: Registry,
    jwt: Arc<JwtKeys>,
    oidc_certificate: Option<Arc<OidcCertificate>>,
}

impl ReloadHandle {
    /// Re-reads the JWT key files and publishes the keys due now, in the
    /// OIDC JWKS and the Bundles JWK Set (whose revision then changes). On
    /// error the keys in force stay.
    pub fn refresh_keys(&self) -> Result<Refreshed, JwtError> {
        let refreshed = self.jwt.refresh(unix_now())?;
        self.registry.set_jwks(&self.jwt.published().spiffe_jwks);
        Ok(refreshed)
    }

    /// Re-reads the OIDC certificate files; false when the certificate is
    /// the CA's (or there is no OIDC listener).
    pub fn reload_oidc_certificate(&self) -> Result<bool, OidcError> {
        match &self.oidc_certificate {
            Some(certificate) => certificate.reload(),
            None => Ok(false),
        }
    }

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
