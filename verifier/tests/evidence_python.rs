//! Cross-check with an independent implementation: evidence signed the way the
//! daemon signs it (ring, `sign_evidence`) must be accepted by
//! tests/python/verify_evidence.py (pycose + cbor2), and refused by it once a
//! single byte changes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use attestd_proto::evidence::{
    sign_evidence, BinaryClaim, EvidenceClaims, EvidenceError, HostClaims,
};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

const NONCE: [u8; 32] = [0x6e; 32];
const AUDIENCE: &str = "spiffe://example.org/issuer";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the verifier crate sits in the repository root")
        .to_path_buf()
}

fn venv_python() -> PathBuf {
    let python = repo_root().join("target/venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/ensure-deps.sh (make test runs it first)",
        python.display()
    );
    python
}

fn claims() -> EvidenceClaims {
    EvidenceClaims {
        nonce: NONCE.to_vec(),
        ueid: Some([&[0x01][..], &[0x11; 32][..]].concat()),
        issued_at: 1_767_225_600,
        selectors: vec![
            "unix:uid:1000".to_owned(),
            "systemd:unit:foo.service".to_owned(),
        ],
        binary: Some(BinaryClaim {
            path: "/usr/bin/foo".to_owned(),
            sha256: [0xab; 32],
        }),
        host: HostClaims {
            hostname: "node-1".to_owned(),
            kernel: "6.1.0-18-amd64".to_owned(),
            os: "debian".to_owned(),
            boot_id: "5f1b6c1e-3c1e-4a57-9a35-0c6f1d2e9b10".to_owned(),
        },
        audience: Some(AUDIENCE.to_owned()),
    }
}

/// Signs like the daemon: a fresh P-256 session key, ring's fixed-size ES256.
fn signed_evidence(claims: &EvidenceClaims) -> Vec<u8> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("key generates");
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("key loads");
    sign_evidence(claims, key.public_key().as_ref(), |tbs| {
        key.sign(&rng, tbs)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|_| EvidenceError::Signing("ring refused to sign".to_owned()))
    })
    .expect("signs")
}

/// Runs the Python verifier on `evidence` written to a fresh temp dir.
fn python_verify(evidence: &[u8], nonce: &[u8], audience: Option<&str>) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("evidence.cbor");
    std::fs::write(&path, evidence).expect("evidence written");
    let mut command = Command::new(venv_python());
    command
        .arg(repo_root().join("tests/python/verify_evidence.py"))
        .arg(&path)
        .arg(hex::encode(nonce));
    if let Some(audience) = audience {
        command.args(["--audience", audience]);
    }
    command.output().expect("python runs")
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn python_accepts_attestd_evidence_and_prints_its_claims() {
    let output = python_verify(&signed_evidence(&claims()), &NONCE, Some(AUDIENCE));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        format!("\"eat_nonce\": \"{}\"", hex::encode(NONCE)),
        "\"iat\": 1767225600".to_owned(),
        "\"attestd.selectors\": [\"systemd:unit:foo.service\", \"unix:uid:1000\"]".to_owned(),
        format!("\"sha256\": \"{}\"", hex::encode([0xab; 32])),
        format!("\"attestd.audience\": \"{AUDIENCE}\""),
    ] {
        assert!(
            stdout.contains(&expected),
            "{expected} missing from {stdout}"
        );
    }
}

#[test]
fn python_accepts_minimal_evidence() {
    let claims = EvidenceClaims {
        ueid: None,
        binary: None,
        audience: None,
        selectors: Vec::new(),
        ..claims()
    };
    let output = python_verify(&signed_evidence(&claims), &NONCE, None);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
}

#[test]
fn python_rejects_evidence_with_a_flipped_payload_byte() {
    let mut evidence = signed_evidence(&claims());
    // A byte of the host name: the structure stays valid, so the refusal can
    // only come from the signature.
    let host_at = evidence
        .windows(6)
        .position(|window| window == b"node-1")
        .expect("hostname is in the payload");
    evidence[host_at] ^= 0x01;
    let output = python_verify(&evidence, &NONCE, Some(AUDIENCE));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("signature"),
        "{}",
        describe(&output)
    );
}

#[test]
fn python_rejects_evidence_with_a_flipped_signature_byte() {
    let mut evidence = signed_evidence(&claims());
    let last = evidence.len() - 1;
    evidence[last] ^= 0x80;
    let output = python_verify(&evidence, &NONCE, Some(AUDIENCE));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("signature"),
        "{}",
        describe(&output)
    );
}

#[test]
fn python_rejects_another_nonce() {
    let output = python_verify(&signed_evidence(&claims()), &[0x00; 32], Some(AUDIENCE));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("eat_nonce"),
        "{}",
        describe(&output)
    );
}

#[test]
fn python_rejects_another_audience() {
    let output = python_verify(
        &signed_evidence(&claims()),
        &NONCE,
        Some("spiffe://example.org/other"),
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("audience"),
        "{}",
        describe(&output)
    );
}

#[test]
fn python_reports_a_bad_nonce_argument_as_a_usage_error() {
    let output = python_verify(&signed_evidence(&claims()), b"short", None);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("nonce"),
        "{}",
        describe(&output)
    );
}
