//! SPIFFE identities for workloads, end to end: a swtpm with EK certificates,
//! the issuer on loopback TLS with registration entries, the daemon attesting
//! its node and serving the SPIFFE Workload API on its socket, and clients
//! that are not ours: py-spiffe, the Rust `spiffe` crate, `openssl verify`
//! and PyJWT.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use attestd_proto::spiffe::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use attestd_tests::swtpm::Swtpm;
use attestd_tests::{repo_root, venv_python};
use tokio::sync::oneshot;
use tokio_stream::StreamExt;

mod common;
use common::{
    daemon_config, issuer_config, serve_until_attested, svid_spiffe_id, TestIssuer, DEADLINE,
    TRUST_DOMAIN,
};

/// One entry: a SPIFFE ID for the processes of one uid.
fn entry(path: &str, uid: u32, x509_ttl_secs: u64) -> String {
    format!(
        "[[entry]]\n\
         spiffe_id = \"spiffe://{TRUST_DOMAIN}/{path}\"\n\
         selectors = [\"unix:uid:{uid}\"]\n\
         x509_ttl_secs = {x509_ttl_secs}\n\
         jwt_ttl_secs = 300\n"
    )
}

/// A node with its daemon, attested by an issuer that knows `entries`.
struct World {
    dir: tempfile::TempDir,
    _swtpm: Swtpm,
    issuer: TestIssuer,
    stop: Option<oneshot::Sender<()>>,
    daemon: Option<tokio::task::JoinHandle<Result<(), attestd::daemon::RunError>>>,
}

