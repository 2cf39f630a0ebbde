//! Shared by the end-to-end tests: a real issuer on loopback TLS, its config,
//! a TPM client on a swtpm, and a daemon config pointing at both.
#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::time::Duration;

use attestd::config::Config as DaemonConfig;
use attestd::node::IssuerClient;
use attestd_attestors::tpm::{AkAlgorithm, EkAlgorithm, Tpm, TpmConfig};
use attestd_issuer::{Config as IssuerConfig, Issuer};
use attestd_tests::swtpm::{Swtpm, TestCa};
use tokio::sync::oneshot;

/// Every wait in these tests is for an event, bounded by this.
pub const DEADLINE: Duration = Duration::from_secs(60);
pub const TRUST_DOMAIN: &str = "example.org";

/// A running issuer; dropping it stops it.
pub struct TestIssuer {
    pub addr: std::net::SocketAddr,
    pub bundle: PathBuf,
    pub config: IssuerConfig,
    /// What SIGHUP does: re-reads EK trust (and entries).
    pub reload: attestd_issuer::server::ReloadHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestIssuer {
    pub async fn start(config: IssuerConfig, dir: &Path) -> TestIssuer {
        let issuer = Issuer::bind(config.clone()).await.expect("issuer binds");
        Self::serve(issuer, config, dir)
    }

    /// Serves an issuer the caller bound (say, on sockets of its own).
    pub fn serve(issuer: Issuer, config: IssuerConfig, dir: &Path) -> TestIssuer {
        let addr = issuer.local_addr().unwrap();
        let reload = issuer.reload_handle();
        let bundle = dir.join("issuer-bundle.pem");
        std::fs::write(&bundle, issuer.bundle_pem()).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            issuer
                .serve(async {
                    let _ = stopped.await;
                })
                .await
                .expect("issuer serves");
        });
        let mut config = config;
        config.listen = addr;
        TestIssuer {
            addr,
            bundle,
            config,
            reload,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    pub fn client(&self) -> IssuerClient {
        let bundle = std::fs::read(&self.bundle).unwrap();
        IssuerClient::new(&self.url(), &bundle, None).unwrap()
    }
}

/// Issuer config: EK roots from `ca` (if any), an allowlist (if any), rules.
pub fn issuer_config(
    dir: &Path,
    ca: Option<&TestCa>,
    allowlist: Option<&[String]>,
    extra: &str,
) -> IssuerConfig {
    let roots = dir.join("ek-roots");
    std::fs::create_dir_all(&roots).unwrap();
    if let Some(ca) = ca {
        std::fs::copy(ca.root_cert_pem(), roots.join("root.pem")).unwrap();
        std::fs::copy(ca.intermediate_cert_pem(), roots.join("intermediate.pem")).unwrap();
    }
    let allowlist_line = match allowlist {
        Some(hashes) => {
            let path = dir.join("ek-allowlist");
            std::fs::write(&path, hashes.join("\n")).unwrap();
            format!("allowlist = {:?}\n", path.display().to_string())
        }
        None => String::new(),
    };
    let text = format!(
        "listen = \"127.0.0.1:0\"\n\
         trust_domain = \"{TRUST_DOMAIN}\"\n\
         node_svid_ttl_secs = 3600\n\
         {extra}\n\
         [ca]\n\
         cert = {cert:?}\n\
         key = {key:?}\n\
         [ek]\n\
         roots_dir = {roots:?}\n\
         {allowlist_line}",
        cert = dir.join("ca.pem").display().to_string(),
        key = dir.join("ca.key").display().to_string(),
        roots = roots.display().to_string(),
    );
    IssuerConfig::parse(&text, Path::new("test-issuer.toml")).expect("valid issuer config")
}

pub async fn open_tpm(swtpm: &Swtpm, state: &Path) -> Tpm {
    Tpm::open(TpmConfig {
        tcti: swtpm.tcti().parse().unwrap(),
        state_dir: state.to_owned(),
        ek_algorithm: EkAlgorithm::Rsa2048,
        ak_algorithm: AkAlgorithm::EccP256,
        ..TpmConfig::default()
    })
    .await
    .unwrap()
}

pub fn daemon_config(dir: &Path, swtpm: &Swtpm, issuer: &TestIssuer) -> DaemonConfig {
    let mut config = DaemonConfig::default();
    config.api.socket = dir.join("api.sock");
    config.tpm.tcti = swtpm.tcti();
    config.tpm.state_dir = dir.join("tpm-state");
    config.tpm.ek_algorithm = "rsa2048".into();
    config.issuer.url = Some(issuer.url());
    config.issuer.ca_bundle = Some(issuer.bundle.clone());
    config.issuer.retry_initial_ms = 50;
    config.issuer.retry_max_ms = 500;
    config.issuer.boot_event_log = dir.join("no-boot-log");
    config.issuer.ima_log = dir.join("no-ima-log");
    assert_eq!(config.validate(), Vec::new());
    config
}

/// A daemon serving `config` whose node holds its node SVID: binds, serves,
/// and waits for the first successful node attestation (failing the test on
/// a failed one). Send on the returned sender to stop it.
pub async fn serve_until_attested(
    config: DaemonConfig,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), attestd::daemon::RunError>>,
) {
    let bound = attestd::daemon::Daemon::new(config).bind().await.unwrap();
    serve_bound_until_attested(bound).await
}

/// [`serve_until_attested`] for a daemon the caller bound (to keep handles
/// to its parts first).
pub async fn serve_bound_until_attested(
    bound: attestd::daemon::BoundDaemon,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), attestd::daemon::RunError>>,
) {
    let node = bound.node_state();
    let mut outcomes = node.outcomes();
    let (stop, stopped) = oneshot::channel::<()>();
    let daemon = tokio::spawn(bound.serve(async {
        let _ = stopped.await;
    }));
    while node.current_svid().is_none() {
        next_outcome(&mut outcomes).await;
        assert!(
            node.last_error().is_none(),
            "node attestation failed: {:?}",
            node.last_error()
        );
    }
    (stop, daemon)
}

/// Waits for the daemon's next attestation outcome.
pub async fn next_outcome(outcomes: &mut tokio::sync::watch::Receiver<u64>) {
    tokio::time::timeout(DEADLINE, outcomes.changed())
        .await
        .expect("an attestation outcome within the deadline")
        .expect("the daemon is running");
}

/// The SPIFFE ID in an X.509-SVID, after checking it is signed by `ca_pem`.
pub fn svid_spiffe_id(svid_der: &[u8], ca_pem: &Path) -> String {
    let ca_der = pem::parse(std::fs::read(ca_pem).unwrap())
        .unwrap()
        .into_contents();
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    let (_, svid) = x509_parser::parse_x509_certificate(svid_der).unwrap();
    svid.verify_signature(Some(ca.public_key()))
        .expect("the SVID is signed by the issuer's CA");
    let san = svid
        .subject_alternative_name()
        .unwrap()
        .expect("an SVID has a SAN");
    let uris: Vec<String> = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri) => Some(uri.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(uris.len(), 1, "exactly one URI SAN: {uris:?}");
    uris[0].clone()
}
