//! Hardware-fresh evidence at scale: requests that arrive together share one
//! TPM quote. Each request adds a leaf (its nonce and the digest of its
//! claims); one task takes every leaf waiting, builds the Merkle tree, has the
//! TPM quote its root, and hands each caller the quote and its leaf's place.
//!
//! The batch window adapts by itself: a request that finds the TPM idle is
//! quoted at once (a batch of one), and requests that arrive while a quote is
//! being made wait for the next one. Under load a batch is everything that
//! arrived during one quote, so the TPM is never idle while requests wait, and
//! the wait is at most one quote in flight plus one's own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use attestd_attestors::tpm::{PcrSelection, Tpm, TpmError};
use attestd_proto::evidence::{FreshPcr, FreshQuote};
use attestd_verifier::merkle::{Hash, MerkleTree};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

/// Most leaves in one batch, and so in one quote. A proof then has at most
/// 12 hashes. Requests beyond it wait for the next quote.
pub const DEFAULT_MAX_BATCH: usize = 4096;

/// Why hardware-fresh evidence could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FreshError {
    #[error("the TPM quote failed: {0}")]
    Tpm(String),
    #[error("the quoting task has stopped")]
    Stopped,
}

/// One quote and the tree it signs, shared by every caller of its batch.
struct Batch {
    tree: MerkleTree,
    attest: Vec<u8>,
    signature: Vec<u8>,
    pcrs: Vec<FreshPcr>,
}

type Reply = Result<(Arc<Batch>, usize), FreshError>;

struct Pending {
    leaf: Hash,
    reply: oneshot::Sender<Reply>,
}

/// Counters for the batcher, read by benchmarks, logs and tests.
#[derive(Debug, Default)]
pub struct FreshStats {
    /// Quotes made, and the leaves they answered.
    pub quotes: AtomicU64,
    pub leaves: AtomicU64,
    pub largest_batch: AtomicU64,
    /// Leaves of the batch being quoted now (0 when the TPM is idle).
    pub in_flight: AtomicU64,
}

/// The handle requests use; cheap to share.
pub struct FreshQuoter {
    queue: mpsc::Sender<Pending>,
    ak_public: Arc<Vec<u8>>,
    stats: Arc<FreshStats>,
}

impl FreshQuoter {
    /// Starts the quoting task on the TPM owner `tpm`, quoting `selection`.
    pub fn spawn(tpm: Tpm, selection: PcrSelection, max_batch: usize) -> FreshQuoter {
        Self::spawn_gated(tpm, selection, max_batch, None)
    }

    /// As [`FreshQuoter::spawn`], and each quote first takes a permit from
    /// `gate`: tests hold the TPM "busy" at a known point this way, to see
    /// exactly which requests share a batch.
    #[doc(hidden)]
    pub fn spawn_gated(
        tpm: Tpm,
        selection: PcrSelection,
        max_batch: usize,
        gate: Option<Arc<tokio::sync::Semaphore>>,
    ) -> FreshQuoter {
        let max_batch = max_batch.clamp(1, attestd_verifier::merkle::MAX_LEAVES as usize);
        // Room for two full batches: one being quoted, one gathering.
        let (queue, requests) = mpsc::channel(max_batch.saturating_mul(2));
        let ak_public = Arc::new(tpm.ak().public.clone());
        let stats = Arc::new(FreshStats::default());
        let quoting = Quoting {
            tpm,
            selection,
            gate,
        };
        tokio::spawn(run(quoting, max_batch, requests, stats.clone()));
        FreshQuoter {
            queue,
            ak_public,
            stats,
        }
    }

    pub fn stats(&self) -> &FreshStats {
        &self.stats
    }

    /// Requests waiting for the next batch.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Waits for a quote over a batch holding `leaf`, and returns the header
    /// for this caller's evidence.
    pub async fn quote(&self, leaf: Hash) -> Result<FreshQuote, FreshError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { leaf, reply })
            .await
            .map_err(|_| FreshError::Stopped)?;
        let (batch, index) = answer.await.map_err(|_| FreshError::Stopped)??;
        Ok(FreshQuote {
            ak_public: self.ak_public.as_ref().clone(),
            attest: batch.attest.clone(),
            signature: batch.signature.clone(),
            pcrs: batch.pcrs.clone(),
            leaf_index: index as u64,
            leaf_count: batch.tree.len() as u64,
            proof: batch.tree.proof(index).unwrap_or_default(),
        })
    }
}

struct Quoting {
    tpm: Tpm,
    selection: PcrSelection,
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

async fn run(
    quoting: Quoting,
    max_batch: usize,
    mut requests: mpsc::Receiver<Pending>,
    stats: Arc<FreshStats>,
) {
    let mut pending = Vec::with_capacity(max_batch);
    loop {
        // Everything waiting now, up to a batch: at least one, blocking for it.
        if requests.recv_many(&mut pending, max_batch).await == 0 {
            return;
        }
        // Callers whose deadline passed have dropped their receiver.
        pending.retain(|request| !request.reply.is_closed());
        if pending.is_empty() {
            continue;
        }
        let leaves = pending.iter().map(|request| request.leaf).collect();
        stats
            .in_flight
            .store(pending.len() as u64, Ordering::Relaxed);
        if let Some(gate) = &quoting.gate {
            if let Ok(permit) = gate.acquire().await {
                permit.forget();
            }
        }
        let reply: Result<Arc<Batch>, FreshError> = match MerkleTree::new(leaves) {
            Ok(tree) => quote_batch(&quoting.tpm, &quoting.selection, tree).await,
            Err(error) => Err(FreshError::Tpm(error.to_string())),
        };
        stats.in_flight.store(0, Ordering::Relaxed);
        if let Ok(batch) = &reply {
            let size = batch.tree.len() as u64;
            stats.quotes.fetch_add(1, Ordering::Relaxed);
            stats.leaves.fetch_add(size, Ordering::Relaxed);
            stats.largest_batch.fetch_max(size, Ordering::Relaxed);
            debug!(leaves = size, "hardware-fresh batch quoted");
        }
        for (index, request) in pending.drain(..).enumerate() {
            // A caller that gave up meanwhile is simply not answered.
            let _ = request
                .reply
                .send(reply.clone().map(|batch| (batch, index)));
        }
    }
}

async fn quote_batch(
    tpm: &Tpm,
    selection: &PcrSelection,
    tree: MerkleTree,
) -> Result<Arc<Batch>, FreshError> {
    let quote = tpm
        .quote(tree.root().to_vec(), selection.clone())
        .await
        .map_err(|error: TpmError| {
            warn!(%error, "hardware-fresh quote failed");
            FreshError::Tpm(error.to_string())
        })?;
    let pcrs = quote
        .pcrs
        .banks
        .iter()
        .flat_map(|bank| {
            bank.values.iter().map(|(index, value)| FreshPcr {
                bank: bank.bank.alg_id(),
                index: *index,
                value: value.clone(),
            })
        })
        .collect();
    Ok(Arc::new(Batch {
        tree,
        attest: quote.attest,
        signature: quote.signature,
        pcrs,
    }))
}
