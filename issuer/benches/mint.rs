//! What minting a workload SVID costs the issuer on one core, through the
//! same functions the gRPC handlers call (`IdentityService::mint_x509`,
//! `mint_jwt`), so gRPC, TLS and protobuf decoding are not timed.
//!   cargo bench -p attestd-issuer --bench mint
//!
//! The evidence is what an attested daemon sends: ES256-signed by its session
//! key, carrying its node SVID (with the node selectors of eight quoted
//! SHA-256 PCRs) made by the issuer's own CA code. The registry holds 1,001
//! entries, one per uid, and the workload matches one of them. Mint evidence
//! is bound to the key (or audiences), not single use, so one request is
//! timed over and over: every call is a complete, successful mint.

use std::time::Duration;

use attestd_issuer::ca::Ca;
use attestd_issuer::config::CaConfig;
use attestd_issuer::identity::{mint_jwt_nonce, mint_x509_nonce, IdentityService};
use attestd_issuer::jwt::{Claims, JwtKeys};
use attestd_issuer::node_selectors;
use attestd_issuer::registry::Registry;
use attestd_proto::evidence::{sign_certified_evidence, EvidenceClaims, EvidenceError, HostClaims};
use attestd_proto::v1::{MintJwtRequest, MintX509Request};
use attestd_verifier::evidence::{verify_evidence, EvidencePolicy, NodeTrust};
use attestd_verifier::{HashAlg, PcrValues};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

const TD: &str = "bench.example.org";
const ENTRIES: usize = 1000;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The issuer config whose JWT keys the bench signs with (next to the CA).
fn config(dir: &std::path::Path) -> attestd_issuer::Config {
    let text = format!(
        "listen = \"127.0.0.1:0\"\ntrust_domain = \"{TD}\"\n[ca]\ncert = {:?}\nkey = {:?}\n[ek]\nallowlist = {:?}\n",
        dir.join("ca.pem").display().to_string(),
        dir.join("ca.key").display().to_string(),
        dir.join("ek-allowlist").display().to_string(),
    );
    attestd_issuer::Config::parse(&text, std::path::Path::new("bench.toml")).unwrap()
}

