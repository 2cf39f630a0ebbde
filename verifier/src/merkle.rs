//! The Merkle tree behind hardware-fresh evidence: one TPM quote signs the
//! root of a tree over a batch of requests, and each caller's evidence carries
//! its leaf's inclusion proof. docs/evidence.md ("Hardware-fresh evidence")
//! is the normative description.
//!
//! The tree is RFC 9162's (Certificate Transparency v2, §2.1.1):
//! - leaf hash `SHA-256(0x00 ‖ leaf data)`, node hash `SHA-256(0x01 ‖ left ‖ right)`,
//!   so no leaf can pass for a node nor a node for a leaf;
//! - leaves in the order the batcher took the requests (index 0 first);
//! - a tree of n > 1 leaves splits after the largest power of two below n,
//!   so an odd node is carried up unchanged, never paired with itself;
//! - a one-leaf tree's root is that leaf's hash, with an empty proof.
//!
//! attestd's leaf data binds the caller's nonce and the digest of its claims:
//! `len(nonce) (1 byte) ‖ nonce ‖ SHA-256(claims payload)`.

use ring::digest::{Context, SHA256};

/// SHA-256 output length: every hash in the tree.
pub const HASH_LEN: usize = 32;
/// A tree hash.
pub type Hash = [u8; HASH_LEN];

/// Most leaves one batch may hold. A proof is then at most 16 hashes, and a
/// verifier refuses larger claimed trees before hashing anything.
pub const MAX_LEAVES: u64 = 1 << 16;
/// Longest inclusion proof for a tree of at most [`MAX_LEAVES`] leaves.
pub const MAX_PROOF_LEN: usize = 16;

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// The leaf hash for a caller: `SHA-256(0x00 ‖ len(nonce) ‖ nonce ‖ claims_digest)`.
/// The one-byte length keeps nonce and digest apart, so a nonce longer than
/// 255 bytes is refused (attestd's are 8–64).
pub fn leaf_hash(nonce: &[u8], claims_digest: &Hash) -> Result<Hash, TreeError> {
    let len =
        u8::try_from(nonce.len()).map_err(|_| TreeError::NonceTooLong { len: nonce.len() })?;
    let mut context = Context::new(&SHA256);
    context.update(&[LEAF_PREFIX, len]);
    context.update(nonce);
    context.update(claims_digest);
    Ok(finish(context))
}

/// SHA-256 of the claims payload: the digest a leaf binds.
pub fn claims_digest(payload: &[u8]) -> Hash {
    let mut context = Context::new(&SHA256);
    context.update(payload);
    finish(context)
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut context = Context::new(&SHA256);
    context.update(&[NODE_PREFIX]);
    context.update(left);
    context.update(right);
    finish(context)
}

fn finish(context: Context) -> Hash {
    let mut hash = [0u8; HASH_LEN];
    hash.copy_from_slice(context.finish().as_ref());
    hash
}

/// A built tree: every level, leaves first, so any leaf's proof is read off
/// without hashing. Level k+1 pairs the hashes of level k, and a last
/// unpaired hash moves up as it is; this gives RFC 9162's tree (the tests
/// compare it with the recursive definition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

/// Why a tree could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("a Merkle tree needs at least one leaf")]
    Empty,
    #[error("{count} leaves; a batch holds at most {MAX_LEAVES}")]
    TooManyLeaves { count: usize },
    #[error("a nonce of {len} bytes does not fit a leaf (at most 255)")]
    NonceTooLong { len: usize },
}

impl MerkleTree {
    /// Builds the tree over leaf hashes (from [`leaf_hash`]), in order.
    pub fn new(leaves: Vec<Hash>) -> Result<MerkleTree, TreeError> {
        if leaves.is_empty() {
            return Err(TreeError::Empty);
        }
        if leaves.len() as u64 > MAX_LEAVES {
            return Err(TreeError::TooManyLeaves {
                count: leaves.len(),
            });
        }
        let mut levels = vec![leaves];
        while let Some(below) = levels.last().filter(|level| level.len() > 1) {
            let above = below
                .chunks(2)
                .filter_map(|pair| match pair {
                    [left, right] => Some(node_hash(left, right)),
                    [lone] => Some(*lone),
                    _ => None,
                })
                .collect();
            levels.push(above);
        }
        Ok(MerkleTree { levels })
    }

    pub fn root(&self) -> Hash {
        // `new` refuses empty trees, so the top level holds exactly one hash.
        self.levels
            .last()
            .and_then(|top| top.first())
            .copied()
            .unwrap_or([0; HASH_LEN])
    }

    pub fn len(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The inclusion proof of leaf `index`, bottom up: each sibling on the
    /// way to the root. Levels where the path's node has no sibling (it was
    /// carried up) contribute nothing. `None` when `index` is out of range.
    pub fn proof(&self, index: usize) -> Option<Vec<Hash>> {
        if index >= self.len() {
            return None;
        }
        let mut proof = Vec::with_capacity(self.levels.len().saturating_sub(1));
        let mut position = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = position ^ 1;
            if let Some(hash) = level.get(sibling) {
                proof.push(*hash);
            }
            position /= 2;
        }
        Some(proof)
    }
}

/// Why an inclusion proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("a tree of {size} leaves is larger than a batch may be ({MAX_LEAVES})")]
    TreeTooLarge { size: u64 },
    #[error("the proof has {len} hashes, more than any tree of its size needs")]
    ProofTooLong { len: usize },
    #[error("the proof has too few hashes for leaf {index} of {size}")]
    ProofTooShort { index: u64, size: u64 },
    #[error("the proof leads to another root than the one the quote signs")]
    RootMismatch,
}

/// Checks that `leaf` is leaf `index` of a `size`-leaf tree with `root`
/// (RFC 9162 §2.1.3.2). Every hash in `proof` must be used: a proof with
/// extra hashes is refused, so one tree has exactly one proof per leaf.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion(leaf, index, size, proof)?;
    if crate::constant_time::eq(&computed, root) {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The root that `proof` leads to from `leaf` at `index` of `size`
/// (RFC 9162 §2.1.3.2 without the final comparison): what a TPM quote over
/// the batch must sign. Refuses proofs of the wrong length for the position.
pub fn root_from_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if size > MAX_LEAVES {
        return Err(ProofError::TreeTooLarge { size });
    }
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::ProofTooLong { len: proof.len() });
    }
    let mut position = index;
    let mut last = size - 1;
    let mut hash = *leaf;
    for sibling in proof {
        if last == 0 {
            return Err(ProofError::ProofTooLong { len: proof.len() });
        }
        if position & 1 == 1 || position == last {
            hash = node_hash(sibling, &hash);
            // A right-edge node with no sibling at this level is carried up:
            // skip the levels where it has none.
            while position & 1 == 0 && position != 0 {
                position >>= 1;
                last >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        position >>= 1;
        last >>= 1;
    }
    if last != 0 {
        return Err(ProofError::ProofTooShort { index, size });
    }
    Ok(hash)
}

#[cfg(test)]
#[path = "merkle_test.rs"]
mod tests;
