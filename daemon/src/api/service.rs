//! `attestd.v1.Attestation`: Describe and Attest for the calling process. The caller
//! is taken from the connection (kernel credentials), never from the request.

use std::sync::Arc;

use attestd_proto::evidence::{BinaryClaim, EvidenceClaims, HostClaims, NONCE_MAX, NONCE_MIN};
use attestd_proto::v1::attestation_server::Attestation;
use attestd_proto::v1::{
    AttestRequest, AttestResponse, AttestorResult, DescribeRequest, DescribeResponse, StatsRequest,
    StatsResponse,
};
use tonic::{Request, Response, Status};
use tracing::{debug, warn};

use attestd_verifier::merkle;

use super::socket::PeerInfo;
use crate::fresh::FreshQuoter;
use crate::node::NodeState;
use crate::signer::EvidenceSigner;
use crate::workload::{WorkloadAttestation, WorkloadAttestor, WorkloadError};

/// Longest audience string accepted.
pub const MAX_AUDIENCE_BYTES: usize = 256;

/// Turns an attested caller into signed evidence: the claims the daemon saw,
/// signed with the session key, with the node SVID chain once the node is
/// attested. Shared by `Attest` and by SVID minting.
pub struct EvidenceMaker {
    signer: Arc<EvidenceSigner>,
    /// 0x01 ‖ SHA-256(EK SubjectPublicKeyInfo), when a TPM is configured.
    ueid: Option<Vec<u8>>,
    /// Its node SVID certifies the signer's key; evidence carries it.
    node: Arc<NodeState>,
    host: HostClaims,
    /// Batches hardware-fresh requests into TPM quotes; `None` without a TPM.
    fresh: Option<Arc<FreshQuoter>>,
}

impl EvidenceMaker {
    pub fn new(
        signer: Arc<EvidenceSigner>,
        ueid: Option<Vec<u8>>,
        node: Arc<NodeState>,
        host: &attestd_attestors::host::HostInfo,
        fresh: Option<Arc<FreshQuoter>>,
    ) -> Self {
        EvidenceMaker {
            signer,
            ueid,
            node,
            fresh,
            host: HostClaims {
                hostname: host.hostname.clone(),
                kernel: host.kernel.clone(),
                os: host.os.clone(),
                boot_id: host.boot_id.clone(),
            },
        }
    }

    /// The claims for `attestation`, bound to `nonce` and `audience`.
    pub fn claims(
        &self,
        attestation: &WorkloadAttestation,
        nonce: Vec<u8>,
        audience: Option<String>,
    ) -> EvidenceClaims {
        EvidenceClaims {
            nonce,
            ueid: self.ueid.clone(),
            issued_at: unix_now(),
            selectors: attestation
                .selectors
                .iter()
                .map(ToString::to_string)
                .collect(),
            binary: attestation
                .binary
                .as_ref()
                .map(|(path, digest)| BinaryClaim {
                    path: path.to_string_lossy().into_owned(),
                    sha256: digest.sha256,
                }),
            host: self.host.clone(),
            audience,
        }
    }

    /// Signs `claims`, with the node SVID chain when the node holds one.
    pub fn sign(&self, claims: &EvidenceClaims) -> Result<Vec<u8>, Status> {
        let node_svid = self.node.current_svid();
        let node_chain = node_svid.as_ref().map_or(&[][..], |svid| &svid.chain[..]);
        self.signer
            .sign(claims, node_chain)
            .map_err(|error| Status::internal(error.to_string()))
    }

    /// Hardware-fresh evidence for `claims`: their encoding's leaf goes into
    /// the next batch, and the evidence carries that batch's quote and this
    /// leaf's inclusion proof. Waits at most `deadline` for the quote.
    pub async fn sign_fresh(
        &self,
        claims: &EvidenceClaims,
        deadline: std::time::Duration,
    ) -> Result<Vec<u8>, Status> {
        let quoter = self.fresh.as_ref().ok_or_else(|| {
            Status::failed_precondition(
                "hardware-fresh evidence needs a TPM, and this daemon runs without one (tpm.enabled = false)",
            )
        })?;
        let payload = claims
            .to_cbor()
            .map_err(|error| Status::internal(error.to_string()))?;
        let leaf = merkle::leaf_hash(&claims.nonce, &merkle::claims_digest(&payload))
            .map_err(|error| Status::invalid_argument(error.to_string()))?;
        let fresh = tokio::time::timeout(deadline, quoter.quote(leaf))
            .await
            .map_err(|_| Status::deadline_exceeded("no TPM quote within the request deadline"))?
            .map_err(|error| Status::unavailable(error.to_string()))?;
        let node_svid = self.node.current_svid();
        let node_chain = node_svid.as_ref().map_or(&[][..], |svid| &svid.chain[..]);
        self.signer
            .sign_fresh(payload, node_chain, &fresh)
            .map_err(|error| Status::internal(error.to_string()))
    }

