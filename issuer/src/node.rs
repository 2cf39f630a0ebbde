//! The `attestd.v1.NodeAttestation` service: from a node's TPM identity to a
//! node SVID. Every check, in order, is in docs/node-attestation.md; each
//! refusal tells the node which check failed and why.

use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use attestd_proto::v1::node_attestation_server::NodeAttestation;
use attestd_proto::v1::{
    AttestNodeRequest, AttestNodeResponse, ChallengeRequest, ChallengeResponse, PcrBankSelection,
};
use attestd_verifier::{
    check_ak_attributes, make_credential, verify_quote, HashAlg, PcrValues, TpmPublic,
};
use ring::rand::SecureRandom;
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use crate::ca::Ca;
use crate::challenge::{ChallengeError, ChallengeRecord, Sealer};
use crate::config::Config;
use crate::ek_trust::{ek_hash, EkTrust};
use crate::logs;
use crate::node_selectors;
use crate::policy::{NodeFacts, NodePolicy};

/// Largest EK certificate chain a node may send.
const MAX_EK_CHAIN: usize = 8;
const NONCE_LEN: usize = 32;
const SECRET_LEN: usize = 32;

pub struct NodeService {
    trust_domain: String,
    ca: Arc<Ca>,
    ek_trust: Arc<RwLock<EkTrust>>,
    policy: NodePolicy,
    sealer: Sealer,
    config: Config,
    rng: ring::rand::SystemRandom,
}

impl NodeService {
    pub fn new(
        config: Config,
        ca: Arc<Ca>,
        ek_trust: Arc<RwLock<EkTrust>>,
    ) -> Result<Self, String> {
        let policy = config.node_policy().map_err(|e| e.to_string())?;
        let sealer = Sealer::new(&ca.key_der())?;
        Ok(NodeService {
            trust_domain: config.trust_domain.clone(),
            ca,
            ek_trust,
            policy,
            sealer,
            config,
            rng: ring::rand::SystemRandom::new(),
        })
    }

    /// Forgets used nonces of expired challenges; the server calls this now and then.
    pub fn prune(&self) {
        self.sealer.prune(unix_now());
    }

    fn random<const N: usize>(&self) -> Result<[u8; N], Status> {
        let mut bytes = [0u8; N];
        self.rng
            .fill(&mut bytes)
            .map_err(|_| Status::internal("the system random generator failed"))?;
        Ok(bytes)
    }

    fn challenge(&self, request: ChallengeRequest) -> Result<ChallengeResponse, Status> {
        let ek = TpmPublic::parse(&request.ek_public)
            .map_err(|e| Status::invalid_argument(format!("ek_public: {e}")))?;
        let ak = TpmPublic::parse(&request.ak_public)
            .map_err(|e| Status::invalid_argument(format!("ak_public: {e}")))?;
        check_ak_attributes(&ak)
            .map_err(|e| refuse(format!("the AK is not a restricted TPM signing key: {e}")))?;
        let ek_spki = ek
            .spki_der()
            .ok_or_else(|| Status::invalid_argument("ek_public: unsupported key type"))?;
        if request.session_public_key.len() != 65 || request.session_public_key[0] != 0x04 {
            return Err(Status::invalid_argument(
                "session_public_key must be an uncompressed P-256 point (65 bytes)",
            ));
        }
        if request.ek_chain.len() > MAX_EK_CHAIN {
            return Err(Status::invalid_argument(format!(
                "ek_chain has {} certificates; at most {MAX_EK_CHAIN}",
                request.ek_chain.len()
            )));
        }
        let hash = ek_hash(&ek_spki);
        let now = unix_now();
        let verdict = {
            let trust = self.ek_trust.read().unwrap_or_else(|p| p.into_inner());
            let certificate =
                (!request.ek_certificate.is_empty()).then_some(&request.ek_certificate[..]);
            trust.check(
                self.policy.ek_trust,
                &ek_spki,
                certificate,
                &request.ek_chain,
                now,
            )
        }
        .map_err(|reason| {
            warn!(ek = %hex::encode(hash), %reason, "refused: EK not trusted");
            refuse(format!("EK not trusted: {reason}"))
        })?;

        let secret = zeroize::Zeroizing::new(self.random::<SECRET_LEN>()?);
        let made =
            make_credential(&ek, &ak.name(), &secret[..], &mut rand_core::OsRng).map_err(|e| {
                Status::invalid_argument(format!("cannot make a credential for this EK: {e}"))
            })?;
        let nonce = self.random::<NONCE_LEN>()?;
        let expires_at = now + self.config.challenge_ttl().as_secs() as i64;
        let record = ChallengeRecord {
            expires_at,
            nonce: nonce.to_vec(),
            secret_sha256: sha256(&secret[..]),
            ek_hash: hash.to_vec(),
            ek_verdict: verdict.to_string(),
            ak_public: request.ak_public,
            session_public_key: request.session_public_key,
        };
        let challenge = self.sealer.seal(&record).map_err(Status::internal)?;
        info!(ek = %hex::encode(hash), verdict = %verdict, "challenge issued");
        Ok(ChallengeResponse {
            challenge,
            credential_blob: made.credential_blob,
            encrypted_secret: made.encrypted_secret,
            nonce: nonce.to_vec(),
            pcrs: self
                .policy
                .quote_pcrs
                .iter()
                .map(|selection| PcrBankSelection {
                    hash_algorithm: u32::from(selection.hash.to_tpm()),
                    pcrs: selection.pcrs.iter().map(|&i| u32::from(i)).collect(),
                })
                .collect(),
            expires_at,
        })
    }

