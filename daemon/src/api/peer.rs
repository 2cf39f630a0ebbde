//! Who is on the other end of a connection, from the kernel alone: SO_PEERCRED for
//! pid, uid and gid, and a pidfd that pins the process itself, so a reused PID can
//! never be mistaken for the caller.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use attestd_attestors::procfs::ProcFs;

use crate::workload::CallerMemory;

/// `SO_PEERPIDFD` (Linux 6.5+): a pidfd for the process that called connect(),
/// taken by the kernel at connect time. The value is 77 on every architecture
/// whose socket options follow the generic table (x86, arm, riscv...).
const SO_PEERPIDFD: libc::c_int = 77;

/// Why a connection's peer could not be identified. Such connections are closed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("SO_PEERCRED failed: {0}")]
    PeerCred(io::Error),
    #[error("the peer has no pid in this pid namespace")]
    NoPid,
    #[error("pidfd_open({pid}) failed: {source}")]
    PidfdOpen { pid: i32, source: io::Error },
    #[error("process {pid} started after the connection was accepted: its PID was reused")]
    PidReused { pid: i32 },
    #[error("reading process {pid}: {reason}")]
    Proc { pid: i32, reason: String },
}

/// The caller, pinned: `pidfd` refers to the connecting process itself, whatever
/// later happens to its PID.
#[derive(Debug)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// Start time in clock ticks since boot (field 22 of /proc/<pid>/stat).
    pub start_time_ticks: u64,
    /// How the pidfd was obtained: "SO_PEERPIDFD" or "pidfd_open".
    pub pidfd_source: &'static str,
    /// What this connection remembers about the caller between requests.
    pub memory: CallerMemory,
    pidfd: OwnedFd,
}

/// How to pin the peer process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidfdMethod {
    /// SO_PEERPIDFD where the kernel has it, else pidfd_open.
    Best,
    /// pidfd_open only: what older kernels get (tests use it to cover that path).
    PidfdOpen,
}

impl Peer {
    /// Identifies the peer of a connected Unix socket. `accepted_at_ticks` is the
    /// boot-clock time of accept(), used to reject a PID reused before pidfd_open.
    pub fn identify(
        socket: RawFd,
        procfs: &ProcFs,
        accepted_at_ticks: u64,
    ) -> Result<Peer, PeerError> {
        Self::identify_using(socket, procfs, accepted_at_ticks, PidfdMethod::Best)
    }

    pub fn identify_using(
        socket: RawFd,
        procfs: &ProcFs,
        accepted_at_ticks: u64,
        method: PidfdMethod,
    ) -> Result<Peer, PeerError> {
        let cred = peer_cred(socket).map_err(PeerError::PeerCred)?;
        if cred.pid <= 0 {
            return Err(PeerError::NoPid);
        }
        let pid = cred.pid;
        let from_socket = match method {
            PidfdMethod::Best => peer_pidfd(socket).ok(),
            PidfdMethod::PidfdOpen => None,
        };
        let (pidfd, pidfd_source) = match from_socket {
            Some(fd) => (fd, "SO_PEERPIDFD"),
            // Older kernels: open a pidfd by number, then prove it is the same process.
            None => (
                pidfd_open(pid).map_err(|source| PeerError::PidfdOpen { pid, source })?,
                "pidfd_open",
            ),
        };
        let start_time_ticks = procfs.start_time_ticks(pid).map_err(|e| PeerError::Proc {
            pid,
            reason: e.to_string(),
        })?;
        // A process that started after we accepted cannot be the one that connected.
        if start_time_ticks > accepted_at_ticks {
            return Err(PeerError::PidReused { pid });
        }
        let peer = Peer {
            pid,
            uid: cred.uid,
            gid: cred.gid,
            start_time_ticks,
            pidfd_source,
            memory: CallerMemory::default(),
            pidfd,
        };
        // If it exited between SO_PEERCRED and the stat read, the stat may describe a
        // newcomer with the same PID; the pidfd says whether the original still lives.
        if !peer.is_alive() {
            return Err(PeerError::Proc {
                pid,
                reason: "the process exited while connecting".into(),
            });
        }
        Ok(peer)
    }

    /// A watch on the pinned process's exit, for as long as the caller keeps
    /// it: credentials made for this process end with it (docs/workload-api.md).
    pub fn exit_watch(&self) -> io::Result<ExitWatch> {
        let fd = self.pidfd.try_clone()?;
        // SAFETY: `fd` is an OwnedFd, moved into the AsyncFd, which owns it
        // until it is dropped; OwnedFd::as_raw_fd always returns that fd.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }
        .map_err(|error| error.into_parts().1)?;
        Ok(ExitWatch { fd })
    }

    /// True while the pinned process has not exited. A live process keeps its PID,
    /// so everything read from /proc/<pid> between two true answers was about it.
    pub fn is_alive(&self) -> bool {
        let mut poll = libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let ready = unsafe { libc::poll(&mut poll, 1, 0) };
        // A pidfd becomes readable when the process exits; an error means we cannot
        // vouch for it, which counts as gone.
        ready == 0
    }
}

/// Resolves when a process exits: its pidfd becomes readable then, and stays so.
#[derive(Debug)]
pub struct ExitWatch {
    fd: tokio::io::unix::AsyncFd<OwnedFd>,
}

impl ExitWatch {
    /// Waits for the exit. An error from the reactor counts as an exit: a
    /// process we can no longer watch must not keep its credentials.
    pub async fn exited(&self) {
        let _ = self.fd.readable().await;
    }
}

/// Clock ticks since boot, the unit of /proc/<pid>/stat start times.
pub fn boot_time_ticks() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; CLOCK_BOOTTIME always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let nanos_per_tick = 1_000_000_000 / ticks_per_second;
    // Round up: start times are truncated to ticks, so compare against the next tick.
    (now.tv_sec.max(0) as u64) * ticks_per_second + (now.tv_nsec.max(0) as u64) / nanos_per_tick + 1
}

fn peer_cred(socket: RawFd) -> io::Result<libc::ucred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            socket,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred)
}

fn peer_pidfd(socket: RawFd) -> io::Result<OwnedFd> {
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: fd and len are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            socket,
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&mut fd as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 || fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just handed us this descriptor; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// pidfd_open(2), for kernels without SO_PEERPIDFD and for tests.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: see above.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
