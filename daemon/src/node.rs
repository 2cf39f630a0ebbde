//! Node attestation, the daemon's side: prove this node to the issuer with the
//! TPM (EK, AK activation, a quote bound to the issuer's nonce and our session
//! key, the boot and IMA logs) and hold the node SVID it returns. Renewal is a
//! whole new exchange with a fresh quote, at half the SVID's lifetime; while the
//! issuer is unreachable the daemon keeps retrying with backoff and keeps serving.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use attestd_attestors::tpm::{read_log, EkAlgorithm, PcrBank, PcrSelection, Tpm, TpmError};
use attestd_proto::v1::node_attestation_client::NodeAttestationClient;
use attestd_proto::v1::workload_identity_client::WorkloadIdentityClient;
use attestd_proto::v1::{AttestNodeRequest, ChallengeRequest, ChallengeResponse, PcrValue};
use ring::rand::SecureRandom;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tracing::{info, warn};

/// Largest message exchanged with the issuer (event logs can be several MiB).
const MAX_MESSAGE_BYTES: usize = 32 << 20;
/// Largest log read from securityfs.
const MAX_LOG_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("issuer CA bundle {}: {reason}", path.display())]
    Bundle { path: PathBuf, reason: String },
    #[error("issuer URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot reach the issuer: {0}")]
    Connect(String),
    /// The issuer answered and said no; the message names the check that failed.
    #[error("the issuer refused: {message}")]
    Refused { code: tonic::Code, message: String },
    #[error("TPM: {0}")]
    Tpm(#[from] TpmError),
    #[error("the issuer's challenge is unusable: {0}")]
    BadChallenge(String),
    #[error("the issuer's answer is unusable: {0}")]
    BadAnswer(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// What the issuer granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSvid {
    pub spiffe_id: String,
    /// DER: the node SVID for our session key, then intermediates.
    pub chain: Vec<Vec<u8>>,
    /// DER CA certificates of the issuer.
    pub bundle: Vec<Vec<u8>>,
    pub expires_at: i64,
    pub obtained_at: i64,
    pub decisions: Vec<String>,
}

/// A TLS connection to the issuer, trusting only the configured CA bundle.
#[derive(Clone)]
pub struct IssuerClient {
    client: NodeAttestationClient<Channel>,
    identity: WorkloadIdentityClient<Channel>,
}

impl IssuerClient {
    /// Connects lazily: the first call opens the connection, so a down issuer
    /// is an error at that call, not here.
    pub fn new(
        url: &str,
        ca_bundle_pem: &[u8],
        server_name: Option<&str>,
    ) -> Result<IssuerClient, NodeError> {
        let bad_url = |reason: String| NodeError::Url {
            url: url.to_owned(),
            reason,
        };
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_bundle_pem));
        if let Some(name) = server_name {
            tls = tls.domain_name(name);
        }
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| bad_url(e.to_string()))?
            .tls_config(tls)
            .map_err(|e| bad_url(e.to_string()))?
            .connect_timeout(Duration::from_secs(10));
        let channel = endpoint.connect_lazy();
        let client = NodeAttestationClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let identity = WorkloadIdentityClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(IssuerClient { client, identity })
    }

    /// The issuer's workload identity service, on the same connection.
    pub fn identity(&self) -> WorkloadIdentityClient<Channel> {
        self.identity.clone()
    }

    pub async fn challenge(
        &self,
        request: ChallengeRequest,
    ) -> Result<ChallengeResponse, NodeError> {
        self.client
            .clone()
            .challenge(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(status_error)
    }

    pub async fn attest(
        &self,
        request: AttestNodeRequest,
    ) -> Result<attestd_proto::v1::AttestNodeResponse, NodeError> {
        self.client
            .clone()
            .attest(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(status_error)
    }
}

fn status_error(status: tonic::Status) -> NodeError {
    let message = status.message().to_owned();
    match status.code() {
        // The issuer was not reached (connection refused, TLS failure).
        tonic::Code::Unavailable => NodeError::Connect(message),
        tonic::Code::Unknown if message.contains("transport") => NodeError::Connect(message),
        code => NodeError::Refused { code, message },
    }
}

/// Where the logs sent with each quote come from.
#[derive(Clone, Debug)]
pub struct LogPaths {
    pub boot: PathBuf,
    pub ima: PathBuf,
}

/// Step 1: what the node presents.
pub async fn challenge_request(
    tpm: &Tpm,
    ek_algorithm: EkAlgorithm,
    session_public_key: &[u8],
) -> Result<ChallengeRequest, NodeError> {
    let ek = tpm.ek(ek_algorithm).await?;
    Ok(ChallengeRequest {
        ek_public: ek.public,
        ek_certificate: ek.certificate.unwrap_or_default(),
        ek_chain: ek.chain,
        ak_public: tpm.ak().public.clone(),
        session_public_key: session_public_key.to_vec(),
    })
}

/// Step 2: activate the credential, quote what the issuer asked for with
/// `SHA-256(nonce || session public key)`, and attach the logs.
pub async fn answer_challenge(
    tpm: &Tpm,
    challenge: &ChallengeResponse,
    session_public_key: &[u8],
    logs: &LogPaths,
) -> Result<AttestNodeRequest, NodeError> {
    let secret = tpm
        .activate_credential(
            challenge.credential_blob.clone(),
            challenge.encrypted_secret.clone(),
        )
        .await?;
    let mut banks = Vec::new();
    for bank in &challenge.pcrs {
        let pcr_bank = u16::try_from(bank.hash_algorithm)
            .ok()
            .and_then(PcrBank::from_alg_id)
            .ok_or_else(|| {
                NodeError::BadChallenge(format!("unknown PCR bank {:#06x}", bank.hash_algorithm))
            })?;
        let indices = bank
            .pcrs
            .iter()
            .map(|&i| u8::try_from(i).ok().filter(|&i| i < 24))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| NodeError::BadChallenge("a PCR index above 23".into()))?;
        banks.push((pcr_bank, indices));
    }
    let selection = PcrSelection::new(banks).map_err(NodeError::BadChallenge)?;
    let mut qualifying = challenge.nonce.clone();
    qualifying.extend_from_slice(session_public_key);
    let qualifying = ring::digest::digest(&ring::digest::SHA256, &qualifying)
        .as_ref()
        .to_vec();
    let quote = tpm.quote(qualifying, selection).await?;
    let pcr_values = quote
        .pcrs
        .banks
        .iter()
        .flat_map(|bank| {
            bank.values.iter().map(|(index, value)| PcrValue {
                hash_algorithm: u32::from(bank.bank.alg_id()),
                index: u32::from(*index),
                value: value.clone(),
            })
        })
        .collect();
    let (boot, ima) = {
        let logs = logs.clone();
        tokio::task::spawn_blocking(move || {
            (
                read_log(&logs.boot, MAX_LOG_BYTES),
                read_log(&logs.ima, MAX_LOG_BYTES),
            )
        })
        .await
        .map_err(|e| NodeError::BadAnswer(e.to_string()))?
    };
    Ok(AttestNodeRequest {
        challenge: challenge.challenge.clone(),
        activated_secret: secret.to_vec(),
        quote_attest: quote.attest,
        quote_signature: quote.signature,
        pcr_values,
        boot_event_log: boot?.unwrap_or_default(),
        ima_log: ima?.unwrap_or_default(),
    })
}

