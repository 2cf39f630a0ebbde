//! OIDC discovery: a separate HTTPS listener serving
//! `/.well-known/openid-configuration` and the JWK Set of the JWT-SVID keys,
//! so cloud IAM and OIDC relying parties can verify JWT-SVIDs from the issuer
//! URL alone (docs/oidc.md). HTTP/1.1 only, and bounded: connections are
//! capped (the excess is closed on arrival), the TLS handshake and each
//! request's headers must arrive within the header timeout (which also ends
//! idle keep-alive connections), headers are at most 8 KiB, request bodies
//! are never read, and a connection lives at most two minutes.

mod handler;
mod issuer_url;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn, Instrument};

pub use handler::Endpoints;
pub use issuer_url::{IssuerUrl, DISCOVERY_SUFFIX, JWKS_SUFFIX, MAX_ISSUER_URL_LEN};
pub use tls::OidcCertificate;

use crate::ca::{Ca, CaError};
use crate::config::OidcConfig;
use crate::jwt::JwtKeys;

/// Largest request head (request line and headers) read.
pub const MAX_HEADER_BYTES: usize = 8 << 10;
/// Most header fields in a request.
pub const MAX_HEADERS: usize = 32;
/// A connection is closed (after its response in flight) this long after it
/// opened, however busy it is.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(120);
/// How long to wait before accepting again after the accept call failed
/// (out of file descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often a full listener says so in the log, at most.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error(transparent)]
    File(#[from] CaError),
    #[error("{}: {reason}", path.display())]
    Certificate { path: PathBuf, reason: String },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("issuer {url:?}: {reason}")]
    IssuerUrl { url: String, reason: String },
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The bounds of the listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

impl Limits {
    pub fn from_config(config: &OidcConfig) -> Limits {
        Limits {
            max_connections: config.max_connections,
            header_timeout: Duration::from_secs(config.header_timeout_secs),
        }
    }
}

/// A bound discovery listener.
pub struct OidcServer {
    listener: TcpListener,
    certificate: Arc<OidcCertificate>,
    endpoints: Arc<Endpoints>,
    keys: Arc<JwtKeys>,
    limits: Limits,
}

impl OidcServer {
    /// Serves on `listener` with the issuer URL, certificate and limits of
    /// `config`.
    pub fn new(
        config: &OidcConfig,
        listener: TcpListener,
        ca: &Ca,
        keys: Arc<JwtKeys>,
    ) -> Result<OidcServer, OidcError> {
        let issuer = IssuerUrl::parse(&config.issuer).map_err(|reason| OidcError::IssuerUrl {
            url: config.issuer.clone(),
            reason,
        })?;
        let certificate = Arc::new(OidcCertificate::load(
            config.cert.as_deref(),
            config.key.as_deref(),
            ca,
            issuer.host(),
        )?);
        let endpoints = Arc::new(Endpoints::new(
            &issuer,
            keys.schedule().cache_max_age_secs(),
        ));
        Ok(OidcServer {
            listener,
            certificate,
            endpoints,
            keys,
            limits: Limits::from_config(config),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The certificate, to reload on SIGHUP.
    pub fn certificate(&self) -> Arc<OidcCertificate> {
        self.certificate.clone()
    }

    /// Serves until `stop` turns true, then closes idle connections, lets
    /// responses in flight finish, and returns once every connection is done
    /// (each is bounded by the header timeout from then on).
    pub async fn serve(self, mut stop: watch::Receiver<bool>) -> Result<(), OidcError> {
        let acceptor = TlsAcceptor::from(self.certificate.server_config()?);
        let permits = Arc::new(Semaphore::new(self.limits.max_connections));
        let mut last_full_warning: Option<Instant> = None;
        info!(addr = %self.local_addr().map(|a| a.to_string()).unwrap_or_default(), max_connections = self.limits.max_connections, "OIDC discovery: serving");
        loop {
            let (stream, peer) = tokio::select! {
                _ = stopped(&mut stop) => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        warn!(%error, "OIDC discovery: accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
            };
            // Over the limit: close at once, so waiting costs us nothing.
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                drop(stream);
                if last_full_warning.is_none_or(|at| at.elapsed() >= FULL_WARNING_EVERY) {
                    warn!(
                        max_connections = self.limits.max_connections,
                        "OIDC discovery: connection limit reached; closing new connections"
                    );
                    last_full_warning = Some(Instant::now());
                }
                continue;
            };
            let _ = stream.set_nodelay(true);
            let connection = Connection {
                acceptor: acceptor.clone(),
                endpoints: self.endpoints.clone(),
                keys: self.keys.clone(),
                limits: self.limits,
                _permit: permit,
            };
            tokio::spawn(
                connection
                    .serve(stream, stop.clone())
                    .instrument(tracing::debug_span!("oidc", %peer)),
            );
        }
        drop(self.listener);
        // Every connection holds a permit until it ends.
        let all = u32::try_from(self.limits.max_connections).unwrap_or(u32::MAX);
        let _ = permits.acquire_many(all).await;
        info!("OIDC discovery: stopped");
        Ok(())
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// One client connection and what it needs.
struct Connection {
    acceptor: TlsAcceptor,
    endpoints: Arc<Endpoints>,
    keys: Arc<JwtKeys>,
    limits: Limits,
    /// Returned when the connection ends.
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(self, stream: TcpStream, mut stop: watch::Receiver<bool>) {
        let timeout = self.limits.header_timeout;
        let tls = match tokio::time::timeout(timeout, self.acceptor.accept(stream)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                debug!(%error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                debug!("TLS handshake timed out");
                return;
            }
        };
        let endpoints = self.endpoints;
        let keys = self.keys;
        let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let published = keys.published();
            let response = endpoints.respond(
                request.method(),
                request.uri().path(),
                request.headers(),
                &published,
            );
            // The request body is dropped unread.
            async move { Ok::<_, std::convert::Infallible>(response) }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(timeout)
            .max_buf_size(MAX_HEADER_BYTES.max(8192))
            .max_header_size(MAX_HEADER_BYTES)
            .max_headers(MAX_HEADERS)
            .keep_alive(true)
            .half_close(false);
        let connection = builder.serve_connection(TokioIo::new(tls), service);
        tokio::pin!(connection);
        let ended = tokio::select! {
            result = connection.as_mut() => Some(result),
            _ = tokio::time::sleep(MAX_CONNECTION_AGE) => None,
            _ = stopped(&mut stop) => None,
        };
        let result = match ended {
            Some(result) => result,
            None => {
                connection.as_mut().graceful_shutdown();
                match tokio::time::timeout(timeout, connection.as_mut()).await {
                    Ok(result) => result,
                    Err(_) => return,
                }
            }
        };
        if let Err(error) = result {
            debug!(%error, "connection ended");
        }
    }
}
