//! `attestd-issuer verify`: offline verification of evidence, run as the
//! binary operators use. The evidence is signed as an attested daemon signs
//! it: a ring session key, certified by a node SVID from the issuer's own CA
//! code. The same files go to tests/python/verify_evidence.py (pycose plus the
//! `cryptography` package's path validator), a verifier that shares no code
//! with ours.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use attestd_issuer::ca::Ca;
use attestd_issuer::config::CaConfig;
use attestd_proto::evidence::{sign_certified_evidence, EvidenceClaims, EvidenceError, HostClaims};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

const ISSUER: &str = env!("CARGO_BIN_EXE_attestd-issuer");
const TRUST_DOMAIN: &str = "example.org";
const NONCE: [u8; 16] = *b"offline-nonce-16";
const EK_HASH: [u8; 32] = [0x5c; 32];

fn node_id() -> String {
    format!(
        "spiffe://{TRUST_DOMAIN}/attestd/node/{}",
        hex::encode(EK_HASH)
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A directory with an issuer CA (made by the issuer's own code), its bundle,
/// and a policy file trusting it.
struct Site {
    dir: tempfile::TempDir,
    ca: Ca,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_generate(
            &CaConfig {
                cert: dir.path().join("ca.pem"),
                key: dir.path().join("ca.key"),
            },
            TRUST_DOMAIN,
        )
        .unwrap();
        let site = Site { dir, ca };
        site.policy("policy.toml", "");
        site
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a policy file; `bundle` is relative, so it is found next to it.
    fn policy(&self, name: &str, extra: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(
            &path,
            format!("trust_domain = \"{TRUST_DOMAIN}\"\nbundle = \"ca.pem\"\n{extra}"),
        )
        .unwrap();
        path
    }

    /// Evidence signed by a fresh session key; `svid_for` chooses whose key
    /// the node SVID certifies (the signer's, unless a test says otherwise).
    fn evidence(&self, claims: &EvidenceClaims, certify: Certify) -> Vec<u8> {
        let rng = SystemRandom::new();
        let key = session_key(&rng);
        let chain = match certify {
            Certify::Signer => vec![self.svid(key.public_key().as_ref(), &node_id())],
            Certify::OtherKey => {
                vec![self.svid(session_key(&rng).public_key().as_ref(), &node_id())]
            }
            Certify::Nothing => Vec::new(),
        };
        sign_certified_evidence(claims, key.public_key().as_ref(), &chain, |tbs| {
            key.sign(&rng, tbs)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| EvidenceError::Signing("ring refused".into()))
        })
        .unwrap()
    }

    fn svid(&self, public_key: &[u8], spiffe_id: &str) -> Vec<u8> {
        self.ca
            .issue_svid(spiffe_id, public_key, Duration::from_secs(600))
            .unwrap()
            .der
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

enum Certify {
    Signer,
    OtherKey,
    Nothing,
}

fn session_key(rng: &SystemRandom) -> EcdsaKeyPair {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), rng).unwrap()
}

fn claims() -> EvidenceClaims {
    EvidenceClaims {
        nonce: NONCE.to_vec(),
        ueid: Some([&[0x01][..], &EK_HASH[..]].concat()),
        issued_at: now() - 2,
        selectors: vec!["unix:gid:1000".into(), "unix:uid:1000".into()],
        binary: None,
        host: HostClaims {
            hostname: "node-1".into(),
            kernel: "6.1.0-27-amd64".into(),
            os: "debian".into(),
            boot_id: "5f1b6c1e-3c1e-4a57-9a35-0c6f1d2e9b10".into(),
        },
        audience: None,
    }
}

fn verify(evidence: &Path, policy: &Path, extra: &[&str]) -> Output {
    Command::new(ISSUER)
        .arg("verify")
        .arg(evidence)
        .arg("--policy")
        .arg(policy)
        .args(["--nonce", &hex::encode(NONCE)])
        .args(extra)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exit status and stderr, for refusal assertions.
fn refused(output: &Output) -> (i32, String) {
    (output.status.code().unwrap_or(-1), text(&output.stderr))
}

#[test]
fn evidence_from_an_attested_node_is_accepted_and_described() {
    let site = Site::new();
    let evidence = site.write("ev.cbor", &site.evidence(&claims(), Certify::Signer));
    let output = verify(&evidence, &site.path("policy.toml"), &[]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("evidence: accepted"), "{stdout}");
    assert!(stdout.contains(&format!("node: {}", node_id())), "{stdout}");
    assert!(
        stdout.contains("selectors: unix:gid:1000 unix:uid:1000"),
        "{stdout}"
    );

    // The same bytes from standard input.
    let mut child = Command::new(ISSUER)
        .args(["verify", "-", "--policy"])
        .arg(site.path("policy.toml"))
        .args(["--nonce", &hex::encode(NONCE)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        &std::fs::read(&evidence).unwrap(),
    )
    .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
}

#[test]
fn each_failed_check_is_refused_with_its_reason() {
    let site = Site::new();
    let policy = site.path("policy.toml");
    let good = site.write("good.cbor", &site.evidence(&claims(), Certify::Signer));

    let cases: Vec<(&str, Output, &str)> = vec![
        (
            "another CA's bundle",
            {
                let other = Site::new();
                std::fs::copy(other.path("ca.pem"), site.path("other-ca.pem")).unwrap();
                let policy = site.path("other.toml");
                std::fs::write(
                    &policy,
                    format!("trust_domain = \"{TRUST_DOMAIN}\"\nbundle = \"other-ca.pem\"\n"),
                )
                .unwrap();
                verify(&good, &policy, &[])
            },
            "does not verify against the trust bundle",
        ),
        (
            "no node SVID",
            verify(
                &site.write("bare.cbor", &site.evidence(&claims(), Certify::Nothing)),
                &policy,
                &[],
            ),
            "no node SVID chain",
        ),
        (
            "an SVID for another key",
            verify(
                &site.write("stolen.cbor", &site.evidence(&claims(), Certify::OtherKey)),
                &policy,
                &[],
            ),
            "certifies another key",
        ),
        (
            "another nonce",
            Command::new(ISSUER)
                .arg("verify")
                .arg(&good)
                .arg("--policy")
                .arg(&policy)
                .args(["--nonce", &hex::encode([0u8; 16])])
                .output()
                .unwrap(),
            "nonce does not match",
        ),
        (
            "a node outside the policy",
            verify(
                &good,
                &site.policy(
                    "nodes.toml",
                    &format!("nodes = [\"{}\"]\n", "ab".repeat(32)),
                ),
                &[],
            ),
            "is not one of the policy's nodes",
        ),
        (
            "a missing selector",
            verify(
                &good,
                &site.policy("selectors.toml", "required_selectors = [\"unix:uid:0\"]\n"),
                &[],
            ),
            "unix:uid:0",
        ),
        (
            "an audience it was not made for",
            verify(
                &good,
                &site.policy("audience.toml", "audience = \"spiffe://example.org/db\"\n"),
                &[],
            ),
            "audience",
        ),
        (
            "evidence too old",
            verify(&good, &policy, &["--at", &(now() + 301).to_string()]),
            "s old",
        ),
        (
            "a flipped byte",
            {
                let mut bytes = std::fs::read(&good).unwrap();
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
                verify(&site.write("flipped.cbor", &bytes), &policy, &[])
            },
            "signature does not verify",
        ),
        (
            "not CBOR at all",
            verify(&site.write("junk.cbor", b"not evidence"), &policy, &[]),
            "malformed",
        ),
        (
            "a file larger than evidence can be",
            verify(&site.write("huge.cbor", &vec![0u8; 70_000]), &policy, &[]),
            "larger than",
        ),
    ];
    for (what, output, reason) in cases {
        let (code, stderr) = refused(&output);
        assert_eq!(code, 1, "{what}: exit {code}, stderr {stderr}");
        assert!(
            stderr.contains(reason),
            "{what}: {stderr:?} lacks {reason:?}"
        );
        assert!(
            output.stdout.is_empty(),
            "{what}: printed {:?}",
            text(&output.stdout)
        );
    }
    // An allowlist naming this node, by SPIFFE ID or by bare hash, admits it.
    for entry in [node_id(), hex::encode(EK_HASH)] {
        let admitted = site.policy("admit.toml", &format!("nodes = [\"{entry}\"]\n"));
        assert!(verify(&good, &admitted, &[]).status.success(), "{entry}");
    }
}

#[test]
fn usage_errors_exit_64_and_unreadable_files_66() {
    let site = Site::new();
    let good = site.write("good.cbor", &site.evidence(&claims(), Certify::Signer));
    let cases = [
        (
            site.policy("typo.toml", "max_age = 3\n"),
            64,
            "unknown field",
        ),
        (
            site.policy("bad-node.toml", "nodes = [\"node-1\"]\n"),
            64,
            "nodes",
        ),
        (site.path("absent.toml"), 66, "absent.toml"),
    ];
    for (policy, code, reason) in cases {
        let (found, stderr) = refused(&verify(&good, &policy, &[]));
        assert_eq!(found, code, "{stderr}");
        assert!(stderr.contains(reason), "{stderr:?} lacks {reason:?}");
    }
    let (found, stderr) = refused(&verify(
        &site.path("absent.cbor"),
        &site.path("policy.toml"),
        &[],
    ));
    assert_eq!(found, 66, "{stderr}");
    let output = Command::new(ISSUER)
        .arg("verify")
        .arg(&good)
        .arg("--policy")
        .arg(site.path("policy.toml"))
        .args(["--nonce", "not-hex"])
        .output()
        .unwrap();
    assert_eq!(refused(&output).0, 64);
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn python_verify(site: &Site, evidence: &Path, bundle: &Path) -> Output {
    let python = repo_root().join("target/venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/ensure-deps.sh (make test runs it first)",
        python.display()
    );
    let _ = site;
    Command::new(python)
        .arg(repo_root().join("tests/python/verify_evidence.py"))
        .arg(evidence)
        .arg(hex::encode(NONCE))
        .arg("--bundle")
        .arg(bundle)
        .args(["--trust-domain", TRUST_DOMAIN])
        .output()
        .unwrap()
}

#[test]
fn an_independent_verifier_agrees_on_the_node_svid_chain() {
    let site = Site::new();
    let good = site.write("good.cbor", &site.evidence(&claims(), Certify::Signer));
    let output = python_verify(&site, &good, &site.path("ca.pem"));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains(&node_id()),
        "{}",
        text(&output.stdout)
    );

    let other = Site::new();
    let refusals = [
        (
            "another CA",
            python_verify(&site, &good, &other.path("ca.pem")),
            "does not verify",
        ),
        (
            "no chain",
            python_verify(
                &site,
                &site.write("bare.cbor", &site.evidence(&claims(), Certify::Nothing)),
                &site.path("ca.pem"),
            ),
            "no x5chain",
        ),
        (
            "another key",
            python_verify(
                &site,
                &site.write("stolen.cbor", &site.evidence(&claims(), Certify::OtherKey)),
                &site.path("ca.pem"),
            ),
            "another key",
        ),
    ];
    for (what, output, reason) in refusals {
        assert_eq!(
            output.status.code(),
            Some(1),
            "{what}: {}",
            text(&output.stderr)
        );
        assert!(
            text(&output.stderr).contains(reason),
            "{what}: {}",
            text(&output.stderr)
        );
    }
}
