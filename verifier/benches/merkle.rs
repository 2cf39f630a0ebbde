//! The Merkle tree behind hardware-fresh evidence: what a batch costs the
//! daemon (building the tree, one proof per caller) and a verifier (folding
//! one proof), at the batch sizes the load tests see.
//!   cargo bench -p attestd-verifier --bench merkle

use attestd_verifier::merkle::{self, MerkleTree};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};

fn leaves(count: usize) -> Vec<merkle::Hash> {
    (0..count)
        .map(|i| merkle::leaf_hash(&(i as u64).to_be_bytes(), &[i as u8; 32]).unwrap())
        .collect()
}

fn tree(c: &mut Criterion) {
    let payload = vec![0xa5u8; 700];
    c.bench_function(
        "leaf: SHA-256 of a 700-byte payload, then the leaf hash",
        |b| {
            b.iter(|| {
                merkle::leaf_hash(
                    black_box(&[7u8; 32]),
                    &merkle::claims_digest(black_box(&payload)),
                )
                .unwrap()
            })
        },
    );
    let mut group = c.benchmark_group("batch");
    for count in [1usize, 16, 64, 256, 4096] {
        let leaves = leaves(count);
        group.bench_with_input(
            BenchmarkId::new("build tree", count),
            &leaves,
            |b, leaves| b.iter(|| MerkleTree::new(black_box(leaves.clone())).unwrap()),
        );
        let built = MerkleTree::new(leaves.clone()).unwrap();
        let index = count / 2;
        group.bench_with_input(BenchmarkId::new("one proof", count), &built, |b, built| {
            b.iter(|| built.proof(black_box(index)).unwrap())
        });
        let proof = built.proof(index).unwrap();
        let root = built.root();
        group.bench_with_input(
            BenchmarkId::new("verify one proof", count),
            &proof,
            |b, proof| {
                b.iter(|| {
                    merkle::verify_inclusion(
                        &leaves[index],
                        index as u64,
                        count as u64,
                        proof,
                        &root,
                    )
                    .unwrap()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, tree);
criterion_main!(benches);
