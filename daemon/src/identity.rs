//! Workload SVIDs: minted by the issuer for what this daemon attested, cached
//! per selector set, rotated at half their lifetime, and streamed to
//! workloads through the SPIFFE Workload API (`api::spiffe`).
//!
//! Each mint is proven with workload evidence signed by the session key and
//! carrying the node SVID chain (docs/workload-identity.md). Private keys are
//! made here, live only in this process's memory, and leave it only towards
//! the workload they were made for.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attestd_proto::v1::workload_identity_client::WorkloadIdentityClient;
use attestd_proto::v1::{BundlesRequest, MintJwtRequest, MintX509Request, WatchRevisionRequest};
use ring::digest::{digest, SHA256};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use tokio::sync::watch;
use tonic::transport::Channel;
use tonic::Status;
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use crate::api::peer::Peer;
use crate::api::service::{unix_now, EvidenceMaker};
use crate::node::renew_after;
use crate::workload::WorkloadAttestation;

/// Domain separation of the mint nonces (identity.proto).
const X509_NONCE_DOMAIN: &[u8] = b"attestd-mint-x509-v1";
const JWT_NONCE_DOMAIN: &[u8] = b"attestd-mint-jwt-v1";
/// Retries after a failed rotation, doubling up to the maximum.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// One call to the issuer, all included.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Names the selector set a cache entry is for: SHA-256 over the sorted,
/// unique selectors, each followed by a NUL (selectors hold no NUL). 32 bytes
/// instead of a copy of every selector string per entry.
pub type SelectorKey = [u8; 32];

/// One X.509-SVID with its private key.
pub struct MintedX509 {
    pub spiffe_id: String,
    /// DER, leaf first.
    pub chain: Vec<Vec<u8>>,
    /// PKCS#8 DER. Wiped when dropped.
    pub key: Zeroizing<Vec<u8>>,
    pub expires_at: i64,
    pub hint: String,
}

impl std::fmt::Debug for MintedX509 {
    // Never print the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedX509")
            .field("spiffe_id", &self.spiffe_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Every X.509-SVID one selector set is entitled to, minted together.
#[derive(Debug)]
pub struct X509Set {
    pub svids: Vec<MintedX509>,
    /// The trust domain's CA certificates (DER), shared by every set minted
    /// under the same bundle.
    pub bundle: Arc<Vec<Vec<u8>>>,
    pub minted_at: i64,
    /// The earliest notAfter among `svids`.
    pub expires_at: i64,
}

/// What a selector set currently has: SVIDs, or the issuer's refusal.
#[derive(Debug, Clone)]
pub enum X509State {
    Pending,
    Ready(Arc<X509Set>),
    /// The issuer refused (no entry matches any more); the message says why.
    Denied(String),
}

/// JWT-SVIDs for one selector set, audience list and SPIFFE ID filter.
#[derive(Debug)]
pub struct JwtSet {
    /// (SPIFFE ID, token, hint).
    pub svids: Vec<(String, String, String)>,
    pub minted_at: i64,
    pub expires_at: i64,
}

/// The trust domain's bundles, from the issuer.
#[derive(Debug, PartialEq, Eq)]
pub struct Bundles {
    pub trust_domain: String,
    pub x509_authorities: Vec<Vec<u8>>,
    /// JWK Set JSON.
    pub jwks: Vec<u8>,
}

/// Whether the issuer answered the last time it was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerHealth {
    Unknown,
    Reachable,
    Unreachable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("the node is not attested yet{}", .0.as_deref().map(|e| format!(": {e}")).unwrap_or_default())]
    NodeNotAttested(Option<String>),
    #[error("no registration entry matches this workload: {0}")]
    Denied(String),
    #[error("the issuer is unreachable and nothing is cached: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<IdentityError> for Status {
    fn from(error: IdentityError) -> Status {
        match &error {
            IdentityError::Denied(_) => Status::permission_denied(error.to_string()),
            IdentityError::NodeNotAttested(_) | IdentityError::Unavailable(_) => {
                Status::unavailable(error.to_string())
            }
            IdentityError::Internal(_) => Status::internal(error.to_string()),
        }
    }
}

