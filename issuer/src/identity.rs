//! The `attestd.v1.WorkloadIdentity` service (proto/attestd/v1/identity.proto,
//! docs/workload-identity.md): X.509- and JWT-SVIDs for the workloads an
//! attested daemon vouches for, the trust bundle, and its revision.
//!
//! Stateless: each mint request carries evidence signed by the daemon's
//! session key with its node SVID chain. The chain is verified against our own
//! CA; only then are the node selectors in the node SVID trusted. The workload
//! selectors come from the evidence, which is bound by its nonce to what is
//! being minted, so it cannot be replayed for another key or audience.

use std::pin::Pin;
use std::sync::Arc;

use attestd_proto::evidence::parse_envelope;
use attestd_proto::v1::workload_identity_server::WorkloadIdentity;
use attestd_proto::v1::{
    BundlesRequest, BundlesResponse, JwtSvid, MintJwtRequest, MintJwtResponse, MintX509Request,
    MintX509Response, Revision, WatchRevisionRequest, X509Svid,
};
use attestd_verifier::evidence::{
    verify_evidence, EvidenceError, EvidencePolicy, NodeTrust, VerifiedEvidence,
};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use crate::ca::{check_p256_spki, Ca, CaError};
use crate::entries::{spiffe_id_trust_domain, Entry};
use crate::jwt::{Claims, JwtError, JwtKeys};
use crate::node_selectors::{self, NodeSelectorError};
use crate::registry::{Registry, Snapshot};

/// Domain separation of the MintX509SVIDs nonce.
pub const MINT_X509_CONTEXT: &[u8] = b"attestd-mint-x509-v1";
/// Domain separation of the MintJWTSVIDs nonce.
pub const MINT_JWT_CONTEXT: &[u8] = b"attestd-mint-jwt-v1";
/// Oldest evidence accepted for a mint.
pub const MAX_EVIDENCE_AGE_SECS: u64 = 60;
/// How far ahead of our clock evidence may be dated.
pub const MAX_EVIDENCE_SKEW_SECS: u64 = 30;
pub const MAX_AUDIENCES: usize = 16;
pub const MAX_AUDIENCE_LEN: usize = 256;
/// Most SVIDs minted for one request: more matching entries is a
/// registration mistake, refused rather than silently cut short.
pub const MAX_SVIDS_PER_MINT: usize = 64;
/// Most WatchRevision streams open at once.
pub const MAX_WATCHERS: usize = 16_384;
/// Largest request the service decodes: evidence is at most 64 KiB.
pub const MAX_REQUEST_BYTES: usize = 256 << 10;
/// Room for the selectors a refusal lists, per list (gRPC messages travel in
/// an HTTP/2 header).
const SELECTOR_LIST_BUDGET: usize = 3 << 10;

/// The eat_nonce a MintX509SVIDs request's evidence must carry:
/// SHA-256("attestd-mint-x509-v1" || public_key).
pub fn mint_x509_nonce(public_key: &[u8]) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(MINT_X509_CONTEXT);
    context.update(public_key);
    digest32(context)
}

/// The eat_nonce a MintJWTSVIDs request's evidence must carry:
/// SHA-256("attestd-mint-jwt-v1" || each audience then 0x00 || spiffe_id).
/// Audiences never hold 0x00, so the encoding is unambiguous.
pub fn mint_jwt_nonce(audience: &[String], spiffe_id: &str) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(MINT_JWT_CONTEXT);
    for one in audience {
        context.update(one.as_bytes());
        context.update(&[0]);
    }
    context.update(spiffe_id.as_bytes());
    digest32(context)
}