    pub fn fresh(&self) -> Option<&FreshQuoter> {
        self.fresh.as_deref()
    }

    pub fn node(&self) -> &NodeState {
        &self.node
    }
}

pub struct AttestationService {
    workload: Arc<WorkloadAttestor>,
    evidence: Arc<EvidenceMaker>,
    /// The request deadline, which bounds the wait for a hardware-fresh quote.
    deadline: std::time::Duration,
    /// The SVID cache, whose counters `Stats` reports (None without an issuer).
    identities: Option<Arc<crate::identity::Identities>>,
}

impl AttestationService {
    pub fn new(
        workload: Arc<WorkloadAttestor>,
        evidence: Arc<EvidenceMaker>,
        deadline: std::time::Duration,
    ) -> Self {
        AttestationService {
            workload,
            evidence,
            deadline,
            identities: None,
        }
    }

    /// Reports the SVID cache's counters in `Stats`.
    pub fn with_identities(mut self, identities: Option<Arc<crate::identity::Identities>>) -> Self {
        self.identities = identities;
        self
    }

    /// Every value `Stats` returns, by name.
    pub fn stats(&self) -> std::collections::HashMap<String, u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut values = std::collections::HashMap::new();
        if let Some(identities) = &self.identities {
            let stats = identities.stats();
            let (x509_sets, _) = identities.cached();
            let (jwt_sets, held) = identities.jwt_cached_and_held();
            for (name, value) in [
                ("svid_x509_mints_total", stats.x509_mints.load(Relaxed)),
                ("svid_jwt_mints_total", stats.jwt_mints.load(Relaxed)),
                (
                    "svid_processes_exited_total",
                    stats.processes_exited.load(Relaxed),
                ),
                (
                    "svid_entries_dropped_total",
                    stats.entries_dropped.load(Relaxed),
                ),
                ("svid_x509_sets_cached", x509_sets as u64),
                ("svid_jwt_sets_cached", jwt_sets as u64),
                ("svid_selector_sets_held", held as u64),
            ] {
                values.insert(name.to_owned(), value);
            }
        }
        values
    }
}

fn peer<T>(request: &Request<T>) -> Result<PeerInfo, Status> {
    request
        .extensions()
        .get::<PeerInfo>()
        .cloned()
        .ok_or_else(|| Status::internal("connection has no identified peer"))
}

/// The single place workload errors become gRPC statuses.
fn status(error: WorkloadError) -> Status {
    match error {
        WorkloadError::CallerGone => Status::unauthenticated(error.to_string()),
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tonic::async_trait]
impl Attestation for AttestationService {
    async fn stats(
        &self,
        _request: Request<StatsRequest>,
    ) -> Result<Response<StatsResponse>, Status> {
        Ok(Response::new(StatsResponse {
            values: self.stats(),
        }))
    }

    async fn describe(
        &self,
        request: Request<DescribeRequest>,
    ) -> Result<Response<DescribeResponse>, Status> {
        let PeerInfo(peer) = peer(&request)?;
        let attestation = self.workload.attest(&peer).await.map_err(status)?;
        Ok(Response::new(DescribeResponse {
            selectors: attestation
                .selectors
                .iter()
                .map(ToString::to_string)
                .collect(),
            attestors: attestation
                .outcomes
                .iter()
                .map(|outcome| AttestorResult {
                    name: outcome.name.to_owned(),
                    ok: outcome.error.is_none(),
                    error: outcome.error.clone().unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn attest(
        &self,
        request: Request<AttestRequest>,
    ) -> Result<Response<AttestResponse>, Status> {
        let PeerInfo(peer) = peer(&request)?;
        let request = request.into_inner();
        if !(NONCE_MIN..=NONCE_MAX).contains(&request.nonce.len()) {
            return Err(Status::invalid_argument(format!(
                "nonce is {} bytes; it must be {NONCE_MIN} to {NONCE_MAX}",
                request.nonce.len()
            )));
        }
        if request.audience.len() > MAX_AUDIENCE_BYTES
            || request.audience.chars().any(char::is_control)
        {
            return Err(Status::invalid_argument(format!(
                "audience must be at most {MAX_AUDIENCE_BYTES} bytes of printable text"
            )));
        }
        let attestation = self.workload.attest(&peer).await.map_err(|error| {
            warn!(pid = peer.pid, uid = peer.uid, %error, "attestation refused");
            status(error)
        })?;
        let audience = (!request.audience.is_empty()).then_some(request.audience);
        let claims = self.evidence.claims(&attestation, request.nonce, audience);
        let evidence = if request.hardware_fresh {
            self.evidence.sign_fresh(&claims, self.deadline).await?
        } else {
            self.evidence.sign(&claims)?
        };
        // At debug: an info line per attestation would cost a write per request
        // and flood the journal of a busy host.
        debug!(
            pid = peer.pid,
            uid = peer.uid,
            selectors = claims.selectors.len(),
            "evidence issued"
        );
        Ok(Response::new(AttestResponse { evidence }))
    }
}
