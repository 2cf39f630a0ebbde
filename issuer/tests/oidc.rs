//! OIDC discovery on the wire: the real `Issuer` with `[oidc]`, reached over
//! TLS (rustls, trusting only the issuer's CA) with hand-written requests, so
//! odd and hostile ones can be sent: odd paths, wrong methods, huge headers,
//! a slowloris, handshakes never finished, more connections than allowed.
//! Every wait is bounded by DEADLINE; the measured times are printed.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use attestd_issuer::identity::mint_jwt_nonce;
use attestd_proto::v1::{BundlesRequest, MintJwtRequest};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use support::{Node, Site, DEADLINE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

const ISSUER: &str = "https://localhost:8444";
/// Short, so the tests that wait for it finish soon.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// A close later than the timeout plus this was not the timeout's doing.
const TIMER_SLACK: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: usize = 4;

const ENTRIES: &str = r#"
[[entry]]
spiffe_id = "spiffe://example.org/payments"
selectors = ["unix:uid:1000"]
jwt_ttl_secs = 120
"#;

async fn site(extra_oidc: &str) -> Site {
    Site::start(
        ENTRIES,
        &format!(
            "[oidc]\n\
             listen = \"127.0.0.1:0\"\n\
             issuer = \"{ISSUER}\"\n\
             header_timeout_secs = {}\n\
             max_connections = {MAX_CONNECTIONS}\n\
             {extra_oidc}\n\
             [jwt]\n\
             max_ttl_secs = 60\n",
            HEADER_TIMEOUT.as_secs()
        ),
    )
    .await
}

/// A TLS client for the discovery listener that trusts `ca_pem` only.
#[derive(Clone)]
struct Client {
    addr: SocketAddr,
    connector: TlsConnector,
}

impl Client {
    fn new(addr: SocketAddr, ca_pem: &str) -> Client {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let mut config = ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Client {
            addr,
            connector: TlsConnector::from(Arc::new(config)),
        }
    }

    fn of(site: &Site) -> Client {
        Client::new(site.oidc_addr.expect("an OIDC listener"), &site.bundle_pem)
    }

    async fn connect(&self) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        let name = ServerName::try_from("localhost").unwrap();
        tokio::time::timeout(DEADLINE, self.connector.connect(name, tcp))
            .await
            .expect("the handshake ends within the deadline")
    }

    /// Sends `request` on a new connection and reads until the server
    /// closes it.
    async fn exchange(&self, request: &[u8]) -> Reply {
        let mut tls = self.connect().await.expect("a TLS connection");
        // The server may close before reading everything: that is fine.
        let _ = tls.write_all(request).await;
        let _ = tls.flush().await;
        Reply::parse(read_until_closed(&mut tls).await)
    }

    async fn get(&self, path: &str, headers: &str) -> Reply {
        self.exchange(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\r\n")
                .as_bytes(),
        )
        .await
    }
}