/// One whole exchange: challenge, answer, node SVID.
pub async fn attest_node(
    tpm: &Tpm,
    ek_algorithm: EkAlgorithm,
    issuer: &IssuerClient,
    session_public_key: &[u8],
    logs: &LogPaths,
) -> Result<NodeSvid, NodeError> {
    let request = challenge_request(tpm, ek_algorithm, session_public_key).await?;
    let challenge = issuer.challenge(request).await?;
    let answer = answer_challenge(tpm, &challenge, session_public_key, logs).await?;
    let granted = issuer.attest(answer).await?;
    if granted.svid_chain.is_empty() {
        return Err(NodeError::BadAnswer("no SVID in the answer".into()));
    }
    Ok(NodeSvid {
        spiffe_id: granted.spiffe_id,
        chain: granted.svid_chain,
        bundle: granted.bundle,
        expires_at: granted.expires_at,
        obtained_at: unix_now(),
        decisions: granted.policy_decisions,
    })
}

/// The node's standing, shared with the health check.
#[derive(Debug)]
pub struct NodeState {
    svid: RwLock<Option<Arc<NodeSvid>>>,
    last_error: RwLock<Option<String>>,
    /// Counts outcomes (grants and failures), so others can wait for the next.
    outcomes: tokio::sync::watch::Sender<u64>,
}

