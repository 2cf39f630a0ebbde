//! What signing one piece of evidence costs, split into the ECDSA signature and
//! everything around it (claims, deterministic CBOR, the COSE envelope).
//!   cargo bench -p attestd --bench evidence

use attestd::signer::EvidenceSigner;
use attestd_proto::evidence::{BinaryClaim, EvidenceClaims, HostClaims};
use criterion::{criterion_group, criterion_main, Criterion};

/// Claims shaped like a real answer: a containerised workload's 16 selectors.
fn claims() -> EvidenceClaims {
    let container = "3f4e1b9c0d2a8e7f6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a";
    let mut selectors = vec![
        "unix:uid:1000".to_owned(),
        "unix:user:app".to_owned(),
        "unix:gid:1000".to_owned(),
        "unix:group:app".to_owned(),
        "unix:path:/usr/local/bin/payments".to_owned(),
        format!("unix:sha256:{}", "ab".repeat(32)),
        format!("cgroup:v2:/system.slice/docker-{container}.scope"),
        format!("container:id:{container}"),
        "container:runtime:docker".to_owned(),
        format!("systemd:unit:docker-{container}.scope"),
        "systemd:slice:system.slice".to_owned(),
        "host:hostname:node-17".to_owned(),
        "host:kernel:6.1.0-27-amd64".to_owned(),
        "host:os:debian 12".to_owned(),
        "host:boot-id:6b1c2d9e-8f3a-4b5c-9d7e-1f2a3b4c5d6e".to_owned(),
    ];
    selectors.sort();
    EvidenceClaims {
        nonce: vec![7; 32],
        ueid: Some([1u8].iter().chain([9u8; 32].iter()).copied().collect()),
        issued_at: 1_790_000_000,
        selectors,
        binary: Some(BinaryClaim {
            path: "/usr/local/bin/payments".into(),
            sha256: [0xab; 32],
        }),
        host: HostClaims {
            hostname: "node-17".into(),
            kernel: "6.1.0-27-amd64".into(),
            os: "debian 12".into(),
            boot_id: "6b1c2d9e-8f3a-4b5c-9d7e-1f2a3b4c5d6e".into(),
        },
        audience: Some("spiffe://example.org/issuer".into()),
    }
}

fn evidence(c: &mut Criterion) {
    let signer = EvidenceSigner::generate().unwrap();
    let claims = claims();
    c.bench_function("sign evidence (claims, CBOR, COSE, ES256)", |b| {
        b.iter(|| signer.sign(&claims, &[]).unwrap())
    });
    // A node SVID is about 500 bytes of DER; what carrying it costs per request.
    let node_chain = vec![vec![0x30; 520]];
    c.bench_function("sign evidence with a node SVID chain (x5chain)", |b| {
        b.iter(|| signer.sign(&claims, &node_chain).unwrap())
    });
    c.bench_function("encode claims to deterministic CBOR", |b| {
        b.iter(|| claims.to_cbor().unwrap())
    });
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8.as_ref(),
        &rng,
    )
    .unwrap();
    let message = vec![0u8; 1100];
    c.bench_function("ES256 signature alone (ring, 1,100-byte message)", |b| {
        b.iter(|| key.sign(&rng, &message).unwrap())
    });
}

criterion_group!(benches, evidence);
criterion_main!(benches);
