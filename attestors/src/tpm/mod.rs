//! The only code in attestd that talks to the TPM.
//!
//! One dedicated thread owns the ESAPI context and serves a bounded queue of
//! requests; async callers get typed operations (`quote`, `activate_credential`,
//! `read_pcrs`, ...) that enqueue a job and await its answer under a deadline.
//! A TPM executes one command at a time and swtpm has no resource manager, so a
//! single owner is both the simplest correct design and the place where batching
//! of quotes will live. See `docs/tpm.md`.

mod ak_store;
mod error;
mod eventlog;
mod nv;
mod pcr;
mod session;
mod tcti;
mod types;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::{error, info_span};

pub use error::{describe_response_code, TpmError};
pub use eventlog::{read_log, EventLogPaths, EventLogs};
pub use session::MAX_QUALIFYING_DATA;
pub use tcti::{Tcti, TctiParseError};
pub use types::{
    AkAlgorithm, AkInfo, EkAlgorithm, EkInfo, PcrBank, PcrBankValues, PcrSelection, PcrValues,
    Quote, MAX_PCR_INDEX,
};

use session::TpmSession;

/// How to reach the TPM and where the AK lives.
#[derive(Clone, Debug)]
pub struct TpmConfig {
    pub tcti: Tcti,
    /// Directory holding the AK blobs (created 0700 when missing).
    pub state_dir: PathBuf,
    /// The EK that parents the AK and answers ActivateCredential.
    pub ek_algorithm: EkAlgorithm,
    pub ak_algorithm: AkAlgorithm,
    /// Requests that may wait for the TPM; senders beyond this wait for room.
    pub queue_capacity: usize,
    /// Deadline for one request, queueing included.
    pub request_timeout: Duration,
}

impl Default for TpmConfig {
    fn default() -> Self {
        TpmConfig {
            tcti: Tcti::default(),
            state_dir: PathBuf::from("/var/lib/attestd"),
            ek_algorithm: EkAlgorithm::Rsa2048,
            ak_algorithm: AkAlgorithm::EccP256,
            queue_capacity: 64,
            request_timeout: Duration::from_secs(30),
        }
    }
}

type Job = Box<dyn FnOnce(&mut TpmSession) + Send>;

/// A handle to the TPM owner thread. Cheap to clone; the thread stops when the last
/// handle is dropped, flushing nothing because nothing stays loaded between requests.
#[derive(Clone)]
pub struct Tpm {
    jobs: mpsc::Sender<Job>,
    request_timeout: Duration,
    ak: AkInfo,
    /// EKs already read. An EK is derived from the endorsement seed, which only
    /// TPM2_ChangeEPS changes; a failed activation forgets them in case it did.
    /// Saves loading the EK and reading its certificates from NV per node
    /// attestation.
    eks: std::sync::Arc<std::sync::Mutex<Vec<EkInfo>>>,
}

impl Tpm {
    /// Starts the owner thread, connects, and loads or creates the AK.
    pub async fn open(config: TpmConfig) -> Result<Tpm, TpmError> {
        let (jobs, queue) = mpsc::channel::<Job>(config.queue_capacity.max(1));
        let (ready_tx, ready_rx) = oneshot::channel();
        let request_timeout = config.request_timeout;
        thread::Builder::new()
            .name("tpm-owner".into())
            .spawn(move || owner_main(config, queue, ready_tx))
            .map_err(|source| TpmError::State {
                action: "starting the TPM thread for",
                path: PathBuf::from("tpm-owner"),
                source,
            })?;
        let ak = tokio::time::timeout(request_timeout, ready_rx)
            .await
            .map_err(|_| TpmError::Timeout {
                seconds: request_timeout.as_secs(),
            })?
            .map_err(|_| TpmError::OwnerGone)??;
        Ok(Tpm {
            jobs,
            request_timeout,
            ak,
            eks: Default::default(),
        })
    }