struct X509Slot {
    state: watch::Sender<X509State>,
    /// What rotation signs evidence for: the latest attestation of a caller
    /// with these selectors.
    attestation: Mutex<Arc<WorkloadAttestation>>,
    last_used: std::sync::atomic::AtomicI64,
    /// Serialises mints for this selector set.
    minting: tokio::sync::Mutex<()>,
    rotating: AtomicBool,
    /// Set when the last process holding these SVIDs exited: nothing renews
    /// them any more, and `dropped_notice` wakes the rotation task to end.
    dropped: AtomicBool,
    dropped_notice: tokio::sync::Notify,
}

type JwtKey = (SelectorKey, Vec<String>, String);

/// The SVID cache and the issuer's identity service.
pub struct Identities {
    issuer: WorkloadIdentityClient<Channel>,
    evidence: Arc<EvidenceMaker>,
    x509: Mutex<HashMap<SelectorKey, Arc<X509Slot>>>,
    jwt: Mutex<HashMap<JwtKey, Arc<JwtSet>>>,
    max_entries: usize,
    bundles: watch::Sender<Option<Arc<Bundles>>>,
    /// The bundle of the last mint, so that equal bundles share one copy.
    last_bundle: Mutex<Option<Arc<Vec<Vec<u8>>>>>,
    revision: watch::Sender<String>,
    health: watch::Sender<IssuerHealth>,
    rng: SystemRandom,
    /// The live processes each selector set's credentials were fetched by,
    /// as (pid, start time): when the last one exits, the set's cache
    /// entries go.
    holders: Mutex<HashMap<SelectorKey, HashSet<(i32, u64)>>>,
    stats: IdentityStats,
}

/// Counters of the credential cache, for operators and tests.
#[derive(Debug, Default)]
pub struct IdentityStats {
    /// X.509 mints sent to the issuer (first mints and renewals).
    pub x509_mints: AtomicU64,
    /// JWT mints sent to the issuer.
    pub jwt_mints: AtomicU64,
    /// Processes that held credentials and exited.
    pub processes_exited: AtomicU64,
    /// Cache entries (X.509 sets and JWT sets) dropped because the last
    /// process holding them exited.
    pub entries_dropped: AtomicU64,
}

impl Identities {
    /// `max_entries` bounds both the X.509 and the JWT cache.
    pub fn new(
        issuer: WorkloadIdentityClient<Channel>,
        evidence: Arc<EvidenceMaker>,
        max_entries: usize,
    ) -> Arc<Identities> {
        Arc::new(Identities {
            issuer,
            evidence,
            x509: Mutex::default(),
            jwt: Mutex::default(),
            max_entries: max_entries.max(1),
            bundles: watch::channel(None).0,
            last_bundle: Mutex::default(),
            revision: watch::channel(String::new()).0,
            health: watch::channel(IssuerHealth::Unknown).0,
            rng: SystemRandom::new(),
            holders: Mutex::default(),
            stats: IdentityStats::default(),
        })
    }

    pub fn stats(&self) -> &IdentityStats {
        &self.stats
    }

    /// How many JWT-SVID sets are cached, and for how many selector sets
    /// live processes hold credentials.
    pub fn jwt_cached_and_held(&self) -> (usize, usize) {
        (lock(&self.jwt).len(), lock(&self.holders).len())
    }

