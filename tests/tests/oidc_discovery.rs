//! OIDC discovery end to end, as a relying party sees it: a swtpm, the
//! daemon attesting its node, the issuer with `[oidc]`, and PyJWT's
//! PyJWKClient (tests/python/oidc_discovery.py) validating JWT-SVIDs given
//! only the issuer URL (and the CA it trusts for HTTPS). Then a key rotation:
//! `attestd_issuer::jwt::rotate` (what `attestd-issuer jwt rotate` runs) and
//! the issuer's own timer, no signal. Old and new tokens both validate until
//! the old key's retention ends; then it leaves the JWK Set. The windows are
//! seconds long by config; every wait is a bounded poll.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use attestd_proto::spiffe::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use attestd_proto::spiffe::{JwtsvidRequest, ValidateJwtsvidRequest};
use attestd_tests::swtpm::Swtpm;
use attestd_tests::{repo_root, venv_python};
use base64::Engine;

mod common;
use common::{
    daemon_config, issuer_config, serve_until_attested, TestIssuer, DEADLINE, TRUST_DOMAIN,
};

const AUDIENCE: &str = "sts.amazonaws.com";
/// JWT-SVIDs live this long here, whatever their entry says; a retired key
/// stays published as long after its successor starts signing.
const MAX_TTL_SECS: u64 = 30;
/// A rotated key is published this long before it signs.
const PREPUBLISH_SECS: u64 = 2;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn oidc_discovery(args: &[&str]) -> Output {
    std::process::Command::new(venv_python())
        .arg(repo_root().join("tests/python/oidc_discovery.py"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `validate` on the tokens; returns its exit code, one JSON result per
/// token, and the kids PyJWKClient saw.
fn validate(
    issuer: &str,
    ca: &Path,
    tokens: &[&Path],
) -> (i32, Vec<serde_json::Value>, Vec<String>) {
    let mut args = vec!["validate", issuer, ca.to_str().unwrap(), AUDIENCE];
    args.extend(tokens.iter().map(|path| path.to_str().unwrap()));
    let output = oidc_discovery(&args);
    let lines: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        tokens.len() + 1,
        "stdout: {} stderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let kids = lines[tokens.len()]["kids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kid| kid.as_str().unwrap().to_owned())
        .collect();
    (
        output.status.code().unwrap_or(-1),
        lines[..tokens.len()].to_vec(),
        kids,
    )
}

/// Waits (bounded, in Python) until `kid` is in, or out of, the JWK Set that
/// discovery points to.
fn wait_for_kid(issuer: &str, ca: &Path, presence: &str, kid: &str) {
    let timeout = DEADLINE.as_secs().to_string();
    let output = oidc_discovery(&[
        "wait",
        issuer,
        ca.to_str().unwrap(),
        presence,
        kid,
        "--timeout",
        &timeout,
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    println!("{presence} {kid}: {}", text(&output.stdout).trim());
}

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

struct Workload {
    client: SpiffeWorkloadApiClient<tonic::transport::Channel>,
    dir: PathBuf,
}

impl Workload {
    /// A JWT-SVID for `audience` from the daemon, saved to `name`.
    async fn token(&mut self, audience: &[&str], name: &str) -> (PathBuf, String) {
        let mut request = tonic::Request::new(JwtsvidRequest {
            audience: audience.iter().map(|a| a.to_string()).collect(),
            spiffe_id: String::new(),
        });
        request
            .metadata_mut()
            .insert("workload.spiffe.io", "true".parse().unwrap());
        let response = self
            .client
            .fetch_jwtsvid(request)
            .await
            .expect("a JWT-SVID")
            .into_inner();
        let token = response.svids[0].svid.clone();
        let path = self.dir.join(name);
        std::fs::write(&path, &token).unwrap();
        (path, token)
    }

    /// The daemon's own ValidateJWTSVID, which checks with the SPIFFE JWT
    /// bundle it got from the issuer's Bundles API.
    async fn daemon_accepts(&mut self, token: &str) -> bool {
        let mut request = tonic::Request::new(ValidateJwtsvidRequest {
            audience: AUDIENCE.into(),
            svid: token.into(),
        });
        request
            .metadata_mut()
            .insert("workload.spiffe.io", "true".parse().unwrap());
        self.client.validate_jwtsvid(request).await.is_ok()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_validates_jwt_svids_by_discovery_alone_across_a_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let swtpm = Swtpm::start().unwrap();
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let entries = dir.path().join("entries.toml");
    std::fs::write(
        &entries,
        format!(
            "[[entry]]\nspiffe_id = \"spiffe://{TRUST_DOMAIN}/payments\"\n\
             selectors = [\"unix:uid:{uid}\"]\njwt_ttl_secs = 300\n"
        ),
    )
    .unwrap();
    // Both sockets first, so the issuer URL can name the OIDC port.
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let oidc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer_url = format!("https://localhost:{}", oidc.local_addr().unwrap().port());
    let config = issuer_config(
        dir.path(),
        Some(swtpm.ca()),
        None,
        &format!(
            "entries = {entries:?}\n\
             [oidc]\nlisten = \"127.0.0.1:0\"\nissuer = \"{issuer_url}\"\n\
             [jwt]\nprepublish_secs = {PREPUBLISH_SECS}\nmax_ttl_secs = {MAX_TTL_SECS}\nclock_skew_secs = 0\n",
            entries = entries.display().to_string()
        ),
    );
    let issuer = attestd_issuer::Issuer::from_listeners(config.clone(), grpc, Some(oidc))
        .expect("the issuer loads");
    let mut issuer = TestIssuer::serve(issuer, config.clone(), dir.path());
    let ca = issuer.bundle.clone();
    let (stop, daemon) = serve_until_attested(daemon_config(dir.path(), &swtpm, &issuer)).await;
    let mut workload = Workload {
        client: SpiffeWorkloadApiClient::new(
            attestd::api::client::connect(&dir.path().join("api.sock"))
                .await
                .unwrap(),
        ),
        dir: dir.path().to_owned(),
    };

    // Discovery alone validates the token; a wrong audience does not pass.
    let (old_path, old_token) = workload.token(&[AUDIENCE], "old.jwt").await;
    let old_kid = kid_of(&old_token);
    let (code, results, kids) = validate(&issuer_url, &ca, &[&old_path]);
    assert_eq!(code, 0, "{results:?}");
    assert_eq!(
        results[0]["sub"],
        format!("spiffe://{TRUST_DOMAIN}/payments")
    );
    assert_eq!(results[0]["kid"], old_kid.as_str());
    assert_eq!(kids, std::slice::from_ref(&old_kid));
    let (other_path, _) = workload.token(&["someone-else"], "other.jwt").await;
    let (code, results, _) = validate(&issuer_url, &ca, &[&other_path]);
    assert_eq!(code, 1);
    assert!(
        results[0]["error"].as_str().unwrap().contains("Audience"),
        "{results:?}"
    );

    // Rotate. The issuer's timer publishes the new key within a second...
    let rotated_at = now();
    let rotated = attestd_issuer::jwt::rotate(&issuer.config, rotated_at).unwrap();
    assert_eq!(
        rotated.activation,
        rotated_at + PREPUBLISH_SECS as i64,
        "activates a window ahead"
    );
    wait_for_kid(&issuer_url, &ca, "--present", &rotated.kid);
    // ...and it signs from its activation time on.
    let mut probes = 0;
    let (new_path, new_token) = tokio::time::timeout(DEADLINE, async {
        loop {
            probes += 1;
            // A new audience each time, so the daemon mints rather than
            // serves its cache.
            let fresh = workload
                .token(&[AUDIENCE, &format!("probe-{probes}")], "new.jwt")
                .await;
            if kid_of(&fresh.1) == rotated.kid {
                return fresh;
            }
            assert_eq!(kid_of(&fresh.1), old_kid, "only the old key signs before");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the new key signs within the deadline");
    assert!(now() >= rotated.activation, "signed before its activation");

    // Both tokens validate through discovery; the JWK Set holds both keys.
    let (code, results, kids) = validate(&issuer_url, &ca, &[&old_path, &new_path]);
    assert_eq!(code, 0, "{results:?}");
    assert_eq!(results[0]["kid"], old_kid.as_str());
    assert_eq!(results[1]["kid"], rotated.kid.as_str());
    assert_eq!(kids, [old_kid.clone(), rotated.kid.clone()]);
    // The daemon, validating with the Bundles JWK Set, accepts both too.
    tokio::time::timeout(DEADLINE, async {
        while !(workload.daemon_accepts(&old_token).await
            && workload.daemon_accepts(&new_token).await)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the daemon's JWT bundle holds both keys");

    // Once every token of the old key has expired, the key leaves the set.
    wait_for_kid(&issuer_url, &ca, "--absent", &old_kid);
    let (code, results, kids) = validate(&issuer_url, &ca, &[&old_path]);
    assert_eq!(code, 1, "{results:?}");
    assert_eq!(results[0]["valid"], false);
    assert_eq!(kids, std::slice::from_ref(&rotated.kid));
    let (latest_path, latest) = workload.token(&[AUDIENCE, "latest"], "latest.jwt").await;
    assert_eq!(kid_of(&latest), rotated.kid);
    let (code, results, _) = validate(&issuer_url, &ca, &[&latest_path]);
    assert_eq!(code, 0, "{results:?}");

    let _ = stop.send(());
    daemon.await.unwrap().unwrap();
    issuer.stop().await;
}