    /// Reads one EK (public area, certificate, chain) without an AK or a state
    /// directory: for `attestd ek show`, which must not create files that the
    /// service, perhaps running as another user, would then find.
    pub async fn read_ek(
        tcti: Tcti,
        algorithm: EkAlgorithm,
        timeout: std::time::Duration,
    ) -> Result<EkInfo, TpmError> {
        let read = tokio::task::spawn_blocking(move || {
            TpmSession::new(tcti, algorithm).ek_info(algorithm)
        });
        tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| TpmError::Timeout {
                seconds: timeout.as_secs(),
            })?
            .map_err(|_| TpmError::OwnerGone)?
    }

    /// The AK's public area and name (fixed for the life of the state directory).
    pub fn ak(&self) -> &AkInfo {
        &self.ak
    }

    /// The EK's public area, certificate and chain.
    pub async fn ek(&self, algorithm: EkAlgorithm) -> Result<EkInfo, TpmError> {
        if let Some(known) = self
            .eks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|ek| ek.algorithm == algorithm)
        {
            return Ok(known.clone());
        }
        let ek = self.run(move |session| session.ek_info(algorithm)).await?;
        let mut eks = self.eks.lock().unwrap_or_else(|p| p.into_inner());
        eks.retain(|known| known.algorithm != algorithm);
        eks.push(ek.clone());
        Ok(ek)
    }

    /// A quote over `selection` carrying `qualifying_data` (at most 64 bytes).
    pub async fn quote(
        &self,
        qualifying_data: Vec<u8>,
        selection: PcrSelection,
    ) -> Result<Quote, TpmError> {
        self.run(move |session| session.quote(&qualifying_data, &selection))
            .await
    }

    /// `count` back-to-back TPM2_Quote commands with the AK loaded once, and
    /// the time each took: the TPM's raw quote rate, for benchmarks. Runs as
    /// one job, so nothing else reaches the TPM meanwhile.
    pub async fn time_quotes(
        &self,
        selection: PcrSelection,
        count: usize,
    ) -> Result<Vec<Duration>, TpmError> {
        self.run(move |session| session.time_quotes(&selection, count))
            .await
    }

    pub async fn read_pcrs(&self, selection: PcrSelection) -> Result<PcrValues, TpmError> {
        self.run(move |session| session.read_pcrs(&selection)).await
    }

    pub async fn active_banks(&self) -> Result<Vec<PcrBank>, TpmError> {
        self.run(|session| session.active_banks()).await
    }

    /// Recovers the secret an issuer sealed to this TPM's EK for this AK's name.
    pub async fn activate_credential(
        &self,
        credential_blob: Vec<u8>,
        encrypted_secret: Vec<u8>,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, TpmError> {
        let result = self
            .run(move |session| {
                session
                    .activate_credential(&credential_blob, &encrypted_secret)
                    .map(zeroize::Zeroizing::new)
            })
            .await;
        if result.is_err() {
            // Perhaps the EK changed (TPM2_ChangeEPS): read it afresh next time.
            self.eks.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
        result
    }

    async fn run<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&mut TpmSession) -> Result<T, TpmError> + Send + 'static,
    ) -> Result<T, TpmError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |session| {
            let result = operation(session);
            if matches!(&result, Err(e) if e.is_connection_failure()) {
                session.reset();
            }
            // The caller may have timed out and gone; nothing to do then.
            let _ = reply.send(result);
        });
        let request = async {
            self.jobs.send(job).await.map_err(|_| TpmError::OwnerGone)?;
            answer.await.map_err(|_| TpmError::OwnerGone)?
        };
        tokio::time::timeout(self.request_timeout, request)
            .await
            .map_err(|_| TpmError::Timeout {
                seconds: self.request_timeout.as_secs(),
            })?
    }
}

fn owner_main(
    config: TpmConfig,
    mut queue: mpsc::Receiver<Job>,
    ready: oneshot::Sender<Result<AkInfo, TpmError>>,
) {
    let span = info_span!("tpm", tcti = %config.tcti);
    let _entered = span.enter();
    let mut session = TpmSession::new(config.tcti.clone(), config.ek_algorithm);
    match ak_store::load_or_create(&mut session, &config.state_dir, config.ak_algorithm) {
        Ok(ak) => {
            if ready.send(Ok(ak.info())).is_err() {
                return;
            }
        }
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    }
    while let Some(job) = queue.blocking_recv() {
        // A panic inside tss-esapi must not take the daemon's only TPM thread with it.
        if catch_unwind(AssertUnwindSafe(|| job(&mut session))).is_err() {
            error!("a TPM operation panicked; reconnecting");
            session.reset();
        }
    }
}