fn mint(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ca = std::sync::Arc::new(
        Ca::load_or_generate(
            &CaConfig {
                cert: dir.path().join("ca.pem"),
                key: dir.path().join("ca.key"),
            },
            TD,
        )
        .unwrap(),
    );
    let jwt = std::sync::Arc::new(JwtKeys::open(&config(dir.path()), now()).unwrap());
    let ek_hash = [0x5c; 32];
    let mut entries = String::new();
    for uid in 0..ENTRIES {
        entries.push_str(&format!(
            "[[entry]]\nspiffe_id = \"spiffe://{TD}/uid-{uid}\"\nselectors = [\"unix:uid:{uid}\"]\n"
        ));
    }
    entries.push_str(&format!(
        "[[entry]]\nspiffe_id = \"spiffe://{TD}/payments\"\nselectors = [\"unix:uid:1000\", \"systemd:unit:payments.service\"]\n\
         node_selectors = [\"tpm:ek:{}\"]\ndns_names = [\"payments.internal\"]\n",
        hex::encode(ek_hash)
    ));
    let entries_path = dir.path().join("entries.toml");
    std::fs::write(&entries_path, entries).unwrap();
    let registry = Registry::load(
        Some(&entries_path),
        TD,
        ca.cert_der(),
        &jwt.published().spiffe_jwks,
    )
    .unwrap();
    let service = IdentityService::new(TD, ca.clone(), jwt.clone(), None, registry).unwrap();

    // The node: a session key and its node SVID with eight quoted PCRs.
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let session_key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let pcrs: PcrValues = (0..8u8)
        .map(|i| (HashAlg::Sha256, i, vec![i; 32]))
        .collect();
    let node_selectors = node_selectors::collect(&ek_hash, &pcrs, None);
    let node_svid = ca
        .issue_node_svid(
            &format!("spiffe://{TD}/attestd/node/{}", hex::encode(ek_hash)),
            session_key.public_key().as_ref(),
            Duration::from_secs(3600),
            &node_selectors,
            None,
        )
        .unwrap()
        .der;
    let evidence = |nonce: [u8; 32]| {
        let claims = EvidenceClaims {
            nonce: nonce.to_vec(),
            ueid: Some([&[0x01][..], &ek_hash[..]].concat()),
            // Valid for the whole run: mint evidence may be 60 s old, and
            // "now" is passed to each call below.
            issued_at: now(),
            selectors: [
                "systemd:unit:payments.service",
                "unix:gid:1000",
                "unix:uid:1000",
                "unix:user:payments",
                "unix:path:/usr/bin/payments",
                "cgroup:v2-path:/system.slice/payments.service",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            binary: None,
            host: HostClaims {
                hostname: "node-1".into(),
                kernel: "6.1.0-27-amd64".into(),
                os: "debian".into(),
                boot_id: "5f1b6c1e-3c1e-4a57-9a35-0c6f1d2e9b10".into(),
            },
            audience: Some(format!("spiffe://{TD}")),
        };
        sign_certified_evidence(
            &claims,
            session_key.public_key().as_ref(),
            std::slice::from_ref(&node_svid),
            |tbs| {
                session_key
                    .sign(&rng, tbs)
                    .map(|s| s.as_ref().to_vec())
                    .map_err(|_| EvidenceError::Signing("ring".into()))
            },
        )
        .unwrap()
    };
    let workload_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .public_key_der();
    let x509 = MintX509Request {
        evidence: evidence(mint_x509_nonce(&workload_key)),
        public_key: workload_key.clone(),
    };
    let audience = vec!["spiffe://bench.example.org/db".to_owned()];
    let jwt_request = MintJwtRequest {
        evidence: evidence(mint_jwt_nonce(&audience, "")),
        audience: audience.clone(),
        spiffe_id: String::new(),
    };
    let at = now();
    assert_eq!(service.mint_x509(&x509, at).unwrap().svids.len(), 1);
    assert_eq!(service.mint_jwt(&jwt_request, at).unwrap().svids.len(), 1);
    println!("evidence: {} bytes", x509.evidence.len());

    let mut group = c.benchmark_group("mint");
    group.throughput(Throughput::Elements(1));
    group.bench_function("MintX509SVIDs (verify evidence, match, issue)", |b| {
        b.iter(|| service.mint_x509(black_box(&x509), at).unwrap())
    });
    group.bench_function("MintJWTSVIDs (verify evidence, match, sign)", |b| {
        b.iter(|| service.mint_jwt(black_box(&jwt_request), at).unwrap())
    });
    group.finish();

    let mut parts = c.benchmark_group("mint part");
    let policy = EvidencePolicy {
        expected_nonce: mint_x509_nonce(&workload_key).to_vec(),
        now_unix_secs: at,
        max_age_secs: 60,
        max_future_skew_secs: 30,
        audience: Some(format!("spiffe://{TD}")),
        trusted_keys: None,
        node_trust: Some(NodeTrust::new(&[ca.cert_der().to_vec()], TD).unwrap()),
        required_selectors: Vec::new(),
        hardware_fresh: None,
    };
    parts.bench_function("verify evidence (ES256, node SVID chain)", |b| {
        b.iter(|| verify_evidence(black_box(&x509.evidence), &policy).unwrap())
    });
    parts.bench_function("read node selectors", |b| {
        b.iter(|| node_selectors::read_der(black_box(&node_svid)).unwrap())
    });
    parts.bench_function("X.509-SVID (rcgen, ECDSA P-256 CA)", |b| {
        b.iter(|| {
            ca.issue_workload_svid(
                "spiffe://bench.example.org/payments",
                black_box(&workload_key),
                &["payments.internal".to_owned()],
                Duration::from_secs(3600),
            )
            .unwrap()
        })
    });
    parts.bench_function("JWT-SVID (jsonwebtoken ES256)", |b| {
        b.iter(|| {
            jwt.sign(&Claims {
                iss: None,
                sub: "spiffe://bench.example.org/payments",
                aud: black_box(&audience),
                exp: at + 300,
                iat: at,
            })
            .unwrap()
        })
    });
    parts.finish();
}

criterion_group!(benches, mint);
criterion_main!(benches);