fn digest32(context: ring::digest::Context) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("public_key: {0}")]
    PublicKey(CaError),
    #[error("{0}")]
    BadRequest(String),
    #[error("evidence refused: {0}")]
    Evidence(#[from] EvidenceError),
    #[error("node SVID: {0}")]
    NodeSelectors(#[from] NodeSelectorError),
    #[error("no registration entry matches this workload; node selectors: {node}; workload selectors: {workload}")]
    NoMatch { node: String, workload: String },
    #[error("this workload is not entitled to {spiffe_id:?} (it matches {entitled}); node selectors: {node}; workload selectors: {workload}")]
    NotEntitled {
        spiffe_id: String,
        entitled: String,
        node: String,
        workload: String,
    },
    #[error("this workload matches {count} registration entries; at most {MAX_SVIDS_PER_MINT} SVIDs are minted at once")]
    TooManyMatches { count: usize },
    #[error("issuing an X.509-SVID: {0}")]
    Issue(CaError),
    #[error(transparent)]
    Jwt(#[from] JwtError),
    #[error("too many WatchRevision streams are open (at most {MAX_WATCHERS})")]
    TooManyWatchers,
}

/// The one place identity errors become gRPC statuses.
impl From<IdentityError> for Status {
    fn from(error: IdentityError) -> Status {
        let message = error.to_string();
        match error {
            IdentityError::PublicKey(_) | IdentityError::BadRequest(_) => {
                Status::invalid_argument(message)
            }
            IdentityError::Evidence(evidence) => match evidence {
                EvidenceError::TooLarge { .. }
                | EvidenceError::Malformed(_)
                | EvidenceError::MissingClaim { .. }
                | EvidenceError::InvalidClaim { .. }
                | EvidenceError::UnsupportedAlgorithm { .. }
                | EvidenceError::UnknownCriticalHeader { .. }
                | EvidenceError::InvalidSessionKey(_) => Status::invalid_argument(message),
                EvidenceError::InvalidPolicy(_)
                | EvidenceError::Encode(_)
                | EvidenceError::Signing(_) => Status::internal(message),
                _ => Status::permission_denied(message),
            },
            IdentityError::NodeSelectors(_)
            | IdentityError::NoMatch { .. }
            | IdentityError::NotEntitled { .. } => Status::permission_denied(message),
            IdentityError::TooManyMatches { .. } => Status::failed_precondition(message),
            IdentityError::Issue(_) | IdentityError::Jwt(_) => Status::internal(message),
            IdentityError::TooManyWatchers => Status::resource_exhausted(message),
        }
    }
}

/// A workload whose evidence verified: who vouches for it and what it is.
struct Attested {
    node_id: String,
    /// Sorted, no duplicates.
    node_selectors: Vec<String>,
    /// Sorted, no duplicates.
    workload_selectors: Vec<String>,
}

pub struct IdentityService {
    trust_domain: String,
    /// "spiffe://<trust domain>": the audience mint evidence is made for.
    audience: String,
    ca: Arc<Ca>,
    node_trust: NodeTrust,
    jwt: Arc<JwtKeys>,
    /// The `iss` of JWT-SVIDs: the OIDC issuer URL, if one is configured.
    jwt_issuer: Option<String>,
    registry: Registry,
    watchers: Arc<Semaphore>,
    stopping: watch::Sender<bool>,
}

impl IdentityService {
    pub fn new(
        trust_domain: &str,
        ca: Arc<Ca>,
        jwt: Arc<JwtKeys>,
        jwt_issuer: Option<String>,
        registry: Registry,
    ) -> Result<IdentityService, String> {
        let node_trust = NodeTrust::new(&[ca.cert_der().to_vec()], trust_domain)
            .map_err(|error| error.to_string())?;
        Ok(IdentityService {
            trust_domain: trust_domain.to_owned(),
            audience: format!("spiffe://{trust_domain}"),
            ca,
            node_trust,
            jwt,
            jwt_issuer,
            registry,
            watchers: Arc::new(Semaphore::new(MAX_WATCHERS)),
            stopping: watch::channel(false).0,
        })
    }

    /// Ends every WatchRevision stream (the server calls this on shutdown,
    /// which would otherwise wait for streams that never end).
    pub fn stop_watchers(&self) {
        self.stopping.send_replace(true);
    }

    /// MintX509SVIDs without the network: `now_unix_secs` is the clock.
    pub fn mint_x509(
        &self,
        request: &MintX509Request,
        now_unix_secs: i64,
    ) -> Result<MintX509Response, IdentityError> {
        check_p256_spki(&request.public_key).map_err(IdentityError::PublicKey)?;
        let nonce = mint_x509_nonce(&request.public_key);
        let attested = self.attest(&request.evidence, &nonce, now_unix_secs)?;
        let snapshot = self.registry.current();
        let entries = self.matching(&snapshot, &attested)?;
        let mut svids = Vec::with_capacity(entries.len());
        for entry in entries {
            let issued = self
                .ca
                .issue_workload_svid(
                    &entry.spiffe_id,
                    &request.public_key,
                    &entry.dns_names,
                    entry.x509_ttl,
                )
                .map_err(|error| match error {
                    CaError::BadPublicKey { .. } => IdentityError::PublicKey(error),
                    other => IdentityError::Issue(other),
                })?;
            svids.push(X509Svid {
                spiffe_id: entry.spiffe_id.clone(),
                chain: vec![issued.der],
                expires_at: issued.not_after_unix,
                hint: entry.hint.clone(),
            });
        }
        info!(node = %attested.node_id, svids = ?svids.iter().map(|s| &s.spiffe_id).collect::<Vec<_>>(), "X.509-SVIDs minted");
        Ok(MintX509Response {
            svids,
            bundle: vec![self.ca.cert_der().to_vec()],
            revision: snapshot.revision.clone(),
        })
    }

    /// MintJWTSVIDs without the network: `now_unix_secs` is the clock, and
    /// the tokens' `iat`. A token lives its entry's `jwt_ttl_secs`, at most
    /// `[jwt] max_ttl_secs` (which the key schedule's retention relies on).
    pub fn mint_jwt(
        &self,
        request: &MintJwtRequest,
        now_unix_secs: i64,
    ) -> Result<MintJwtResponse, IdentityError> {
        check_audience(&request.audience)?;
        if !request.spiffe_id.is_empty() {
            spiffe_id_trust_domain(&request.spiffe_id)
                .map_err(|reason| IdentityError::BadRequest(format!("spiffe_id: {reason}")))?;
        }
        let nonce = mint_jwt_nonce(&request.audience, &request.spiffe_id);
        let attested = self.attest(&request.evidence, &nonce, now_unix_secs)?;
        let snapshot = self.registry.current();
        let mut entries = self.matching(&snapshot, &attested)?;
        if !request.spiffe_id.is_empty() {
            let entitled: Vec<&str> = entries.iter().map(|e| e.spiffe_id.as_str()).collect();
            entries.retain(|entry| entry.spiffe_id == request.spiffe_id);
            if entries.is_empty() {
                let error = IdentityError::NotEntitled {
                    spiffe_id: request.spiffe_id.clone(),
                    entitled: entitled.join(", "),
                    node: bounded_list(&attested.node_selectors),
                    workload: bounded_list(&attested.workload_selectors),
                };
                warn!(node = %attested.node_id, %error, "JWT-SVID refused");
                return Err(error);
            }
        }
        let max_ttl = self.jwt.schedule().max_ttl_secs;
        let mut svids = Vec::with_capacity(entries.len());
        for entry in entries {
            let ttl = entry.jwt_ttl.as_secs().min(max_ttl);
            let expires_at = now_unix_secs.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
            let token = self.jwt.sign(&Claims {
                iss: self.jwt_issuer.as_deref(),
                sub: &entry.spiffe_id,
                aud: &request.audience,
                exp: expires_at,
                iat: now_unix_secs,
            })?;
            svids.push(JwtSvid {
                spiffe_id: entry.spiffe_id.clone(),
                token,
                expires_at,
                hint: entry.hint.clone(),
            });
        }
        info!(node = %attested.node_id, svids = ?svids.iter().map(|s| &s.spiffe_id).collect::<Vec<_>>(), audience = ?request.audience, "JWT-SVIDs minted");
        Ok(MintJwtResponse {
            svids,
            revision: snapshot.revision.clone(),
        })
    }

    /// The trust bundle: public, no evidence needed. The JWK Set holds every
    /// published key, and comes with the revision it is part of.
    pub fn bundles(&self) -> BundlesResponse {
        let snapshot = self.registry.current();
        BundlesResponse {
            trust_domain: self.trust_domain.clone(),
            x509_authorities: vec![self.ca.cert_der().to_vec()],
            jwks: snapshot.jwks.to_vec(),
            revision: snapshot.revision.clone(),
        }
    }

    /// The revision in force now.
    pub fn revision(&self) -> String {
        self.registry.current().revision.clone()
    }

    /// Verifies mint evidence and reads the selectors it proves.
    fn attest(
        &self,
        evidence: &[u8],
        nonce: &[u8],
        now_unix_secs: i64,
    ) -> Result<Attested, IdentityError> {
        let policy = EvidencePolicy {
            expected_nonce: nonce.to_vec(),
            now_unix_secs,
            max_age_secs: MAX_EVIDENCE_AGE_SECS,
            max_future_skew_secs: MAX_EVIDENCE_SKEW_SECS,
            audience: Some(self.audience.clone()),
            trusted_keys: None,
            node_trust: Some(self.node_trust.clone()),
            required_selectors: Vec::new(),
            hardware_fresh: None,
        };
        let verified = verify_evidence(evidence, &policy).inspect_err(|error| {
            warn!(%error, "mint evidence refused");
        })?;
        let VerifiedEvidence { claims, node, .. } = verified;
        let Some(node) = node else {
            // verify_evidence with node_trust always names the node.
            return Err(EvidenceError::NodeNotCertified.into());
        };
        // Only now, with the chain verified to our CA, is its leaf ours.
        let envelope = parse_envelope(evidence)?;
        let leaf = envelope
            .x5chain
            .first()
            .ok_or(EvidenceError::NodeNotCertified)?;
        let mut node_selectors = node_selectors::read_der(leaf)?;
        node_selectors.sort();
        node_selectors.dedup();
        let mut workload_selectors = claims.selectors;
        if let Some(hostname) = hostname_selector(&claims.host.hostname) {
            workload_selectors.push(hostname);
        }
        workload_selectors.sort();
        workload_selectors.dedup();
        Ok(Attested {
            node_id: node.spiffe_id,
            node_selectors,
            workload_selectors,
        })
    }

    fn matching<'a>(
        &self,
        snapshot: &'a Snapshot,
        attested: &Attested,
    ) -> Result<Vec<&'a Entry>, IdentityError> {
        let entries = snapshot
            .entries
            .matching(&attested.node_selectors, &attested.workload_selectors);
        if entries.is_empty() {
            let error = IdentityError::NoMatch {
                node: bounded_list(&attested.node_selectors),
                workload: bounded_list(&attested.workload_selectors),
            };
            warn!(node = %attested.node_id, %error, "SVID refused");
            return Err(error);
        }
        if entries.len() > MAX_SVIDS_PER_MINT {
            let error = IdentityError::TooManyMatches {
                count: entries.len(),
            };
            warn!(node = %attested.node_id, %error, "SVID refused");
            return Err(error);
        }
        Ok(entries)
    }

    /// Streams the revision in force now, then each new one, until the
    /// client goes away or the server stops.
    pub fn watch(&self) -> Result<ReceiverStream<Result<Revision, Status>>, IdentityError> {
        let permit = self
            .watchers
            .clone()
            .try_acquire_owned()
            .map_err(|_| IdentityError::TooManyWatchers)?;
        let mut updates = self.registry.subscribe();
        let mut stopping = self.stopping.subscribe();
        let (sender, receiver) = mpsc::channel(2);
        tokio::spawn(async move {
            let _permit = permit;
            let mut last = String::new();
            loop {
                let revision = updates.borrow_and_update().revision.clone();
                // A change and its undoing between two looks is no change.
                if revision != last {
                    let message = Revision {
                        revision: revision.clone(),
                    };
                    if sender.send(Ok(message)).await.is_err() {
                        break;
                    }
                    last = revision;
                }
                tokio::select! {
                    changed = updates.changed() => if changed.is_err() { break },
                    _ = sender.closed() => break,
                    _ = stopping.wait_for(|stop| *stop) => break,
                }
            }
        });
        Ok(ReceiverStream::new(receiver))
    }
}