    fn attest(&self, request: AttestNodeRequest) -> Result<AttestNodeResponse, Status> {
        let now = unix_now();
        let record = self
            .sealer
            .open(&request.challenge, now)
            .map_err(challenge_status)?;
        let node = hex::encode(&record.ek_hash);
        let refused = |reason: String| {
            warn!(ek = %node, %reason, "refused");
            refuse(reason)
        };
        // Single use from here on, whatever the outcome.
        self.sealer
            .consume(&record, now)
            .map_err(|e| refused(e.to_string()))?;

        if !attestd_verifier::constant_time::eq(
            &sha256(&request.activated_secret),
            &record.secret_sha256,
        ) {
            return Err(refused(
                "AK activation failed: the secret does not match, so the AK is not proven to be in the TPM whose EK was presented"
                    .into(),
            ));
        }

        let ak =
            TpmPublic::parse(&record.ak_public).map_err(|e| Status::internal(e.to_string()))?;
        let mut pcrs = PcrValues::new();
        for value in &request.pcr_values {
            let bank = u16::try_from(value.hash_algorithm)
                .ok()
                .and_then(HashAlg::from_tpm)
                .ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "pcr_values: unknown hash algorithm {:#06x}",
                        value.hash_algorithm
                    ))
                })?;
            let index = u8::try_from(value.index)
                .ok()
                .filter(|&index| index < 24)
                .ok_or_else(|| {
                    Status::invalid_argument(format!("pcr_values: index {}", value.index))
                })?;
            pcrs.insert(bank, index, value.value.clone());
        }
        let mut qualifying = record.nonce.clone();
        qualifying.extend_from_slice(&record.session_public_key);
        let qualifying = sha256(&qualifying);
        let quote = verify_quote(
            &ak,
            &request.quote_attest,
            &request.quote_signature,
            &qualifying,
            &pcrs,
        )
        .map_err(|e| refused(format!("quote rejected: {e}")))?;
        for wanted in &self.policy.quote_pcrs {
            for index in &wanted.pcrs {
                if quote.pcr_values.get(wanted.hash, *index).is_none() {
                    return Err(refused(format!(
                        "the quote does not cover PCR {index} of bank {}",
                        crate::policy::bank_name(wanted.hash)
                    )));
                }
            }
        }

        let boot = if request.boot_event_log.is_empty() {
            None
        } else {
            Some(
                logs::boot_facts(&request.boot_event_log, &quote.pcr_values)
                    .map_err(|reason| refused(format!("boot event log rejected: {reason}")))?,
            )
        };
        let ima_files = if request.ima_log.is_empty() {
            None
        } else {
            logs::check_ima(&request.ima_log, &quote.pcr_values)
                .map_err(|reason| refused(format!("IMA log rejected: {reason}")))?
        };
        let mut decisions = vec![
            format!("EK: {}", record.ek_verdict),
            "AK activated".to_owned(),
            "quote verified".to_owned(),
        ];
        if boot.is_some() {
            decisions.push("boot event log replays to the quoted PCRs".into());
        }
        if let Some(files) = ima_files {
            decisions.push(format!("IMA log replays to PCR 10 ({files} files)"));
        }
        let rules = self
            .policy
            .evaluate(NodeFacts {
                pcrs: &quote.pcr_values,
                boot: boot.as_ref(),
            })
            .map_err(|failed| refused(failed.to_string()))?;
        decisions.extend(rules);

        let spiffe_id = format!("spiffe://{}/attestd/node/{node}", self.trust_domain);
        // What was proved here travels in the SVID, for registration entries
        // to match when the node asks for workload SVIDs.
        let node_selectors =
            node_selectors::collect(&record.ek_hash, &quote.pcr_values, boot.as_ref());
        let svid = self
            .ca
            .issue_node_svid(
                &spiffe_id,
                &record.session_public_key,
                self.config.node_svid_ttl(),
                &node_selectors,
                Some(&ak.name()),
            )
            .map_err(|e| Status::internal(e.to_string()))?;
        info!(spiffe_id, expires_at = svid.not_after_unix, decisions = ?decisions, "node attested");
        Ok(AttestNodeResponse {
            spiffe_id,
            svid_chain: vec![svid.der],
            bundle: vec![self.ca.cert_der().to_vec()],
            expires_at: svid.not_after_unix,
            policy_decisions: decisions,
        })
    }
}

#[tonic::async_trait]
impl NodeAttestation for NodeService {
    async fn challenge(
        &self,
        request: Request<ChallengeRequest>,
    ) -> Result<Response<ChallengeResponse>, Status> {
        self.challenge(request.into_inner()).map(Response::new)
    }

    async fn attest(
        &self,
        request: Request<AttestNodeRequest>,
    ) -> Result<Response<AttestNodeResponse>, Status> {
        self.attest(request.into_inner()).map(Response::new)
    }
}

/// A refusal the node can act on: the message names the check that failed.
fn refuse(reason: String) -> Status {
    Status::permission_denied(reason)
}

fn challenge_status(error: ChallengeError) -> Status {
    match error {
        ChallengeError::Busy => Status::resource_exhausted(error.to_string()),
        ChallengeError::Expired { .. } => Status::failed_precondition(error.to_string()),
        ChallengeError::Forged | ChallengeError::Replayed => {
            Status::permission_denied(error.to_string())
        }
    }
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