/// Everything the server sends until it closes (EOF, or an error such as a
/// reset), within the deadline.
async fn read_until_closed(tls: &mut TlsStream<TcpStream>) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(DEADLINE, async {
        loop {
            match tls.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection within the deadline");
    received
}

/// An HTTP/1.1 response, parsed just enough.
#[derive(Debug)]
struct Reply {
    /// 0: no response at all.
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    raw: Vec<u8>,
}

impl Reply {
    fn parse(raw: Vec<u8>) -> Reply {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n");
        let (head, body) = match split {
            Some(at) => (&raw[..at], raw[at + 4..].to_vec()),
            None => (&raw[..], Vec::new()),
        };
        let head = String::from_utf8_lossy(head).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.strip_prefix("HTTP/1.1 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body,
            raw,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The client still gets the JWK Set: whatever came before did no harm.
async fn still_serves(client: &Client) {
    let reply = client.get("/keys", "").await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.raw));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_names_the_iss_of_minted_tokens_and_its_jwks_verifies_them() {
    let mut site = site("").await;
    let client = Client::of(&site);

    let discovery = client.get("/.well-known/openid-configuration", "").await;
    assert_eq!(discovery.status, 200);
    assert_eq!(discovery.header("content-type"), Some("application/json"));
    // A quarter of the default day of pre-publication, capped at an hour.
    assert_eq!(
        discovery.header("cache-control"),
        Some("public, max-age=3600")
    );
    let document: serde_json::Value = serde_json::from_slice(&discovery.body).unwrap();
    assert_eq!(document["issuer"], ISSUER);
    let jwks_uri = document["jwks_uri"].as_str().unwrap();
    assert_eq!(jwks_uri, format!("{ISSUER}/keys"));

    let jwks_reply = client.get(jwks_uri.strip_prefix(ISSUER).unwrap(), "").await;
    assert_eq!(jwks_reply.status, 200);
    assert_eq!(jwks_reply.header("content-type"), Some("application/json"));
    let etag = jwks_reply.header("etag").expect("an ETag").to_owned();
    let oidc_jwks: JwkSet = serde_json::from_slice(&jwks_reply.body).unwrap();
    let raw: serde_json::Value = serde_json::from_slice(&jwks_reply.body).unwrap();
    assert_eq!(raw["keys"][0]["use"], "sig");
    assert_eq!(raw["keys"][0]["alg"], "ES256");

    // The same keys as the Bundles API, which keeps SPIFFE's "jwt-svid".
    let mut grpc = site.client().await;
    let bundles = grpc.bundles(BundlesRequest {}).await.unwrap().into_inner();
    let spiffe: serde_json::Value = serde_json::from_slice(&bundles.jwks).unwrap();
    assert_eq!(spiffe["keys"][0]["use"], "jwt-svid");
    assert_eq!(spiffe["keys"][0]["kid"], raw["keys"][0]["kid"]);
    assert_eq!(spiffe["keys"][0]["x"], raw["keys"][0]["x"]);

    // A minted JWT-SVID carries iss = the issuer URL, lives at most
    // max_ttl_secs, and verifies with the OIDC JWKS.
    let node = Node::attested(&site.ca, 0x11, None);
    let audience = vec!["sts.amazonaws.com".to_owned()];
    let minted = grpc
        .mint_jwtsvi_ds(MintJwtRequest {
            evidence: node
                .evidence(&node.claims(mint_jwt_nonce(&audience, ""), &["unix:uid:1000"])),
            audience: audience.clone(),
            spiffe_id: String::new(),
        })
        .await
        .expect("a JWT-SVID")
        .into_inner();
    let token = &minted.svids[0].token;
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let key = DecodingKey::from_jwk(oidc_jwks.find(&kid).expect("the kid is published")).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["sts.amazonaws.com"]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .expect("the OIDC JWKS verifies the token")
        .claims;
    assert_eq!(claims["sub"], "spiffe://example.org/payments");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60,
        "the entry says 120 s; [jwt] max_ttl_secs caps it"
    );

    // HEAD: the headers alone; a matching If-None-Match: 304, no body.
    let head = client
        .exchange(b"HEAD /keys HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(jwks_reply.body.len().to_string().as_str())
    );
    let cached = client
        .get("/keys", &format!("If-None-Match: {etag}\r\n"))
        .await;
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    // A query string changes nothing.
    let with_query = client.get("/keys?cache-buster=1", "").await;
    assert_eq!(with_query.body, jwks_reply.body);
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_shows_in_the_oidc_jwks_and_in_bundles_with_a_new_revision() {
    let mut site = site("").await;
    let client = Client::of(&site);
    let mut grpc = site.client().await;
    let before = grpc.bundles(BundlesRequest {}).await.unwrap().into_inner();
    let old_etag = client
        .get("/keys", "")
        .await
        .header("etag")
        .unwrap()
        .to_owned();

    let rotated = attestd_issuer::jwt::rotate(&site.config, support::now()).unwrap();
    // What SIGHUP does.
    let refreshed = site.reload.refresh_keys().unwrap();
    assert!(refreshed.changed);
    assert_ne!(
        refreshed.signing, rotated.kid,
        "published first, signing later"
    );

    let reply = client
        .get("/keys", &format!("If-None-Match: {old_etag}\r\n"))
        .await;
    assert_eq!(reply.status, 200, "a new set, a new ETag");
    let oidc: JwkSet = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(oidc.keys.len(), 2);
    assert!(oidc.find(&rotated.kid).is_some());
    let after = grpc.bundles(BundlesRequest {}).await.unwrap().into_inner();
    let spiffe: JwkSet = serde_json::from_slice(&after.jwks).unwrap();
    assert_eq!(spiffe.keys.len(), 2);
    assert!(spiffe.find(&rotated.kid).is_some());
    assert_ne!(after.revision, before.revision);
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_paths_and_methods_get_short_fixed_answers_that_repeat_nothing() {
    let mut site = site("").await;
    let client = Client::of(&site);
    let long = format!("/{}", "x".repeat(7 << 10));
    for path in [
        "/..%2f",
        "/..%2f.well-known/openid-configuration",
        "//.well-known/openid-configuration",
        "/.well-known/openid-configuration/",
        "/.well-known/../keys",
        "/keys%00",
        "/%ff%fe",
        long.as_str(),
    ] {
        let reply = client.get(path, "").await;
        assert_eq!(reply.status, 404, "{path:.40}");
        assert_eq!(reply.body, b"not found\n", "{path:.40}");
    }
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"] {
        let reply = client
            .exchange(
                format!("{method} /keys HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await;
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
        assert_eq!(reply.body, b"method not allowed\n");
    }
    // Not HTTP, or not ASCII: hyper's parser refuses it with a bare 400.
    for garbage in [
        &b"GET /\xff\xfe HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
        b"GET /keys HTTP/1.1\r\nHost: local\xffhost\x01\r\n\r\n",
        b"HELLO\r\n\r\n",
        b"GET /keys HTTP/9.9\r\n\r\n",
    ] {
        let reply = client.exchange(garbage).await;
        assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(garbage));
        assert!(
            reply.body.is_empty(),
            "{}",
            String::from_utf8_lossy(&reply.raw)
        );
    }
    still_serves(&client).await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_past_8_kib_gets_431_and_the_rest_is_not_read() {
    let mut site = site("").await;
    let client = Client::of(&site);
    for (what, request) in [
        (
            "a long header",
            format!(
                "GET /keys HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
                "a".repeat(9 << 10)
            ),
        ),
        (
            "many headers",
            format!(
                "GET /keys HTTP/1.1\r\nHost: localhost\r\n{}\r\n",
                "X-A: b\r\n".repeat(40)
            ),
        ),
        (
            "a long path",
            format!("GET /{} HTTP/1.1\r\n\r\n", "p".repeat(9 << 10)),
        ),
    ] {
        let reply = client.exchange(request.as_bytes()).await;
        assert_eq!(
            reply.status,
            431,
            "{what}: {:.80}",
            String::from_utf8_lossy(&reply.raw)
        );
    }

    // A client that keeps sending header bytes is cut off: it cannot push
    // 16 MiB, the server closed after its 8 KiB.
    let mut tls = client.connect().await.unwrap();
    tls.write_all(b"GET /keys HTTP/1.1\r\nHost: localhost\r\nX-Endless: ")
        .await
        .unwrap();
    let chunk = vec![b'a'; 64 << 10];
    let mut sent = 0usize;
    let cut_off = tokio::time::timeout(DEADLINE, async {
        while sent < 16 << 20 {
            if tls.write_all(&chunk).await.is_err() || tls.flush().await.is_err() {
                return true;
            }
            sent += chunk.len();
        }
        false
    })
    .await
    .expect("writes end within the deadline");
    println!("endless header: cut off after {} KiB sent", sent >> 10);
    assert!(cut_off, "the server read {sent} bytes of headers");
    still_serves(&client).await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_is_closed_at_the_header_timeout() {
    let mut site = site("").await;
    let client = Client::of(&site);
    let mut tls = client.connect().await.unwrap();
    let started = Instant::now();
    tls.write_all(b"GET /keys HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    // One byte every 100 ms, until the server closes the connection.
    let (received, elapsed) = tokio::time::timeout(DEADLINE, async {
        let mut buffer = [0u8; 1024];
        let mut received = Vec::new();
        loop {
            tokio::select! {
                read = tls.read(&mut buffer) => match read {
                    Ok(n) if n > 0 => received.extend_from_slice(&buffer[..n]),
                    _ => return (received, started.elapsed()),
                },
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    if tls.write_all(b"a").await.is_err() {
                        return (received, started.elapsed());
                    }
                }
            }
        }
    })
    .await
    .expect("the slowloris is closed within the deadline");
    println!("slowloris: closed after {elapsed:?}");
    assert!(elapsed >= HEADER_TIMEOUT, "closed after {elapsed:?}");
    assert!(
        elapsed < HEADER_TIMEOUT + TIMER_SLACK,
        "closed after {elapsed:?}"
    );
    assert!(
        !received.starts_with(b"HTTP/1.1 2"),
        "{}",
        String::from_utf8_lossy(&received)
    );
    still_serves(&client).await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_at_the_header_timeout() {
    let mut site = site("").await;
    let client = Client::of(&site);
    let mut tls = client.connect().await.unwrap();
    tls.write_all(b"GET /keys HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let idle_from = Instant::now();
    let received = read_until_closed(&mut tls).await;
    let elapsed = idle_from.elapsed();
    println!("idle keep-alive: closed after {elapsed:?}");
    assert!(received.starts_with(b"HTTP/1.1 200"));
    assert!(elapsed >= HEADER_TIMEOUT, "closed after {elapsed:?}");
    assert!(
        elapsed < HEADER_TIMEOUT + TIMER_SLACK,
        "closed after {elapsed:?}"
    );
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_handshake_never_finished_is_closed_at_the_header_timeout() {
    let mut site = site("").await;
    let client = Client::of(&site);
    for (what, sent) in [
        ("nothing", &b""[..]),
        // A TLS record header announcing a 512-byte handshake that never comes.
        (
            "half a ClientHello",
            &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01][..],
        ),
    ] {
        let mut tcp = TcpStream::connect(client.addr).await.unwrap();
        let started = Instant::now();
        tcp.write_all(sent).await.unwrap();
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(DEADLINE, tcp.read(&mut buffer))
            .await
            .expect("closed within the deadline");
        let elapsed = started.elapsed();
        println!("handshake with {what}: closed after {elapsed:?}");
        assert!(matches!(read, Ok(0) | Err(_)), "{what}: {read:?}");
        assert!(
            elapsed >= HEADER_TIMEOUT,
            "{what}: closed after {elapsed:?}"
        );
        assert!(
            elapsed < HEADER_TIMEOUT + TIMER_SLACK,
            "{what}: closed after {elapsed:?}"
        );
    }
    still_serves(&client).await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_are_closed_on_arrival_and_a_freed_slot_is_reused() {
    // Long enough that the held connections outlive the test.
    let mut site = Site::start(
        ENTRIES,
        &format!(
            "[oidc]\nlisten = \"127.0.0.1:0\"\nissuer = \"{ISSUER}\"\n\
             header_timeout_secs = 300\nmax_connections = {MAX_CONNECTIONS}\n"
        ),
    )
    .await;
    let client = Client::of(&site);
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        held.push(client.connect().await.expect("within the limit"));
    }
    // The next is accepted by the kernel and closed by the server at once:
    // its handshake fails rather than waits.
    for _ in 0..3 {
        let refused = client.connect().await;
        assert!(refused.is_err(), "a connection past the limit was served");
    }
    // The held ones still work.
    let first = held.first_mut().unwrap();
    first
        .write_all(b"GET /keys HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let reply = Reply::parse(read_until_closed(first).await);
    assert_eq!(reply.status, 200);
    held.remove(0);
    // Its slot comes back once the server has seen it close.
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(mut tls) = client.connect().await {
                tls.write_all(
                    b"GET /keys HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                )
                .await
                .unwrap();
                if Reply::parse(read_until_closed(&mut tls).await).status == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a freed slot is served again within the deadline");
    drop(held);
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_is_not_read_and_the_connection_closes() {
    let mut site = site("").await;
    let client = Client::of(&site);
    // A body announced and never sent: the answer comes anyway, and the
    // connection is closed rather than left waiting for it.
    for request in [
        &b"GET /keys HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n{"[..],
        b"POST /keys HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    ] {
        let started = Instant::now();
        let reply = client.exchange(request).await;
        assert!(
            matches!(reply.status, 200 | 405),
            "{}",
            String::from_utf8_lossy(&reply.raw)
        );
        assert_eq!(reply.header("connection"), Some("close"));
        println!("unread body: closed after {:?}", started.elapsed());
    }
    still_serves(&client).await;
    site.stop().await;
}

/// A "public" CA of our own and a certificate for localhost from it, written
/// as an ACME client would: the chain, and the key with mode 0600.
fn public_certificate(dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    std::fs::write(
        dir.join("fullchain.pem"),
        format!("{}{}", leaf.pem(), ca.pem()),
    )
    .unwrap();
    let key = dir.join("privkey.pem");
    let _ = std::fs::remove_file(&key);
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    ca.pem()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_files_is_served_and_a_renewal_is_taken_up_on_sighup() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let public_ca = public_certificate(dir.path());
    let files = format!(
        "cert = {:?}\nkey = {:?}\n",
        dir.path().join("fullchain.pem").display().to_string(),
        dir.path().join("privkey.pem").display().to_string()
    );
    let mut site = site(&files).await;
    let addr = site.oidc_addr.unwrap();
    still_serves(&Client::new(addr, &public_ca)).await;
    assert!(
        Client::new(addr, &site.bundle_pem).connect().await.is_err(),
        "the issuer's own CA did not issue this certificate"
    );

    // A renewal: new files, then SIGHUP.
    let renewed_ca = public_certificate(dir.path());
    assert!(site.reload.reload_oidc_certificate().unwrap());
    still_serves(&Client::new(addr, &renewed_ca)).await;
    assert!(Client::new(addr, &public_ca).connect().await.is_err());

    // A key others can read is refused, and the certificate in force stays.
    let key = dir.path().join("privkey.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = site
        .reload
        .reload_oidc_certificate()
        .unwrap_err()
        .to_string();
    assert!(error.contains("readable by others"), "{error}");
    still_serves(&Client::new(addr, &renewed_ca)).await;
    site.stop().await;

    // ...and at start-up, too.
    let mut config = site.config.clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let refused = attestd_issuer::Issuer::bind(config)
        .await
        .err()
        .expect("refused");
    assert!(
        refused.to_string().contains("readable by others"),
        "{refused}"
    );
}