/// Audiences: 1 to [`MAX_AUDIENCES`], each 1 to [`MAX_AUDIENCE_LEN`] bytes,
/// without NUL (the nonce encoding separates audiences with it).
fn check_audience(audience: &[String]) -> Result<(), IdentityError> {
    let bad = |message: String| Err(IdentityError::BadRequest(message));
    if audience.is_empty() {
        return bad("audience: name at least one".into());
    }
    if audience.len() > MAX_AUDIENCES {
        return bad(format!(
            "audience: {} of them; at most {MAX_AUDIENCES}",
            audience.len()
        ));
    }
    for one in audience {
        if one.is_empty() || one.len() > MAX_AUDIENCE_LEN {
            return bad(format!(
                "audience: each is 1 to {MAX_AUDIENCE_LEN} bytes, not {}",
                one.len()
            ));
        }
        if one.contains('\0') {
            return bad("audience: NUL is not allowed".into());
        }
    }
    Ok(())
}

/// `host:hostname:<h>` from the evidence's host claim, when the hostname
/// needs no escaping (docs/selectors.md), so it reads exactly as the daemon
/// would write the selector. Otherwise none.
fn hostname_selector(hostname: &str) -> Option<String> {
    let plain = !hostname.is_empty()
        && hostname.len() <= 253
        && hostname.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    plain.then(|| format!("host:hostname:{hostname}"))
}