    /// Ties a selector set's credentials to `peer`: they stay cached and are
    /// renewed only while some process that fetched them lives. The first
    /// fetch by a process starts one task that waits on its pidfd.
    fn hold(self: &Arc<Self>, key: SelectorKey, peer: &Peer) {
        let process = (peer.pid, peer.start_time_ticks);
        if !lock(&self.holders).entry(key).or_default().insert(process) {
            return;
        }
        let watch = match peer.exit_watch() {
            Ok(watch) => watch,
            Err(error) => {
                // Cannot watch it: forget it now rather than hold its
                // credentials for ever.
                warn!(pid = peer.pid, %error, "cannot watch a workload process for its exit");
                self.release(key, process);
                return;
            }
        };
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            watch.exited().await;
            if let Some(this) = this.upgrade() {
                this.release(key, process);
            }
        });
    }

    /// `process` exited: when it was the last holder of `key`'s credentials,
    /// drops them, ends their renewal, and says so.
    fn release(&self, key: SelectorKey, process: (i32, u64)) {
        self.stats.processes_exited.fetch_add(1, Ordering::Relaxed);
        {
            let mut holders = lock(&self.holders);
            let Some(set) = holders.get_mut(&key) else {
                return;
            };
            set.remove(&process);
            if !set.is_empty() {
                debug!(
                    pid = process.0,
                    "workload process exited; others still hold its SVIDs"
                );
                return;
            }
            holders.remove(&key);
        }
        let x509 = lock(&self.x509).remove(&key);
        if let Some(slot) = &x509 {
            slot.dropped.store(true, Ordering::Release);
            slot.dropped_notice.notify_one();
        }
        let jwt = {
            let mut cache = lock(&self.jwt);
            let before = cache.len();
            cache.retain(|(selectors, _, _), _| *selectors != key);
            before - cache.len()
        };
        let dropped = jwt as u64 + u64::from(x509.is_some());
        self.stats
            .entries_dropped
            .fetch_add(dropped, Ordering::Relaxed);
        info!(
            pid = process.0,
            x509_sets = u8::from(x509.is_some()),
            jwt_sets = jwt,
            "workload process exited; its cached SVIDs are dropped and no longer renewed"
        );
    }

    pub fn health(&self) -> watch::Receiver<IssuerHealth> {
        self.health.subscribe()
    }

    pub fn bundles(&self) -> watch::Receiver<Option<Arc<Bundles>>> {
        self.bundles.subscribe()
    }

    /// How many selector sets hold X.509-SVIDs, and how many SVIDs in all.
    pub fn cached(&self) -> (usize, usize) {
        let slots = lock(&self.x509);
        let svids = slots
            .values()
            .map(|slot| match &*slot.state.borrow() {
                X509State::Ready(set) => set.svids.len(),
                _ => 0,
            })
            .sum();
        (slots.len(), svids)
    }

    /// The X.509-SVIDs for an attested caller: from the cache, or minted
    /// now. The receiver sees every rotation.
    pub async fn x509(
        self: &Arc<Self>,
        peer: &Peer,
        attestation: Arc<WorkloadAttestation>,
    ) -> Result<watch::Receiver<X509State>, IdentityError> {
        let key = selector_key(&attestation);
        self.hold(key, peer);
        let slot = self.slot(&key, attestation);
        slot.last_used.store(unix_now(), Ordering::Relaxed);
        let receiver = slot.state.subscribe();
        if let X509State::Ready(set) = &*receiver.borrow() {
            if set.expires_at > unix_now() {
                return Ok(receiver.clone());
            }
        }
        {
            let _minting = slot.minting.lock().await;
            // Another caller may have minted while this one waited.
            let fresh = matches!(&*slot.state.borrow(), X509State::Ready(set) if set.expires_at > unix_now());
            if !fresh {
                match self.mint_x509(&slot).await {
                    Ok(set) => {
                        slot.state.send_replace(X509State::Ready(set));
                    }
                    Err(IdentityError::Denied(reason)) => {
                        slot.state.send_replace(X509State::Denied(reason.clone()));
                        self.forget(&key);
                        return Err(IdentityError::Denied(reason));
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        if !lock(&self.holders).contains_key(&key) {
            // The caller exited while this was minted: renew nothing for it.
            if let Some(slot) = lock(&self.x509).remove(&key) {
                slot.dropped.store(true, Ordering::Release);
            }
            return Ok(receiver);
        }
        self.start_rotation(key, slot);
        Ok(receiver)
    }

    /// JWT-SVIDs for an attested caller and `audience` (sorted, unique),
    /// cached until half their lifetime.
    pub async fn jwt(
        self: &Arc<Self>,
        peer: &Peer,
        attestation: &WorkloadAttestation,
        audience: Vec<String>,
        spiffe_id: String,
    ) -> Result<Arc<JwtSet>, IdentityError> {
        let key: JwtKey = (selector_key(attestation), audience, spiffe_id);
        self.hold(key.0, peer);
        let now = unix_now();
        if let Some(set) = lock(&self.jwt).get(&key) {
            if now < set.minted_at + (set.expires_at - set.minted_at) / 2 {
                return Ok(set.clone());
            }
        }
        let set = Arc::new(self.mint_jwt(attestation, &key.1, &key.2).await?);
        if !lock(&self.holders).contains_key(&key.0) {
            // The caller exited while this was minted: answer, but keep nothing.
            return Ok(set);
        }
        let mut cache = lock(&self.jwt);
        if cache.len() >= self.max_entries && !cache.contains_key(&key) {
            // Evict what expires first: it is the least valuable to keep.
            if let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, set)| set.expires_at)
                .map(|(key, _)| key.clone())
            {
                cache.remove(&oldest);
            }
        }
        cache.insert(key, set.clone());
        Ok(set)
    }

    /// The slot for `key`, created if new. Creating one may evict the least
    /// recently used slot that no stream is watching.
    fn slot(&self, key: &SelectorKey, attestation: Arc<WorkloadAttestation>) -> Arc<X509Slot> {
        let mut slots = lock(&self.x509);
        if let Some(slot) = slots.get(key) {
            *lock(&slot.attestation) = attestation;
            return slot.clone();
        }
        if slots.len() >= self.max_entries {
            let victim = slots
                .iter()
                .filter(|(_, slot)| slot.state.receiver_count() == 0)
                .min_by_key(|(_, slot)| slot.last_used.load(Ordering::Relaxed))
                .map(|(key, _)| *key);
            if let Some(victim) = victim {
                slots.remove(&victim);
            }
        }
        let slot = Arc::new(X509Slot {
            state: watch::channel(X509State::Pending).0,
            attestation: Mutex::new(attestation),
            last_used: std::sync::atomic::AtomicI64::new(unix_now()),
            minting: tokio::sync::Mutex::new(()),
            rotating: AtomicBool::new(false),
            dropped: AtomicBool::new(false),
            dropped_notice: tokio::sync::Notify::new(),
        });
        slots.insert(*key, slot.clone());
        slot
    }

    fn forget(&self, key: &SelectorKey) {
        let mut slots = lock(&self.x509);
        if slots
            .get(key)
            .is_some_and(|slot| slot.state.receiver_count() == 0)
        {
            slots.remove(key);
        }
    }

    /// Rotates `slot` at half its SVIDs' lifetime, or at once when the
    /// issuer's revision changes, while a stream watches it or it was used
    /// within the SVIDs' lifetime. Then it stops, and the slot is left to
    /// expire and be evicted.
    fn start_rotation(self: &Arc<Self>, key: SelectorKey, slot: Arc<X509Slot>) {
        if slot.rotating.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = Arc::downgrade(self);
        let mut revision = self.revision.subscribe();
        tokio::spawn(async move {
            let mut retry = RETRY_FIRST;
            loop {
                if slot.dropped.load(Ordering::Acquire) {
                    break;
                }
                let set = match &*slot.state.borrow() {
                    X509State::Ready(set) => set.clone(),
                    _ => break,
                };
                let wait = renew_after(set.minted_at, set.expires_at, unix_now());
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    changed = revision.changed() => if changed.is_err() { break },
                    () = slot.dropped_notice.notified() => {}
                }
                if slot.dropped.load(Ordering::Acquire) {
                    break;
                }
                let Some(this) = this.upgrade() else { break };
                let idle = unix_now() - slot.last_used.load(Ordering::Relaxed)
                    > set.expires_at - set.minted_at;
                if slot.state.receiver_count() == 0 && idle {
                    break;
                }
                loop {
                    let outcome = {
                        let _minting = slot.minting.lock().await;
                        if slot.dropped.load(Ordering::Acquire) {
                            break;
                        }
                        this.mint_x509(&slot).await
                    };
                    match outcome {
                        Ok(set) => {
                            debug!(
                                svids = set.svids.len(),
                                selectors = key.len(),
                                "X.509-SVIDs rotated"
                            );
                            slot.state.send_replace(X509State::Ready(set));
                            retry = RETRY_FIRST;
                            break;
                        }
                        Err(IdentityError::Denied(reason)) => {
                            info!(%reason, "workload no longer registered; its SVIDs are withdrawn");
                            slot.state.send_replace(X509State::Denied(reason));
                            this.forget(&key);
                            slot.rotating.store(false, Ordering::Release);
                            return;
                        }
                        Err(error) => {
                            // Keep serving what is cached until it expires.
                            warn!(%error, retry_in_s = retry.as_secs(), "SVID rotation failed");
                            if set.expires_at <= unix_now() {
                                slot.state.send_replace(X509State::Pending);
                            }
                            tokio::time::sleep(retry).await;
                            retry = (retry * 2).min(RETRY_MAX);
                        }
                    }
                }
            }
            slot.rotating.store(false, Ordering::Release);
        });
    }

    async fn mint_x509(&self, slot: &X509Slot) -> Result<Arc<X509Set>, IdentityError> {
        let attestation = lock(&slot.attestation).clone();
        let trust_domain = self.trust_domain()?;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.rng)
            .map_err(|_| IdentityError::Internal("generating an SVID key failed".into()))?;
        let key_pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &self.rng)
                .map_err(|_| IdentityError::Internal("loading an SVID key failed".into()))?;
        let spki = attestd_verifier::evidence::p256_spki_der(key_pair.public_key().as_ref());
        let nonce = digest(&SHA256, &[X509_NONCE_DOMAIN, &spki].concat());
        let claims = self.evidence.claims(
            &attestation,
            nonce.as_ref().to_vec(),
            Some(format!("spiffe://{trust_domain}")),
        );
        let evidence = self.evidence.sign(&claims).map_err(internal)?;
        let minted_at = unix_now();
        self.stats.x509_mints.fetch_add(1, Ordering::Relaxed);
        let response = self
            .call(self.issuer.clone().mint_x509svi_ds(MintX509Request {
                evidence,
                public_key: spki,
            }))
            .await?;
        if response.svids.is_empty() {
            return Err(IdentityError::Denied(
                "the issuer matched no entry".to_owned(),
            ));
        }
        let key = Zeroizing::new(pkcs8.as_ref().to_vec());
        let svids: Vec<MintedX509> = response
            .svids
            .into_iter()
            .map(|svid| MintedX509 {
                spiffe_id: svid.spiffe_id,
                chain: svid.chain,
                key: key.clone(),
                expires_at: svid.expires_at,
                hint: svid.hint,
            })
            .collect();
        let expires_at = svids.iter().map(|svid| svid.expires_at).min().unwrap_or(0);
        self.note_revision(&response.revision);
        Ok(Arc::new(X509Set {
            svids,
            bundle: self.shared_bundle(response.bundle),
            minted_at,
            expires_at,
        }))
    }

    async fn mint_jwt(
        &self,
        attestation: &WorkloadAttestation,
        audience: &[String],
        spiffe_id: &str,
    ) -> Result<JwtSet, IdentityError> {
        let trust_domain = self.trust_domain()?;
        let mut bound = JWT_NONCE_DOMAIN.to_vec();
        for aud in audience {
            bound.extend_from_slice(aud.as_bytes());
            bound.push(0);
        }
        bound.extend_from_slice(spiffe_id.as_bytes());
        let nonce = digest(&SHA256, &bound);
        let claims = self.evidence.claims(
            attestation,
            nonce.as_ref().to_vec(),
            Some(format!("spiffe://{trust_domain}")),
        );
        let evidence = self.evidence.sign(&claims).map_err(internal)?;
        let minted_at = unix_now();
        self.stats.jwt_mints.fetch_add(1, Ordering::Relaxed);
        let response = self
            .call(self.issuer.clone().mint_jwtsvi_ds(MintJwtRequest {
                evidence,
                audience: audience.to_vec(),
                spiffe_id: spiffe_id.to_owned(),
            }))
            .await?;
        if response.svids.is_empty() {
            return Err(IdentityError::Denied(
                "the issuer matched no entry".to_owned(),
            ));
        }
        self.note_revision(&response.revision);
        let expires_at = response
            .svids
            .iter()
            .map(|svid| svid.expires_at)
            .min()
            .unwrap_or(0);
        Ok(JwtSet {
            svids: response
                .svids
                .into_iter()
                .map(|svid| (svid.spiffe_id, svid.token, svid.hint))
                .collect(),
            minted_at,
            expires_at,
        })
    }

    /// One call to the issuer, with a deadline; records whether it answered.
    async fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, IdentityError> {
        let outcome = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(
                    "the issuer did not answer in time",
                ))
            });
        match outcome {
            Ok(response) => {
                self.health.send_replace(IssuerHealth::Reachable);
                Ok(response.into_inner())
            }
            Err(status) if status.code() == tonic::Code::PermissionDenied => {
                self.health.send_replace(IssuerHealth::Reachable);
                Err(IdentityError::Denied(status.message().to_owned()))
            }
            Err(status) => {
                let reason = format!("{:?}: {}", status.code(), status.message());
                if matches!(
                    status.code(),
                    tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown
                ) {
                    self.health
                        .send_replace(IssuerHealth::Unreachable(reason.clone()));
                    Err(IdentityError::Unavailable(reason))
                } else {
                    Err(IdentityError::Internal(format!(
                        "the issuer refused: {reason}"
                    )))
                }
            }
        }
    }

    fn shared_bundle(&self, bundle: Vec<Vec<u8>>) -> Arc<Vec<Vec<u8>>> {
        let mut last = lock(&self.last_bundle);
        match &*last {
            Some(shared) if **shared == bundle => shared.clone(),
            _ => {
                let shared = Arc::new(bundle);
                *last = Some(shared.clone());
                shared
            }
        }
    }

    fn trust_domain(&self) -> Result<String, IdentityError> {
        let node = self.evidence.node();
        let svid = node
            .current_svid()
            .ok_or_else(|| IdentityError::NodeNotAttested(node.last_error()))?;
        svid.spiffe_id
            .strip_prefix("spiffe://")
            .and_then(|rest| rest.split('/').next())
            .map(str::to_owned)
            .ok_or_else(|| {
                IdentityError::Internal(format!("odd node SPIFFE ID {}", svid.spiffe_id))
            })
    }

    /// A new revision means new entries or keys: rotate everything now, and
    /// forget JWT-SVIDs that may no longer be right.
    fn note_revision(&self, revision: &str) {
        let changed = self.revision.send_if_modified(|current| {
            if current != revision && !revision.is_empty() {
                *current = revision.to_owned();
                true
            } else {
                false
            }
        });
        if changed {
            lock(&self.jwt).clear();
        }
    }

    /// Follows the issuer: its revision stream, and its bundles after every
    /// change. Reconnects with backoff while the issuer is down. Runs until
    /// the daemon stops.
    pub async fn follow_issuer(self: Arc<Self>, mut node_outcomes: watch::Receiver<u64>) {
        let mut retry = RETRY_FIRST;
        loop {
            // Nothing to ask for until the node is attested.
            while self.evidence.node().current_svid().is_none() {
                if node_outcomes.changed().await.is_err() {
                    return;
                }
            }
            match self.follow_once().await {
                Ok(()) => retry = RETRY_FIRST,
                Err(reason) => {
                    self.health
                        .send_replace(IssuerHealth::Unreachable(reason.clone()));
                    warn!(%reason, retry_in_s = retry.as_secs(), "lost the issuer's revision stream");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    }

    async fn follow_once(&self) -> Result<(), String> {
        let mut stream = self
            .issuer
            .clone()
            .watch_revision(WatchRevisionRequest {})
            .await
            .map_err(|status| format!("{:?}: {}", status.code(), status.message()))?
            .into_inner();
        loop {
            let revision = stream
                .message()
                .await
                .map_err(|status| format!("{:?}: {}", status.code(), status.message()))?
                .ok_or_else(|| "the issuer ended the stream".to_owned())?;
            let bundles = self
                .call(self.issuer.clone().bundles(BundlesRequest {}))
                .await
                .map_err(|error| error.to_string())?;
            self.health.send_replace(IssuerHealth::Reachable);
            let bundles = Bundles {
                trust_domain: bundles.trust_domain,
                x509_authorities: bundles.x509_authorities,
                jwks: bundles.jwks,
            };
            self.bundles.send_if_modified(|current| {
                if current.as_deref() == Some(&bundles) {
                    false
                } else {
                    *current = Some(Arc::new(bundles));
                    true
                }
            });
            self.note_revision(&revision.revision);
        }
    }
}

fn selector_key(attestation: &WorkloadAttestation) -> SelectorKey {
    let mut context = ring::digest::Context::new(&SHA256);
    for selector in &attestation.selectors {
        context.update(selector.to_string().as_bytes());
        context.update(&[0]);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

fn internal(status: Status) -> IdentityError {
    IdentityError::Internal(status.message().to_owned())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
