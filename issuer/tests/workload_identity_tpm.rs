//! From a TPM to a workload SVID: a swtpm node attests to the real issuer
//! over TLS with the daemon's own protocol code, and the node SVID it gets
//! carries the node selectors that registration entries then match when the
//! node asks for a workload's X.509-SVID.

mod support;

use std::path::Path;

use attestd::node::{attest_node, IssuerClient, LogPaths};
use attestd_attestors::tpm::{AkAlgorithm, EkAlgorithm, Tpm, TpmConfig};
use attestd_issuer::identity::mint_x509_nonce;
use attestd_issuer::{node_selectors, Config};
use attestd_proto::v1::MintX509Request;
use attestd_tests::swtpm::Swtpm;
use ring::rand::SystemRandom;
use ring::signature::KeyPair;
use support::{mint_claims, p256_key, sign, workload_key, Site, TD};
use tonic::Code;

async fn ek_hash(tpm: &Tpm) -> String {
    let ek = tpm.ek(EkAlgorithm::Rsa2048).await.unwrap();
    let spki = attestd_verifier::TpmPublic::parse(&ek.public)
        .unwrap()
        .spki_der()
        .unwrap();
    hex::encode(ring::digest::digest(&ring::digest::SHA256, &spki))
}

fn issuer_config(dir: &Path, swtpm: &Swtpm) -> Config {
    let roots = dir.join("ek-roots");
    std::fs::create_dir_all(&roots).unwrap();
    std::fs::copy(swtpm.ca().root_cert_pem(), roots.join("root.pem")).unwrap();
    std::fs::copy(
        swtpm.ca().intermediate_cert_pem(),
        roots.join("intermediate.pem"),
    )
    .unwrap();
    let path = |name: &str| dir.join(name).display().to_string();
    let text = format!(
        "listen = \"127.0.0.1:0\"\ntrust_domain = \"{TD}\"\nentries = {entries:?}\n\
         [ca]\ncert = {cert:?}\nkey = {key:?}\n[ek]\nroots_dir = {roots:?}\n",
        entries = path("entries.toml"),
        cert = path("ca.pem"),
        key = path("ca.key"),
        roots = roots.display().to_string(),
    );
    Config::parse(&text, Path::new("issuer.toml")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_attested_on_its_tpm_gets_svids_for_entries_naming_its_ek_and_pcrs() {
    let swtpm = Swtpm::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tpm = Tpm::open(TpmConfig {
        tcti: swtpm.tcti().parse().unwrap(),
        state_dir: dir.path().join("tpm-state"),
        ek_algorithm: EkAlgorithm::Rsa2048,
        ak_algorithm: AkAlgorithm::EccP256,
        ..TpmConfig::default()
    })
    .await
    .unwrap();
    let ek = ek_hash(&tpm).await;
    // Nothing measured into a fresh swtpm: its PCRs are all zero.
    let pcr7 = format!("tpm:pcr:sha256:7:{}", "00".repeat(32));
    std::fs::write(
        dir.path().join("entries.toml"),
        format!(
            "[[entry]]\nspiffe_id = \"spiffe://{TD}/on-this-tpm\"\nselectors = [\"unix:uid:1000\"]\n\
             node_selectors = [\"tpm:ek:{ek}\", {pcr7:?}]\n\
             [[entry]]\nspiffe_id = \"spiffe://{TD}/on-another-tpm\"\nselectors = [\"unix:uid:1000\"]\n\
             node_selectors = [\"tpm:ek:{other}\"]\n",
            other = "0".repeat(64)
        ),
    )
    .unwrap();
    let config = issuer_config(dir.path(), &swtpm);
    let site_dir = tempfile::tempdir().unwrap();
    let mut site = Site::start_with(site_dir, config).await;

    // The daemon's side of node attestation, as `attestd run` does it.
    let rng = SystemRandom::new();
    let session_key = p256_key(&rng);
    let issuer = IssuerClient::new(&site.url(), site.bundle_pem.as_bytes(), None).unwrap();
    let no_logs = LogPaths {
        boot: dir.path().join("no-boot-log"),
        ima: dir.path().join("no-ima-log"),
    };
    let node_svid = attest_node(
        &tpm,
        EkAlgorithm::Rsa2048,
        &issuer,
        session_key.public_key().as_ref(),
        &no_logs,
    )
    .await
    .expect("the node is attested");
    assert_eq!(
        node_svid.spiffe_id,
        format!("spiffe://{TD}/attestd/node/{ek}")
    );

    // What node attestation proved is in the node SVID: the EK, and each of
    // the eight PCRs the default policy quotes. No boot log, no boot facts.
    let selectors = node_selectors::read_der(&node_svid.chain[0]).unwrap();
    let mut expected = vec![format!("tpm:ek:{ek}")];
    expected.extend((0..8).map(|i| format!("tpm:pcr:sha256:{i}:{}", "00".repeat(32))));
    expected.sort();
    assert_eq!(selectors, expected);

    // The daemon asks for a workload's SVID with evidence under that chain.
    let ek_bytes = hex::decode(&ek).unwrap();
    let selectors = ["unix:uid:1000", "unix:gid:1000"];
    let mint = |key: &[u8]| MintX509Request {
        evidence: sign(
            &session_key,
            &rng,
            &mint_claims(&ek_bytes, mint_x509_nonce(key), &selectors),
            &node_svid.chain,
        ),
        public_key: key.to_vec(),
    };
    let mut client = site.client().await;
    let minted = client
        .mint_x509svi_ds(mint(&workload_key()))
        .await
        .expect("the entry naming this TPM applies")
        .into_inner();
    let ids: Vec<&str> = minted.svids.iter().map(|s| s.spiffe_id.as_str()).collect();
    assert_eq!(ids, vec![format!("spiffe://{TD}/on-this-tpm")]);

    // Pinned to a PCR value this TPM does not have: refused, and the message
    // shows the node's real selectors.
    std::fs::write(
        dir.path().join("entries.toml"),
        format!(
            "[[entry]]\nspiffe_id = \"spiffe://{TD}/on-this-tpm\"\nselectors = [\"unix:uid:1000\"]\n\
             node_selectors = [\"tpm:ek:{ek}\", \"tpm:pcr:sha256:7:{}\"]\n",
            "11".repeat(32)
        ),
    )
    .unwrap();
    assert!(site.reload.reload_entries().unwrap().changed);
    let status = client
        .mint_x509svi_ds(mint(&workload_key()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains(&pcr7), "{}", status.message());
    site.stop().await;
}
