//! The API socket: created safely, and turned into a stream of connections whose
//! peers are already identified and whose count is bounded.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use attestd_attestors::procfs::ProcFs;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::Connected;
use tracing::{debug, warn};

use super::authority::AuthorityFix;
use super::peer::{boot_time_ticks, Peer};

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("another attestd is already serving on {0}; stop it first")]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SocketError {
    let path = path.to_owned();
    move |source| SocketError::Io {
        action,
        path,
        source,
    }
}

/// Binds `path` with `mode`. A stale socket (nobody answers) is removed; a live
/// one means another daemon, and we refuse rather than steal its clients. The
/// socket is bound under a temporary name, given its mode, then renamed into
/// place, so it is never reachable with the wrong permissions.
pub fn bind(path: &Path, mode: u32) -> Result<UnixListener, SocketError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_error("creating", parent))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => return Err(SocketError::InUse(path.to_owned())),
                Err(_) => {
                    debug!(path = %path.display(), "removing stale socket");
                    std::fs::remove_file(path).map_err(io_error("removing stale socket", path))?;
                }
            }
        }
        Ok(_) => return Err(SocketError::NotASocket(path.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error("inspecting", path)(e)),
    }
    let temp = path.with_file_name(format!(
        ".{}.{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&temp);
    let listener =
        std::os::unix::net::UnixListener::bind(&temp).map_err(io_error("binding", &temp))?;
    let placed = std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))
        .map_err(io_error("setting mode on", &temp))
        .and_then(|()| std::fs::rename(&temp, path).map_err(io_error("placing", path)));
    if let Err(error) = placed {
        let _ = std::fs::remove_file(&temp);
        return Err(error);
    }
    listener
        .set_nonblocking(true)
        .map_err(io_error("configuring", path))?;
    UnixListener::from_std(listener).map_err(io_error("registering", path))
}

/// A connection whose peer was identified at accept. Holding it holds one of the
/// `max_connections` permits and one of its uid's permits.
pub struct PeerConnection {
    /// Client bytes pass the `:authority` fix-up (see `authority`).
    stream: AuthorityFix<UnixStream>,
    peer: Arc<Peer>,
    _permit: OwnedSemaphorePermit,
    _uid_permit: UidPermit,
}

/// Per-uid connection counts. An entry lives while its uid has connections, so
/// the map is bounded by the number of connections.
#[derive(Default)]
struct UidCounts {
    counts: std::sync::Mutex<std::collections::HashMap<u32, usize>>,
}

struct UidPermit {
    counts: Arc<UidCounts>,
    uid: u32,
}

impl UidCounts {
    fn acquire(self: &Arc<Self>, uid: u32, limit: usize) -> Option<UidPermit> {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = counts.entry(uid).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(UidPermit {
            counts: self.clone(),
            uid,
        })
    }
}

impl Drop for UidPermit {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = counts.get_mut(&self.uid) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.uid);
            }
        }
    }
}

/// What handlers find in request extensions.
#[derive(Clone, Debug)]
pub struct PeerInfo(pub Arc<Peer>);

impl Connected for PeerConnection {
    type ConnectInfo = PeerInfo;
    fn connect_info(&self) -> PeerInfo {
        PeerInfo(self.peer.clone())
    }
}

impl AsyncRead for PeerConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Accepts connections for as long as the returned receiver is alive. Connections
/// beyond `max_connections` (or beyond `max_connections_per_uid` for their uid),
/// and those whose peer cannot be identified, are closed at once; none of them
/// stalls the accept loop.
pub fn incoming(
    listener: UnixListener,
    procfs: ProcFs,
    max_connections: usize,
    max_connections_per_uid: usize,
) -> mpsc::Receiver<io::Result<PeerConnection>> {
    let (sender, receiver) = mpsc::channel(64);
    let permits = Arc::new(Semaphore::new(max_connections));
    let per_uid = Arc::new(UidCounts::default());
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // EMFILE and friends: keep serving the connections we have.
                        warn!(%error, "accept failed");
                        tokio::task::yield_now().await;
                        continue;
                    }
                },
                () = sender.closed() => break,
            };
            let accepted_at = boot_time_ticks();
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                warn!(
                    max_connections,
                    "connection limit reached; closing a new connection"
                );
                continue;
            };
            let peer = match Peer::identify(stream.as_raw_fd(), &procfs, accepted_at) {
                Ok(peer) => peer,
                Err(error) => {
                    warn!(%error, "closing a connection whose caller cannot be identified");
                    continue;
                }
            };
            let Some(uid_permit) = per_uid.acquire(peer.uid, max_connections_per_uid) else {
                warn!(
                    uid = peer.uid,
                    max_connections_per_uid, "per-uid connection limit reached; closing"
                );
                continue;
            };
            debug!(
                pid = peer.pid,
                uid = peer.uid,
                source = peer.pidfd_source,
                "accepted"
            );
            let connection = PeerConnection {
                stream: AuthorityFix::new(stream),
                peer: Arc::new(peer),
                _permit: permit,
                _uid_permit: uid_permit,
            };
            if sender.send(Ok(connection)).await.is_err() {
                break;
            }
        }
    });
    receiver
}