impl Default for NodeState {
    fn default() -> Self {
        NodeState {
            svid: RwLock::default(),
            last_error: RwLock::default(),
            outcomes: tokio::sync::watch::channel(0).0,
        }
    }
}

impl NodeState {
    /// Changes after every attestation attempt, successful or not.
    pub fn outcomes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.outcomes.subscribe()
    }

    pub fn svid(&self) -> Option<Arc<NodeSvid>> {
        self.svid.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A node SVID that has not expired. Cheap: evidence signing asks for it
    /// on every request, to put the chain into the evidence.
    pub fn current_svid(&self) -> Option<Arc<NodeSvid>> {
        self.svid().filter(|svid| svid.expires_at > unix_now())
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn granted(&self, svid: NodeSvid) {
        *self.svid.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(svid));
        *self.last_error.write().unwrap_or_else(|p| p.into_inner()) = None;
        self.outcomes.send_modify(|count| *count += 1);
    }

    fn failed(&self, error: &NodeError) {
        *self.last_error.write().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
        self.outcomes.send_modify(|count| *count += 1);
    }
}

/// How the renewal loop waits.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait before retry number `attempt` (0-based): doubling from
    /// `initial`, capped at `max`, then scaled by a random factor in [0.5, 1.0)
    /// so that a fleet does not retry in step after an issuer outage.
    pub fn delay(&self, attempt: u32, random: u32) -> Duration {
        let doubled = self
            .initial
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX));
        let capped = doubled.min(self.max);
        let jitter = 0.5 + f64::from(random % 1000) / 2000.0;
        capped.mul_f64(jitter)
    }
}

/// When to renew an SVID obtained at `obtained_at` that expires at `expires_at`:
/// half-way through its life.
pub fn renew_after(obtained_at: i64, expires_at: i64, now: i64) -> Duration {
    let half = obtained_at + (expires_at - obtained_at) / 2;
    Duration::from_secs(half.saturating_sub(now).max(0) as u64)
}

/// Everything the attestation loop needs.
pub struct NodeAttester {
    pub tpm: Tpm,
    pub ek_algorithm: EkAlgorithm,
    pub issuer: IssuerClient,
    pub session_public_key: Vec<u8>,
    pub logs: LogPaths,
    pub backoff: Backoff,
    /// One whole exchange.
    pub timeout: Duration,
}

/// Attests now, then renews at half the SVID's lifetime, forever. Failures are
/// logged and retried with backoff; the daemon keeps serving meanwhile.
pub async fn keep_attested(attester: NodeAttester, state: Arc<NodeState>) {
    let NodeAttester {
        tpm,
        ek_algorithm,
        issuer,
        session_public_key,
        logs,
        backoff,
        timeout,
    } = attester;
    let rng = ring::rand::SystemRandom::new();
    let mut failures: u32 = 0;
    loop {
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(
            timeout,
            attest_node(&tpm, ek_algorithm, &issuer, &session_public_key, &logs),
        )
        .await
        .unwrap_or(Err(NodeError::Timeout(timeout)));
        let wait = match outcome {
            Ok(svid) => {
                failures = 0;
                let wait = renew_after(svid.obtained_at, svid.expires_at, unix_now());
                info!(
                    spiffe_id = %svid.spiffe_id,
                    expires_at = svid.expires_at,
                    took_ms = started.elapsed().as_millis() as u64,
                    renew_in_s = wait.as_secs(),
                    decisions = ?svid.decisions,
                    "node attested"
                );
                state.granted(svid);
                wait
            }
            Err(error) => {
                let mut random = [0u8; 4];
                let _ = rng.fill(&mut random);
                let wait = backoff.delay(failures, u32::from_le_bytes(random));
                failures = failures.saturating_add(1);
                warn!(%error, retry_in_ms = wait.as_millis() as u64, "node attestation failed");
                state.failed(&error);
                wait
            }
        };
        tokio::time::sleep(wait).await;
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "node_test.rs"]
mod tests;
