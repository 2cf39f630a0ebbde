//! Workload attestation: fan the attestors out for one caller, each under a
//! deadline, tolerate the failure of any one of them, then make sure the caller is
//! still the same live process before anything is answered.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use attestd_attestors::binary::{BinaryDigest, BinaryDigestCache};
use attestd_attestors::host::HostInfo;
use attestd_attestors::procfs::{ProcFs, ProcessFiles, ProcessInputs};
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
    ///
    /// A connection remembers its last complete answer together with the
    /// [`ProcessInputs`] it was derived from. When a fresh read of the caller's
    /// credentials, cgroups and executable gives equal inputs, and the answer is
    /// younger than [`REUSE_FOR`], that answer is returned without running the
    /// attestors again: it is exactly what they would compute from these inputs.
    pub async fn attest(&self, peer: &Peer) -> Result<Arc<WorkloadAttestation>, WorkloadError> {
        let inputs = peer.memory.read_inputs(&self.procfs, peer.pid);
        if let Some(inputs) = &inputs {
            if let Some(known) = peer.memory.recall(inputs) {
                return if peer.is_alive() {
                    Ok(known)
                } else {
                    Err(WorkloadError::CallerGone)
                };
            }
        }
        let (attestation, reusable) = self.attest_afresh(peer.pid, inputs.as_ref()).await;

        // Everything above read /proc/<pid>. If the process is still alive now, it
        // held that PID the whole time, so every read was about the caller.
        if !peer.is_alive() {
            return Err(WorkloadError::CallerGone);
        }
        let attestation = Arc::new(attestation);
        if let (true, Some(inputs)) = (reusable, inputs) {
            peer.memory.remember(inputs, Arc::clone(&attestation));
        }
        Ok(attestation)
    }

    /// Runs every attestor and the digest lookup. The answer is reusable when every
    /// part succeeded and was derived from `inputs` alone.
    async fn attest_afresh(
        &self,
        pid: i32,
        inputs: Option<&ProcessInputs>,
    ) -> (WorkloadAttestation, bool) {
        // Start every attestor now, on blocking threads, against one shared deadline.
        let deadline_at = tokio::time::Instant::now() + self.deadline;
        let shared_inputs = inputs.map(|inputs| Arc::new(inputs.clone()));
        let started: Vec<_> = self
            .attestors
            .iter()
            .map(|attestor| {
                let attestor = attestor.clone();
                let inputs = shared_inputs.clone();
                (
                    attestor.name(),
                    tokio::task::spawn_blocking(move || {
                        match inputs.and_then(|inputs| attestor.attest_inputs(&inputs)) {
                            Some(result) => (result, true),
                            None => (attestor.attest(pid), false),
                        }
                    }),
                )
            })
            .collect();
        let runs = async {
            let mut results = Vec::with_capacity(started.len());
            for (name, handle) in started {
                let result = match tokio::time::timeout_at(deadline_at, handle).await {
                    Ok(Ok((Ok(selectors), from_inputs))) => Ok((selectors, from_inputs)),
                    Ok(Ok((Err(error), _))) => Err(error.to_string()),
                    Ok(Err(join)) => Err(format!("attestor crashed: {join}")),
                    Err(_) => Err(format!("no answer within {:?}", self.deadline)),
                };
                results.push((name, result));
            }
            results
        };
        let binary =
            async {
                let exe = match inputs {
                    Some(inputs) => Ok(inputs.exe.clone()),
                    None => self.procfs.exe_path(pid).map_err(|e| e.to_string()),
                };
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

        let mut reusable = inputs.is_some();
        let mut selectors: Vec<Selector> = self.host.selectors();
        let mut outcomes = Vec::with_capacity(results.len() + 1);
        for (name, result) in results {
            match result {
                Ok((found, from_inputs)) => {
                    reusable &= from_inputs;
                    selectors.extend(found);
                    outcomes.push(AttestorOutcome { name, error: None });
                }
                Err(error) => {
                    reusable = false;
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
                // The digest must be of the very file the inputs saw: an execve
                // between the two reads would pair one file's path with another's hash.
                reusable &= inputs.is_some_and(|inputs| inputs.exe_key == digest.key);
                selectors.push(Selector::new("unix", "sha256", hex::encode(digest.sha256)));
                outcomes.push(AttestorOutcome {
                    name: BINARY_ATTESTOR,
                    error: None,
                });
                Some((path, digest))
            }
            (path, digest) => {
                reusable = false;
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
        let attestation = WorkloadAttestation {
            selectors,
            outcomes,
            binary,
        };
        (attestation, reusable)
    }
}

/// How long a connection may reuse an answer while its caller's inputs stay
/// the same. The inputs cover everything the kernel says; this bound is for what
/// they do not cover: user and group names from NSS, and the host's name.
pub const REUSE_FOR: Duration = Duration::from_secs(10);

/// What one connection remembers about its caller between requests: the caller's
/// `/proc` files, held open, and the last complete answer with the inputs it was
/// derived from.
#[derive(Debug, Default)]
pub struct CallerMemory {
    files: OnceLock<ProcessFiles>,
    last: Mutex<Option<Remembered>>,
}

#[derive(Debug)]
struct Remembered {
    inputs: ProcessInputs,
    attestation: Arc<WorkloadAttestation>,
    at: Instant,
}

impl CallerMemory {
    /// A fresh read of the caller's inputs, or None when they cannot be read
    /// (then nothing is reused, and the attestors report what went wrong).
    ///
    /// The files are opened on first use, by pid. That is sound because an
    /// answer is only ever remembered after the caller's pidfd showed it alive,
    /// so it held that pid when the files were opened; and once it has exited,
    /// every request on the connection is refused.
    fn read_inputs(&self, procfs: &ProcFs, pid: i32) -> Option<ProcessInputs> {
        let files = match self.files.get() {
            Some(files) => files,
            None => match procfs.open_process(pid) {
                Ok(files) => self.files.get_or_init(|| files),
                Err(error) => {
                    debug!(pid, %error, "cannot hold the caller's /proc files open");
                    return None;
                }
            },
        };
        files
            .read_inputs()
            .inspect_err(|error| debug!(pid, %error, "cannot read the caller's inputs"))
            .ok()
    }

    fn recall(&self, inputs: &ProcessInputs) -> Option<Arc<WorkloadAttestation>> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let last = last.as_ref()?;
        (last.inputs == *inputs && last.at.elapsed() < REUSE_FOR)
            .then(|| Arc::clone(&last.attestation))
    }

    fn remember(&self, inputs: ProcessInputs, attestation: Arc<WorkloadAttestation>) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        *last = Some(Remembered {
            inputs,
            attestation,
            at: Instant::now(),
        });
    }
}
