//! A real issuer on loopback TLS, a tonic client for it, and nodes that sign
//! evidence as an attested daemon does: a ring session key certified by a
//! node SVID that the issuer's own CA code made, with the node selectors
//! node attestation would put in it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use attestd_issuer::ca::Ca;
use attestd_issuer::config::CaConfig;
use attestd_issuer::node_selectors;
use attestd_issuer::policy::BootFacts;
use attestd_issuer::server::ReloadHandle;
use attestd_issuer::{Config, Issuer};
use attestd_proto::evidence::{sign_certified_evidence, EvidenceClaims, EvidenceError, HostClaims};
use attestd_proto::v1::workload_identity_client::WorkloadIdentityClient;
use attestd_verifier::{HashAlg, PcrValues};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use tokio::sync::oneshot;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

pub const TD: &str = "example.org";
pub const AUDIENCE: &str = "spiffe://example.org";
/// Every wait is for an event, bounded by this.
pub const DEADLINE: Duration = Duration::from_secs(60);
pub const HOSTNAME: &str = "node-1";

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A running issuer; `stop` ends it.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub config: Config,
    /// The issuer's CA, loaded from the same files: makes node SVIDs.
    pub ca: Ca,
    pub bundle_pem: String,
    pub addr: SocketAddr,
    /// Where OIDC discovery listens, with `[oidc]` in the config.
    pub oidc_addr: Option<SocketAddr>,
    pub reload: ReloadHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Site {
    /// An issuer with `entries` as its entries file and `extra` config lines.
    pub async fn start(entries: &str, extra: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(dir.path().join("entries.toml"), entries).unwrap();
        std::fs::write(dir.path().join("ek-allowlist"), "00".repeat(32)).unwrap();
        let text = format!(
            "listen = \"127.0.0.1:0\"\n\
             trust_domain = \"{TD}\"\n\
             entries = {entries:?}\n\
             {extra}\n\
             [ca]\n\
             cert = {cert:?}\n\
             key = {key:?}\n\
             [ek]\n\
             allowlist = {allowlist:?}\n",
            entries = path("entries.toml"),
            cert = path("ca.pem"),
            key = path("ca.key"),
            allowlist = path("ek-allowlist"),
        );
        let config = Config::parse(&text, Path::new("issuer.toml")).expect("valid config");
        Self::start_with(dir, config).await
    }

    pub async fn start_with(dir: tempfile::TempDir, config: Config) -> Site {
        let issuer = Issuer::bind(config.clone())
            .await
            .expect("the issuer binds");
        let addr = issuer.local_addr().unwrap();
        let oidc_addr = issuer.oidc_addr();
        let bundle_pem = issuer.bundle_pem().to_owned();
        let reload = issuer.reload_handle();
        let ca = Ca::load_or_generate(&config.ca, TD).expect("the issuer's CA loads");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            issuer
                .serve(async {
                    let _ = stopped.await;
                })
                .await
                .expect("the issuer serves");
        });
        Site {
            dir,
            config,
            ca,
            bundle_pem,
            addr,
            oidc_addr,
            reload,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// A client over TLS that trusts only the issuer's bundle.
    pub async fn client(&self) -> WorkloadIdentityClient<Channel> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.bundle_pem))
            .domain_name("localhost");
        let channel = Endpoint::from_shared(self.url())
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .expect("TLS connection to the issuer");
        WorkloadIdentityClient::new(channel)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write_entries(&self, text: &str) {
        std::fs::write(self.path("entries.toml"), text).unwrap();
    }

    /// Stops the issuer and waits for it to finish, within the deadline.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(DEADLINE, task)
                .await
                .expect("the issuer stops")
                .unwrap();
        }
    }
}

/// An attested node as the issuer sees it: a session key and its node SVID.
pub struct Node {
    pub ek_hash: [u8; 32],
    pub session_key: EcdsaKeyPair,
    pub chain: Vec<Vec<u8>>,
    pub selectors: Vec<String>,
    rng: SystemRandom,
}