/// The selectors, space-separated, cut short (with a count of the rest) to
/// stay within an HTTP/2 header.
fn bounded_list(selectors: &[String]) -> String {
    if selectors.is_empty() {
        return "(none)".into();
    }
    let mut out = String::new();
    for (shown, selector) in selectors.iter().enumerate() {
        if out.len() + selector.len() + 1 > SELECTOR_LIST_BUDGET {
            out.push_str(&format!(" …and {} more", selectors.len() - shown));
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(selector);
    }
    out
}

type RevisionStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<Revision, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl WorkloadIdentity for IdentityService {
    async fn mint_x509svi_ds(
        &self,
        request: Request<MintX509Request>,
    ) -> Result<Response<MintX509Response>, Status> {
        Ok(Response::new(
            self.mint_x509(request.get_ref(), crate::node::unix_now())?,
        ))
    }

    async fn mint_jwtsvi_ds(
        &self,
        request: Request<MintJwtRequest>,
    ) -> Result<Response<MintJwtResponse>, Status> {
        Ok(Response::new(
            self.mint_jwt(request.get_ref(), crate::node::unix_now())?,
        ))
    }

    async fn bundles(
        &self,
        _request: Request<BundlesRequest>,
    ) -> Result<Response<BundlesResponse>, Status> {
        Ok(Response::new(IdentityService::bundles(self)))
    }

    type WatchRevisionStream = RevisionStream;

    async fn watch_revision(
        &self,
        _request: Request<WatchRevisionRequest>,
    ) -> Result<Response<Self::WatchRevisionStream>, Status> {
        Ok(Response::new(Box::pin(self.watch()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_nonces_are_domain_separated_and_bind_every_input() {
        let key = b"spki";
        assert_ne!(
            mint_x509_nonce(key),
            mint_jwt_nonce(&[String::from_utf8_lossy(key).into_owned()], "")
        );
        let aud = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let base = mint_jwt_nonce(&aud(&["a", "b"]), "spiffe://td/x");
        assert_ne!(base, mint_jwt_nonce(&aud(&["b", "a"]), "spiffe://td/x"));
        assert_ne!(base, mint_jwt_nonce(&aud(&["ab"]), "spiffe://td/x"));
        // Only NUL inside an audience or the SPIFFE ID could move a boundary,
        // and neither is accepted.
        assert_eq!(base, mint_jwt_nonce(&aud(&["a"]), "b\0spiffe://td/x"));
        assert!(check_audience(&aud(&["a\0b"])).is_err());
        assert!(spiffe_id_trust_domain("b\0spiffe://td/x").is_err());
        assert!(spiffe_id_trust_domain("spiffe://td/x\0").is_err());
        assert_ne!(base, mint_jwt_nonce(&aud(&["a", "b"]), ""));
        // The documented byte string.
        let expected = ring::digest::digest(
            &ring::digest::SHA256,
            b"attestd-mint-jwt-v1a\0b\0spiffe://td/x",
        );
        assert_eq!(base.as_slice(), expected.as_ref());
        let expected = ring::digest::digest(&ring::digest::SHA256, b"attestd-mint-x509-v1spki");
        assert_eq!(mint_x509_nonce(key).as_slice(), expected.as_ref());
    }

    #[test]
    fn audiences_are_bounded_and_never_hold_nul() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_audience(&list(&["spiffe://example.org/db"])).is_ok());
        assert!(check_audience(&list(&[])).is_err());
        assert!(check_audience(&list(&[""])).is_err());
        assert!(check_audience(&list(&["a\0"])).is_err());
        assert!(check_audience(&["a".repeat(MAX_AUDIENCE_LEN)]).is_ok());
        assert!(check_audience(&["a".repeat(MAX_AUDIENCE_LEN + 1)]).is_err());
        assert!(check_audience(&vec!["a".to_owned(); MAX_AUDIENCES]).is_ok());
        assert!(check_audience(&vec!["a".to_owned(); MAX_AUDIENCES + 1]).is_err());
    }

    #[test]
    fn only_a_hostname_that_needs_no_escaping_becomes_a_selector() {
        assert_eq!(
            hostname_selector("node-1.example").as_deref(),
            Some("host:hostname:node-1.example")
        );
        for odd in ["", "a b", "a\\nb", "a\nb", "nöde", &"a".repeat(254)] {
            assert_eq!(hostname_selector(odd), None, "{odd:?}");
        }
    }

    #[test]
    fn a_long_selector_list_is_cut_short_and_says_how_many_are_left() {
        assert_eq!(bounded_list(&[]), "(none)");
        assert_eq!(
            bounded_list(&["a:b:c".to_owned(), "d:e:f".to_owned()]),
            "a:b:c d:e:f"
        );
        let many: Vec<String> = (0..1000).map(|i| format!("unix:gid:{i:04}")).collect();
        let listed = bounded_list(&many);
        assert!(
            listed.len() <= SELECTOR_LIST_BUDGET + 32,
            "{}",
            listed.len()
        );
        assert!(listed.starts_with("unix:gid:0000 unix:gid:0001"));
        let shown = listed.matches("unix:gid:").count();
        assert!(
            listed.ends_with(&format!(" …and {} more", 1000 - shown)),
            "{listed}"
        );
    }
}
