use proptest::prelude::*;

use super::*;

/// RFC 9162 §2.1.1's recursive Merkle Tree Hash over leaf hashes, written
/// from the definition and independent of the level-by-level builder.
fn reference_root(leaves: &[Hash]) -> Hash {
    match leaves {
        [leaf] => *leaf,
        _ => {
            let split = largest_power_of_two_below(leaves.len());
            node_hash(
                &reference_root(&leaves[..split]),
                &reference_root(&leaves[split..]),
            )
        }
    }
}

/// RFC 9162 §2.1.3.1's recursive PATH(m, D[n]), over leaf hashes.
fn reference_proof(index: usize, leaves: &[Hash]) -> Vec<Hash> {
    if leaves.len() == 1 {
        return Vec::new();
    }
    let split = largest_power_of_two_below(leaves.len());
    if index < split {
        let mut path = reference_proof(index, &leaves[..split]);
        path.push(reference_root(&leaves[split..]));
        path
    } else {
        let mut path = reference_proof(index - split, &leaves[split..]);
        path.push(reference_root(&leaves[..split]));
        path
    }
}

fn largest_power_of_two_below(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn leaves(count: usize) -> Vec<Hash> {
    (0..count)
        .map(|i| {
            let nonce = (i as u64).to_be_bytes();
            leaf_hash(&nonce, &claims_digest(&nonce)).unwrap()
        })
        .collect()
}

#[test]
fn one_leaf_tree_is_its_leaf_hash_with_an_empty_proof() {
    let leaf = leaves(1)[0];
    let tree = MerkleTree::new(vec![leaf]).unwrap();
    assert_eq!(tree.root(), leaf);
    assert_eq!(tree.proof(0).unwrap(), Vec::<Hash>::new());
    verify_inclusion(&leaf, 0, 1, &[], &leaf).unwrap();
}

#[test]
fn leaf_and_node_hashes_are_domain_separated() {
    // A leaf whose data is two hashes must not hash like the node over them.
    let (a, b) = ([1u8; 32], [2u8; 32]);
    let mut as_leaf = ring::digest::Context::new(&ring::digest::SHA256);
    as_leaf.update(&[0x00]);
    as_leaf.update(&a);
    as_leaf.update(&b);
    assert_ne!(as_leaf.finish().as_ref(), node_hash(&a, &b));
    // And the leaf hash is exactly 0x00 ‖ len ‖ nonce ‖ digest.
    let mut expected = ring::digest::Context::new(&ring::digest::SHA256);
    expected.update(&[0x00, 8]);
    expected.update(b"12345678");
    expected.update(&[9u8; 32]);
    assert_eq!(
        leaf_hash(b"12345678", &[9u8; 32]).unwrap(),
        expected.finish().as_ref()
    );
}

#[test]
fn two_leaf_root_is_the_node_over_both_in_arrival_order() {
    let l = leaves(2);
    let tree = MerkleTree::new(l.clone()).unwrap();
    assert_eq!(tree.root(), node_hash(&l[0], &l[1]));
    assert_ne!(tree.root(), node_hash(&l[1], &l[0]));
}

#[test]
fn empty_and_oversized_trees_are_refused() {
    assert_eq!(MerkleTree::new(Vec::new()), Err(TreeError::Empty));
    assert!(matches!(
        MerkleTree::new(vec![[0; 32]; MAX_LEAVES as usize + 1]),
        Err(TreeError::TooManyLeaves { .. })
    ));
    assert!(matches!(
        leaf_hash(&[0; 256], &[0; 32]),
        Err(TreeError::NonceTooLong { len: 256 })
    ));
}

#[test]
fn a_proof_for_another_batchs_root_is_refused() {
    let first = MerkleTree::new(leaves(5)).unwrap();
    let mut other_leaves = leaves(5);
    other_leaves[4] = [0xee; 32];
    let other = MerkleTree::new(other_leaves).unwrap();
    let leaf = leaves(5)[2];
    let proof = first.proof(2).unwrap();
    verify_inclusion(&leaf, 2, 5, &proof, &first.root()).unwrap();
    assert_eq!(
        verify_inclusion(&leaf, 2, 5, &proof, &other.root()),
        Err(ProofError::RootMismatch)
    );
}

#[test]
fn a_swapped_leaf_is_refused() {
    let l = leaves(8);
    let tree = MerkleTree::new(l.clone()).unwrap();
    // Leaf 3's proof with leaf 4 in its place, and leaf 3 claimed at index 4.
    let proof = tree.proof(3).unwrap();
    assert_eq!(
        verify_inclusion(&l[4], 3, 8, &proof, &tree.root()),
        Err(ProofError::RootMismatch)
    );
    assert_eq!(
        verify_inclusion(&l[3], 4, 8, &proof, &tree.root()),
        Err(ProofError::RootMismatch)
    );
}

#[test]
fn proofs_with_extra_or_missing_hashes_are_refused() {
    let l = leaves(6);
    let tree = MerkleTree::new(l.clone()).unwrap();
    let mut long = tree.proof(1).unwrap();
    long.push([0; 32]);
    assert!(matches!(
        verify_inclusion(&l[1], 1, 6, &long, &tree.root()),
        Err(ProofError::ProofTooLong { .. })
    ));
    let mut short = tree.proof(1).unwrap();
    short.pop();
    assert!(matches!(
        verify_inclusion(&l[1], 1, 6, &short, &tree.root()),
        Err(ProofError::ProofTooShort { .. })
    ));
    assert!(matches!(
        verify_inclusion(&l[1], 6, 6, &[], &tree.root()),
        Err(ProofError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        verify_inclusion(&l[1], 0, MAX_LEAVES + 1, &[], &tree.root()),
        Err(ProofError::TreeTooLarge { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// For trees of 1 to 1,000 leaves: the builder's root and proofs equal
    /// RFC 9162's recursive definitions, and every proof verifies.
    #[test]
    fn every_leaf_of_every_tree_size_proves_inclusion(count in 1usize..=1000) {
        let l = leaves(count);
        let tree = MerkleTree::new(l.clone()).unwrap();
        prop_assert_eq!(tree.root(), reference_root(&l));
        for (index, leaf) in l.iter().enumerate() {
            let proof = tree.proof(index).unwrap();
            prop_assert_eq!(&proof, &reference_proof(index, &l));
            prop_assert!(proof.len() <= MAX_PROOF_LEN);
            prop_assert_eq!(
                verify_inclusion(leaf, index as u64, count as u64, &proof, &tree.root()),
                Ok(())
            );
        }
        prop_assert_eq!(tree.proof(count), None);
    }

    /// A leaf never verifies at another index, another leaf never at its
    /// index, and no proof with one hash flipped. (The tree size is not
    /// bound by the root: a proof can also fit a larger tree with the same
    /// shape on its path. What the quote binds is the root, and so the leaf.)
    #[test]
    fn a_proof_holds_only_for_its_own_leaf_and_position(
        count in 2usize..=1000,
        pick in any::<prop::sample::Index>(),
        other in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
    ) {
        let l = leaves(count);
        let tree = MerkleTree::new(l.clone()).unwrap();
        let index = pick.index(count);
        let proof = tree.proof(index).unwrap();
        let root = tree.root();
        let wrong_index = other.index(count);
        if wrong_index != index {
            prop_assert!(verify_inclusion(&l[index], wrong_index as u64, count as u64, &proof, &root).is_err());
            prop_assert!(verify_inclusion(&l[wrong_index], index as u64, count as u64, &proof, &root).is_err());
        }
        if !proof.is_empty() {
            let mut flipped = proof.clone();
            let at = flip.index(flipped.len());
            flipped[at][0] ^= 1;
            prop_assert_eq!(
                verify_inclusion(&l[index], index as u64, count as u64, &flipped, &root),
                Err(ProofError::RootMismatch)
            );
        }
    }
}