impl Node {
    /// A node whose EK hashes to `ek_byte` repeated, with SHA-256 PCRs 0 and 7
    /// quoted and, if given, a replayed boot log's facts, certified by `ca`
    /// as node attestation certifies it.
    pub fn attested(ca: &Ca, ek_byte: u8, boot: Option<BootFacts>) -> Node {
        let ek_hash = [ek_byte; 32];
        let pcrs: PcrValues = [
            (HashAlg::Sha256, 0, vec![ek_byte; 32]),
            (HashAlg::Sha256, 7, vec![0x07; 32]),
        ]
        .into_iter()
        .collect();
        let selectors = node_selectors::collect(&ek_hash, &pcrs, boot.as_ref());
        Self::with_selectors(ca, ek_hash, selectors)
    }

    pub fn with_selectors(ca: &Ca, ek_hash: [u8; 32], selectors: Vec<String>) -> Node {
        let rng = SystemRandom::new();
        let session_key = p256_key(&rng);
        let svid = ca
            .issue_node_svid(
                &node_id(&ek_hash),
                session_key.public_key().as_ref(),
                Duration::from_secs(600),
                &selectors,
                None,
            )
            .unwrap();
        Node {
            ek_hash,
            session_key,
            chain: vec![svid.der],
            selectors,
            rng,
        }
    }

    pub fn id(&self) -> String {
        node_id(&self.ek_hash)
    }

    /// The session key, an uncompressed SEC1 point.
    pub fn session_public_key(&self) -> &[u8] {
        self.session_key.public_key().as_ref()
    }

    /// Claims for mint evidence: this node, fresh, for the issuer.
    pub fn claims(&self, nonce: [u8; 32], selectors: &[&str]) -> EvidenceClaims {
        mint_claims(&self.ek_hash, nonce, selectors)
    }

    /// Evidence signed by the session key, with the node SVID chain.
    pub fn evidence(&self, claims: &EvidenceClaims) -> Vec<u8> {
        self.evidence_with_chain(claims, &self.chain)
    }

    pub fn evidence_with_chain(&self, claims: &EvidenceClaims, chain: &[Vec<u8>]) -> Vec<u8> {
        sign(&self.session_key, &self.rng, claims, chain)
    }
}

/// Claims for mint evidence from the node with `ek_hash`: fresh, for the
/// issuer, about a workload with `selectors` on host [`HOSTNAME`].
pub fn mint_claims(ek_hash: &[u8], nonce: [u8; 32], selectors: &[&str]) -> EvidenceClaims {
    EvidenceClaims {
        nonce: nonce.to_vec(),
        ueid: Some([&[0x01][..], ek_hash].concat()),
        issued_at: now() - 1,
        selectors: selectors.iter().map(|s| s.to_string()).collect(),
        binary: None,
        host: HostClaims {
            hostname: HOSTNAME.into(),
            kernel: "6.1.0-27-amd64".into(),
            os: "debian".into(),
            boot_id: "5f1b6c1e-3c1e-4a57-9a35-0c6f1d2e9b10".into(),
        },
        audience: Some(AUDIENCE.into()),
    }
}

/// Evidence as the daemon signs it: with its session key, carrying `chain`.
pub fn sign(
    session_key: &EcdsaKeyPair,
    rng: &SystemRandom,
    claims: &EvidenceClaims,
    chain: &[Vec<u8>],
) -> Vec<u8> {
    sign_certified_evidence(claims, session_key.public_key().as_ref(), chain, |tbs| {
        session_key
            .sign(rng, tbs)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|_| EvidenceError::Signing("ring refused".into()))
    })
    .unwrap()
}

pub fn node_id(ek_hash: &[u8]) -> String {
    format!("spiffe://{TD}/attestd/node/{}", hex::encode(ek_hash))
}

pub fn p256_key(rng: &SystemRandom) -> EcdsaKeyPair {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), rng).unwrap()
}

/// A workload's key pair, as SubjectPublicKeyInfo DER.
pub fn workload_key() -> Vec<u8> {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .public_key_der()
}

/// A CA with files of its own in `dir`.
pub fn other_ca(dir: &Path) -> Ca {
    Ca::load_or_generate(
        &CaConfig {
            cert: dir.join("other-ca.pem"),
            key: dir.join("other-ca.key"),
        },
        TD,
    )
    .unwrap()
}