impl World {
    async fn start(entries: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        // Workloads running as other uids must reach the socket inside.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let swtpm = Swtpm::start().unwrap();
        let entries_path = dir.path().join("entries.toml");
        std::fs::write(&entries_path, entries).unwrap();
        let config = issuer_config(
            dir.path(),
            Some(swtpm.ca()),
            None,
            &format!("entries = {:?}\n", entries_path.display().to_string()),
        );
        let issuer = TestIssuer::start(config, dir.path()).await;
        let (stop, daemon) = serve_until_attested(daemon_config(dir.path(), &swtpm, &issuer)).await;
        World {
            dir,
            _swtpm: swtpm,
            issuer,
            stop: Some(stop),
            daemon: Some(daemon),
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("api.sock")
    }

    fn rewrite_entries(&self, entries: &str) {
        std::fs::write(self.dir.path().join("entries.toml"), entries).unwrap();
        self.issuer
            .reload
            .reload_entries()
            .expect("the issuer reloads its entries");
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(daemon) = self.daemon.take() {
            daemon.await.unwrap().unwrap();
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a workload built on the Rust `spiffe` crate (src/bin/spiffe_fetch.rs)
/// as `uid`: a separate process the daemon attests like any other.
fn workload_as(world: &World, uid: u32, args: &[&str]) -> Output {
    let uid_text = uid.to_string();
    Command::new("setpriv")
        .args(["--reuid", &uid_text, "--regid", &uid_text, "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_spiffe_fetch"))
        .arg(world.socket())
        .args(args)
        .output()
        .expect("setpriv runs")
}

/// Runs tests/python/spiffe_client.py (py-spiffe, unchanged) as `uid`.
fn py_spiffe_as(world: &World, uid: u32, args: &[&str]) -> Output {
    let uid_text = uid.to_string();
    Command::new("setpriv")
        .args(["--reuid", &uid_text, "--regid", &uid_text, "--clear-groups"])
        .arg(venv_python())
        .arg(repo_root().join("tests/python/spiffe_client.py"))
        .arg(world.socket())
        .args(args)
        .output()
        .expect("setpriv runs")
}

/// tests/python/verify_jwt_svid.py: PyJWT checks `token` with `jwks` alone.
fn pyjwt_verify(token: &Path, jwks: &Path, audience: &str) -> Output {
    Command::new(venv_python())
        .arg(repo_root().join("tests/python/verify_jwt_svid.py"))
        .arg(token)
        .arg(jwks)
        .arg(audience)
        .arg(TRUST_DOMAIN)
        .output()
        .unwrap()
}

/// The JWT bundle as the socket serves it (public data), for PyJWT.
async fn jwks(world: &World) -> Vec<u8> {
    let mut stream = raw_client(world)
        .await
        .fetch_jwt_bundles(with_header(attestd_proto::spiffe::JwtBundlesRequest {}))
        .await
        .expect("JWT bundles")
        .into_inner();
    let bundles = stream.message().await.unwrap().expect("a JWT bundle");
    bundles
        .bundles
        .get(&format!("spiffe://{TRUST_DOMAIN}"))
        .expect("the trust domain's JWK Set")
        .clone()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A directory `uid` may write into.
fn out_dir_for(world: &World, uid: u32) -> PathBuf {
    let dir = world.dir.path().join(format!("out-{uid}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(uid), Some(uid)).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_running_as_two_uids_get_their_own_identities_and_a_third_is_denied() {
    if !is_root() {
        eprintln!("skipped: running workloads as other uids needs root (CI runs as root)");
        return;
    }
    let mut world = World::start(&format!(
        "{}{}",
        entry("payments", 1001, 3600),
        entry("ledger", 1002, 3600)
    ))
    .await;
    let jwks_path = world.dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks(&world).await).unwrap();

    for (uid, path) in [(1001, "payments"), (1002, "ledger")] {
        let expected = format!("spiffe://{TRUST_DOMAIN}/{path}");
        // The Rust spiffe crate, as this uid: X.509-SVID, key and bundle.
        let out = out_dir_for(&world, uid);
        let output = workload_as(&world, uid, &["x509", out.to_str().unwrap()]);
        assert!(
            output.status.success(),
            "uid {uid}: {}",
            text(&output.stderr)
        );
        assert_eq!(text(&output.stdout).trim(), expected, "uid {uid}");
        let key_mode = std::fs::metadata(out.join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o077, 0, "the key file is private");
        // openssl accepts the SVID against the bundle, as any TLS peer would.
        let verify = Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(out.join("bundle.pem"))
            .arg(out.join("svid.pem"))
            .output()
            .unwrap();
        assert!(
            verify.status.success() && text(&verify.stdout).contains(": OK"),
            "openssl verify: {}{}",
            text(&verify.stdout),
            text(&verify.stderr)
        );
        assert_eq!(
            svid_spiffe_id(
                &pem::parse(std::fs::read(out.join("svid.pem")).unwrap())
                    .unwrap()
                    .into_contents(),
                &world.issuer.bundle
            ),
            expected
        );
        // A JWT-SVID, verified by PyJWT with the JWT bundle alone.
        let output = workload_as(
            &world,
            uid,
            &["jwt", "spiffe://example.org/db", out.to_str().unwrap()],
        );
        assert!(
            output.status.success(),
            "uid {uid}: {}",
            text(&output.stderr)
        );
        let checked = pyjwt_verify(
            &out.join("token.jwt"),
            &jwks_path,
            "spiffe://example.org/db",
        );
        assert!(checked.status.success(), "PyJWT: {}", text(&checked.stderr));
        assert!(
            text(&checked.stdout).contains(&format!("\"sub\": \"{expected}\"")),
            "{}",
            text(&checked.stdout)
        );
        // ...and refuses it for another audience.
        let wrong = pyjwt_verify(
            &out.join("token.jwt"),
            &jwks_path,
            "spiffe://example.org/other",
        );
        assert_eq!(wrong.status.code(), Some(1));
    }

    // py-spiffe, as it ships: X.509-SVID with bundle, and a JWT-SVID that
    // PyJWT verifies with the key py-spiffe took from the JWT bundle.
    let out = world.dir.path().join("py-1001");
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(1001), Some(1001)).unwrap();
    let output = py_spiffe_as(&world, 1001, &["x509", out.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "py-spiffe: {}",
        text(&output.stderr)
    );
    let payments = format!("spiffe://{TRUST_DOMAIN}/payments");
    assert!(
        text(&output.stdout).contains(&payments),
        "{}",
        text(&output.stdout)
    );
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(out.join("bundle.pem"))
        .arg(out.join("svid.pem"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "openssl verify: {}",
        text(&verify.stderr)
    );
    let output = py_spiffe_as(&world, 1001, &["jwt", "spiffe://example.org/db"]);
    assert!(
        output.status.success(),
        "py-spiffe: {}",
        text(&output.stderr)
    );
    assert!(
        text(&output.stdout).contains(&format!("\"sub\": \"{payments}\"")),
        "{}",
        text(&output.stdout)
    );

    // A third uid has no entry: PERMISSION_DENIED, naming what was seen.
    let out = out_dir_for(&world, 1003);
    let output = workload_as(&world, 1003, &["x509", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let stderr = text(&output.stderr);
    assert!(stderr.to_lowercase().contains("permission"), "{stderr}");
    assert!(stderr.contains("unix:uid:1003"), "{stderr}");
    world.stop().await;
}

/// Our own tonic client, for the cases a library client hides.
async fn raw_client(world: &World) -> SpiffeWorkloadApiClient<tonic::transport::Channel> {
    SpiffeWorkloadApiClient::new(
        attestd::api::client::connect(&world.socket())
            .await
            .unwrap(),
    )
}

fn with_header<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("workload.spiffe.io", "true".parse().unwrap());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_security_header_are_refused() {
    let mut world = World::start(&entry("root", 0, 3600)).await;
    let mut client = raw_client(&world).await;
    let status = client
        .fetch_jwtsvid(attestd_proto::spiffe::JwtsvidRequest {
            audience: vec!["db".into()],
            spiffe_id: String::new(),
        })
        .await
        .expect_err("no header, no SVID");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("workload.spiffe.io"),
        "{status:?}"
    );
    // The same request with the header is served.
    let svids = client
        .fetch_jwtsvid(with_header(attestd_proto::spiffe::JwtsvidRequest {
            audience: vec!["db".into()],
            spiffe_id: String::new(),
        }))
        .await
        .expect("with the header, the SVID")
        .into_inner();
    assert_eq!(svids.svids.len(), 1);
    // An empty audience is a bad request, not a token for anyone.
    let status = client
        .fetch_jwtsvid(with_header(attestd_proto::spiffe::JwtsvidRequest {
            audience: vec![],
            spiffe_id: String::new(),
        }))
        .await
        .expect_err("an audience is required");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_spiffe_crate_sees_rotations_of_a_short_lived_svid_and_each_verifies() {
    let mut world = World::start(&entry("rotating", 0, 10)).await;
    let client =
        spiffe::WorkloadApiClient::connect_to(format!("unix:{}", world.socket().display()))
            .await
            .expect("the spiffe crate connects");

    // X.509 context, JWT-SVID and bundles through the crate's one-shot calls.
    let context = client.fetch_x509_context().await.expect("X.509 context");
    let svid = context.default_svid().expect("an SVID").clone();
    let expected = format!("spiffe://{TRUST_DOMAIN}/rotating");
    assert_eq!(svid.spiffe_id().to_string(), expected);
    let jwt = client
        .fetch_jwt_svid(["spiffe://example.org/db"], None)
        .await
        .expect("a JWT-SVID");
    assert_eq!(jwt.spiffe_id().to_string(), expected);
    let jwt_bundles = client.fetch_jwt_bundles().await.expect("JWT bundles");
    let trust_domain = spiffe::TrustDomain::new(TRUST_DOMAIN).unwrap();
    assert!(jwt_bundles.get(&trust_domain).is_some());
    // The daemon's ValidateJWTSVID accepts the token for its audience only.
    let validated = client
        .validate_jwt_token("spiffe://example.org/db", jwt.token())
        .await
        .expect("the daemon validates its own trust domain's token");
    assert_eq!(validated.spiffe_id().to_string(), expected);
    assert!(client
        .validate_jwt_token("spiffe://example.org/other", jwt.token())
        .await
        .is_err());

    // A 10 s SVID rotates every 5 s: the stream sees the first and two more.
    let mut stream = client.stream_x509_svids().await.expect("a stream");
    let mut seen: Vec<Vec<u8>> = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while seen.len() < 3 {
            let svid = stream
                .next()
                .await
                .expect("the stream stays open")
                .expect("an SVID update");
            let leaf = svid.leaf().as_ref().to_vec();
            assert_eq!(svid_spiffe_id(&leaf, &world.issuer.bundle), expected);
            if seen.last() != Some(&leaf) {
                seen.push(leaf);
            }
        }
    })
    .await
    .expect("two rotations within the deadline");
    assert_eq!(seen.len(), 3, "three distinct certificates");
    world.stop().await;
}

async fn issuer_health(world: &World) -> tonic_health::pb::health_check_response::ServingStatus {
    let channel = attestd::api::client::connect(&world.socket())
        .await
        .unwrap();
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: attestd::daemon::ISSUER_HEALTH_SERVICE.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status()
}

/// Waits on the daemon's health watch until the issuer service says `wanted`.
async fn issuer_health_becomes(
    world: &World,
    wanted: tonic_health::pb::health_check_response::ServingStatus,
) {
    let channel = attestd::api::client::connect(&world.socket())
        .await
        .unwrap();
    let mut updates = tonic_health::pb::health_client::HealthClient::new(channel)
        .watch(tonic_health::pb::HealthCheckRequest {
            service: attestd::daemon::ISSUER_HEALTH_SERVICE.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(DEADLINE, async {
        while let Some(update) = updates.message().await.unwrap() {
            if update.status() == wanted {
                return;
            }
        }
        panic!("the health stream ended");
    })
    .await
    .unwrap_or_else(|_| panic!("issuer health {wanted:?} within the deadline"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_issuer_down_cached_svids_are_served_health_says_so_and_it_recovers() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let mut world = World::start(&entry("steady", 0, 3600)).await;
    let mut client = raw_client(&world).await;
    let fetch = |client: &mut SpiffeWorkloadApiClient<tonic::transport::Channel>| {
        let mut client = client.clone();
        async move {
            let mut stream = client
                .fetch_x509svid(with_header(attestd_proto::spiffe::X509svidRequest {}))
                .await?
                .into_inner();
            let first = stream.message().await?.expect("a first message");
            Ok::<_, tonic::Status>(first.svids[0].x509_svid.clone())
        }
    };
    let before = fetch(&mut client)
        .await
        .expect("an SVID while the issuer is up");
    issuer_health_becomes(&world, ServingStatus::Serving).await;

    let listen = world.issuer.addr;
    world.issuer.stop().await;
    issuer_health_becomes(&world, ServingStatus::NotServing).await;
    let cached = fetch(&mut client)
        .await
        .expect("the cached SVID while the issuer is down");
    assert_eq!(cached, before, "the same certificate, from the cache");

    let mut config = world.issuer.config.clone();
    config.listen = listen;
    world.issuer = TestIssuer::start(config, world.dir.path()).await;
    issuer_health_becomes(&world, ServingStatus::Serving).await;
    assert_eq!(issuer_health(&world).await, ServingStatus::Serving);
    // Minting works again: a JWT-SVID is minted fresh.
    let jwt = client
        .fetch_jwtsvid(with_header(attestd_proto::spiffe::JwtsvidRequest {
            audience: vec!["after-restart".into()],
            spiffe_id: String::new(),
        }))
        .await
        .expect("a fresh JWT-SVID after the issuer returns");
    assert_eq!(jwt.into_inner().svids.len(), 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_that_becomes_registered_gets_its_svid_on_its_next_request() {
    let mut world = World::start(&entry("someone-else", 4242, 3600)).await;
    let mut client = raw_client(&world).await;
    let request = || with_header(attestd_proto::spiffe::X509svidRequest {});
    let status = match client.fetch_x509svid(request()).await {
        Err(status) => status,
        Ok(response) => response
            .into_inner()
            .message()
            .await
            .expect_err("no SVID for an unregistered workload"),
    };
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    let uid = format!("unix:uid:{}", unsafe { libc::geteuid() });
    assert!(status.message().contains(&uid), "{status:?}");

    // The operator registers it and reloads the issuer; the very next request
    // gets an SVID: nothing negative was cached, nothing waits for a poll.
    let root = unsafe { libc::geteuid() };
    world.rewrite_entries(&format!(
        "{}{}",
        entry("someone-else", 4242, 3600),
        entry("late", root, 3600)
    ));
    let mut stream = client
        .fetch_x509svid(request())
        .await
        .expect("registered now")
        .into_inner();
    let first = stream.message().await.unwrap().expect("an SVID");
    assert_eq!(
        first.svids[0].spiffe_id,
        format!("spiffe://{TRUST_DOMAIN}/late")
    );
    world.stop().await;
}

/// The attestd binary next to this test's (cargo builds every workspace binary
/// into the same directory as the test executables' parent).
fn attestd_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let attestd = dir.join("attestd");
    assert!(
        attestd.exists(),
        "{} is missing: build the workspace",
        attestd.display()
    );
    attestd
}

/// `attestd token` is what a cron job or CI step runs instead of reading a
/// stored key: stdout must be exactly one JWT-SVID for the calling process,
/// which PyJWT accepts for the asked audience and refuses for another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestd_token_prints_only_the_callers_jwt_svid() {
    if !is_root() {
        eprintln!("skipped: running workloads as other uids needs root (CI runs as root)");
        return;
    }
    let mut world = World::start(&entry("nightly-export", 1003, 3600)).await;
    let jwks_path = world.dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks(&world).await).unwrap();
    let token_as = |uid: u32| {
        let uid_text = uid.to_string();
        Command::new("setpriv")
            .args(["--reuid", &uid_text, "--regid", &uid_text, "--clear-groups"])
            .arg(attestd_binary())
            .args(["token", "--audience", "sts.amazonaws.com", "--socket"])
            .arg(world.socket())
            .output()
            .expect("setpriv runs")
    };
    let output = token_as(1003);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the token on stdout: {stdout}"
    );
    assert!(
        text(&output.stderr).contains(&format!("spiffe://{TRUST_DOMAIN}/nightly-export")),
        "{}",
        text(&output.stderr)
    );
    let token = world.dir.path().join("token.jwt");
    std::fs::write(&token, stdout.trim()).unwrap();
    let checked = pyjwt_verify(&token, &jwks_path, "sts.amazonaws.com");
    assert!(checked.status.success(), "PyJWT: {}", text(&checked.stderr));
    assert!(
        text(&checked.stdout).contains(&format!(
            "\"sub\": \"spiffe://{TRUST_DOMAIN}/nightly-export\""
        )),
        "{}",
        text(&checked.stdout)
    );
    assert_eq!(
        pyjwt_verify(&token, &jwks_path, "spiffe://example.org/other")
            .status
            .code(),
        Some(1)
    );

    // An unregistered uid gets nothing on stdout and a non-zero exit.
    let denied = token_as(1004);
    assert_eq!(denied.status.code(), Some(69), "{}", text(&denied.stderr));
    assert!(denied.stdout.is_empty());
    assert!(
        text(&denied.stderr).contains("no registration entry"),
        "{}",
        text(&denied.stderr)
    );
    world.stop().await;
}
