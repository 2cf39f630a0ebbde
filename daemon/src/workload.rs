//! Workload attestation: fan the attestors out for one caller, each under a
//! deadline, tolerate the failure of any one of them, then make sure the caller is
//! still the same live process before anything is answered.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use attestd_attestors::binary::{BinaryDigest, BinaryDigestCache};
use attestd_attestors::host::HostInfo;
use attestd_attestors::procfs::ProcFs;
use attestd_attestors::selector::{Attestor, Selector};
use tracing::debug;

use crate::api::peer::Peer;

/// The name under which the executable-digest step reports.
const BINARY_ATTESTOR: &str = "binary";

/// What one attestor contributed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestorOutcome {
    pub name: &'static str,
    /// None when it succeeded.
    pub error: Option<String>,
}

/// Everything the daemon knows about a caller.
#[derive(Clone, Debug)]
pub struct WorkloadAttestation {
    /// Sorted and unique.
    pub selectors: Vec<Selector>,
    pub outcomes: Vec<AttestorOutcome>,
    /// The executable, when it could be hashed within the deadline.
    pub binary: Option<(PathBuf, BinaryDigest)>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The caller exited, so its PID may already belong to someone else.
    #[error("the calling process exited during attestation")]
    CallerGone,
}

/// Runs the attestors for callers.
pub struct WorkloadAttestor {
    attestors: Vec<Arc<dyn Attestor>>,
    binaries: Arc<BinaryDigestCache>,
    procfs: ProcFs,
    host: HostInfo,
    deadline: Duration,
}

impl WorkloadAttestor {
    pub fn new(
        attestors: Vec<Arc<dyn Attestor>>,
        binaries: Arc<BinaryDigestCache>,
        procfs: ProcFs,
        host: HostInfo,
        deadline: Duration,
    ) -> Self {
        WorkloadAttestor {
            attestors,
            binaries,
            procfs,
            host,
            deadline,
        }
    }

    pub fn host(&self) -> &HostInfo {
        &self.host
    }

    pub fn binaries(&self) -> &BinaryDigestCache {
        &self.binaries
    }

    /// Attests `peer`. Attestor failures are reported in `outcomes`, not as errors:
    /// fewer selectors means less identity, never a wrong one. The one hard failure
    /// is a caller that did not survive until the end.
    pub async fn attest(&self, peer: &Peer) -> Result<WorkloadAttestation, WorkloadError> {
        let pid = peer.pid;
        // Start every attestor now, on blocking threads, against one shared deadline.
        let deadline_at = tokio::time::Instant::now() + self.deadline;
        let started: Vec<_> = self
            .attestors
            .iter()
            .map(|attestor| {
                let attestor = attestor.clone();
                (
                    attestor.name(),
                    tokio::task::spawn_blocking(move || attestor.attest(pid)),
                )
            })
            .collect();
        let runs = async {
            let mut results = Vec::with_capacity(started.len());
            for (name, handle) in started {
                let result = match tokio::time::timeout_at(deadline_at, handle).await {
                    Ok(Ok(Ok(selectors))) => Ok(selectors),
                    Ok(Ok(Err(error))) => Err(error.to_string()),
                    Ok(Err(join)) => Err(format!("attestor crashed: {join}")),
                    Err(_) => Err(format!("no answer within {:?}", self.deadline)),
                };
                results.push((name, result));
            }
            results
        };
        let binary =
            async {
                let exe = self.procfs.exe_path(pid).map_err(|e| e.to_string());
                let digest =
                    match tokio::time::timeout_at(deadline_at, self.binaries.digest_of_pid(pid))
                        .await
                    {
                        Ok(Ok(digest)) => Ok(digest),
                        Ok(Err(error)) => Err(error.to_string()),
                        // The hash goes on in the background and will be cached for next time.
                        Err(_) => Err(format!("hashing did not finish within {:?}", self.deadline)),
                    };
                (exe, digest)
            };
        let (results, (exe, digest)) = tokio::join!(runs, binary);

        let mut selectors: Vec<Selector> = self.host.selectors();
        let mut outcomes = Vec::with_capacity(results.len() + 1);
        for (name, result) in results {
            match result {
                Ok(found) => {
                    selectors.extend(found);
                    outcomes.push(AttestorOutcome { name, error: None });
                }
                Err(error) => {
                    debug!(pid, attestor = name, %error, "attestor failed");
                    outcomes.push(AttestorOutcome {
                        name,
                        error: Some(error),
                    });
                }
            }
        }
        let binary = match (exe, digest) {
            (Ok(path), Ok(digest)) => {
                selectors.push(Selector::new("unix", "sha256", hex::encode(digest.sha256)));
                outcomes.push(AttestorOutcome {
                    name: BINARY_ATTESTOR,
                    error: None,
                });
                Some((path, digest))
            }
            (path, digest) => {
                let error = [path.err(), digest.err()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; ");
                outcomes.push(AttestorOutcome {
                    name: BINARY_ATTESTOR,
                    error: Some(error),
                });
                None
            }
        };
        selectors.sort();
        selectors.dedup();

        // Everything above read /proc/<pid>. If the process is still alive now, it
        // held that PID the whole time, so every read was about the caller.
        if !peer.is_alive() {
            return Err(WorkloadError::CallerGone);
        }
        Ok(WorkloadAttestation {
            selectors,
            outcomes,
            binary,
        })
    }
}
