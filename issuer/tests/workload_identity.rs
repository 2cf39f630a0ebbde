//! `attestd.v1.WorkloadIdentity` end to end: the real `Issuer` on loopback
//! TLS, a tonic client, and evidence signed as an attested daemon signs it
//! (tests/support). SVIDs are checked with webpki against the bundle the
//! issuer serves, JWT-SVIDs with jsonwebtoken against its JWK Set.

mod support;

use std::time::Duration;

use attestd_issuer::identity::{mint_jwt_nonce, mint_x509_nonce};
use attestd_issuer::node_selectors;
use attestd_issuer::policy::BootFacts;
use attestd_proto::v1::{
    BundlesRequest, BundlesResponse, MintJwtRequest, MintX509Request, MintX509Response,
    WatchRevisionRequest, X509Svid,
};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use support::{now, workload_key, Node, Site, AUDIENCE, DEADLINE, HOSTNAME};
use tonic::Code;
use x509_parser::extensions::{GeneralName, ParsedExtension};

fn entries(node1_ek: &str) -> String {
    format!(
        r#"
[[entry]]
spiffe_id = "spiffe://example.org/payments"
selectors = ["unix:uid:1000"]
dns_names = ["payments.internal"]
hint = "internal"
x509_ttl_secs = 600
jwt_ttl_secs = 120

[[entry]]
spiffe_id = "spiffe://example.org/batch"
selectors = ["unix:uid:2000"]

[[entry]]
spiffe_id = "spiffe://example.org/payments-admin"
selectors = ["unix:uid:1000", "unix:gid:10"]
node_selectors = ["tpm:ek:{node1_ek}"]

[[entry]]
spiffe_id = "spiffe://example.org/on-a-secure-boot-node-1"
selectors = ["host:hostname:{HOSTNAME}"]
node_selectors = ["tpm:secure_boot:true"]
"#
    )
}

const NODE1: u8 = 0x11;
const NODE2: u8 = 0x22;

async fn site() -> Site {
    Site::start(&entries(&hex::encode([NODE1; 32])), "").await
}

fn secure_boot() -> Option<BootFacts> {
    Some(BootFacts {
        secure_boot: Some(true),
        ..BootFacts::default()
    })
}

/// A MintX509SVIDs request from `node` for `key`, as a workload with `selectors`.
fn x509_request(node: &Node, key: &[u8], selectors: &[&str]) -> MintX509Request {
    MintX509Request {
        evidence: node.evidence(&node.claims(mint_x509_nonce(key), selectors)),
        public_key: key.to_vec(),
    }
}

fn ids(svids: &[X509Svid]) -> Vec<&str> {
    svids.iter().map(|svid| svid.spiffe_id.as_str()).collect()
}

/// Checks an X.509-SVID the way a SPIFFE relying party would: a path to the
/// bundle for client and server auth, one URI SAN naming it, the requested
/// key, a leaf that is no CA, and no node selectors.
fn check_x509_svid(svid: &X509Svid, bundle: &BundlesResponse, key: &[u8]) {
    assert_eq!(svid.chain.len(), 1, "{}: leaf only", svid.spiffe_id);
    let anchors: Vec<_> = bundle
        .x509_authorities
        .iter()
        .map(|der| {
            webpki::anchor_from_trusted_cert(&CertificateDer::from(der.as_slice()))
                .unwrap()
                .to_owned()
        })
        .collect();
    let leaf_der = CertificateDer::from(svid.chain[0].as_slice());
    let leaf = webpki::EndEntityCert::try_from(&leaf_der).unwrap();
    let at = UnixTime::since_unix_epoch(Duration::from_secs(now() as u64));
    for usage in [
        webpki::KeyUsage::client_auth(),
        webpki::KeyUsage::server_auth(),
    ] {
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &[],
            at,
            usage,
            None,
            None,
        )
        .unwrap_or_else(|e| panic!("{} does not chain to the bundle: {e:?}", svid.spiffe_id));
    }

    let (_, cert) = x509_parser::parse_x509_certificate(&svid.chain[0]).unwrap();
    assert_eq!(
        cert.public_key().raw,
        key,
        "the SVID certifies the requested key"
    );
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let uris: Vec<&str> = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
        .collect();
    assert_eq!(uris, vec![svid.spiffe_id.as_str()]);
    let constraints = cert.basic_constraints().unwrap().unwrap();
    assert!(constraints.critical && !constraints.value.ca);
    assert!(cert.key_usage().unwrap().unwrap().value.digital_signature());
    assert!(!cert.key_usage().unwrap().unwrap().value.key_cert_sign());
    assert!(!cert.subject().to_string().is_empty());
    assert_eq!(cert.validity().not_after.timestamp(), svid.expires_at);
    assert!(
        node_selectors::read(&cert).unwrap().is_empty(),
        "a workload SVID carries no node selectors"
    );
    assert!(cert.extensions().iter().all(|e| !matches!(
        e.parsed_extension(),
        ParsedExtension::UnsupportedExtension { .. }
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matched_workloads_get_x509_svids_for_their_key_that_chain_to_the_bundle() {
    let mut site = site().await;
    let mut client = site.client().await;
    let bundle = client
        .bundles(BundlesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bundle.trust_domain, "example.org");
    assert_eq!(bundle.x509_authorities, vec![site.ca.cert_der().to_vec()]);

    let node1 = Node::attested(&site.ca, NODE1, secure_boot());
    let node2 = Node::attested(&site.ca, NODE2, None);

    // uid 1000 and gid 10 on node 1 (Secure Boot on, its EK named by an entry).
    let key = workload_key();
    let before = now();
    let minted: MintX509Response = client
        .mint_x509svi_ds(x509_request(
            &node1,
            &key,
            &["unix:gid:10", "unix:uid:1000"],
        ))
        .await
        .expect("a matching workload gets SVIDs")
        .into_inner();
    assert_eq!(
        ids(&minted.svids),
        vec![
            "spiffe://example.org/payments",
            "spiffe://example.org/payments-admin",
            "spiffe://example.org/on-a-secure-boot-node-1",
        ]
    );
    assert_eq!(minted.bundle, bundle.x509_authorities);
    assert_eq!(minted.revision, bundle.revision);
    for svid in &minted.svids {
        check_x509_svid(svid, &bundle, &key);
    }
    let payments = &minted.svids[0];
    assert_eq!(payments.hint, "internal");
    assert!((before + 600..=now() + 600).contains(&payments.expires_at));
    assert!((before + 3600..=now() + 3600).contains(&minted.svids[1].expires_at));
    // The DNS SAN is usable for TLS.
    let leaf_der = CertificateDer::from(payments.chain[0].as_slice());
    webpki::EndEntityCert::try_from(&leaf_der)
        .unwrap()
        .verify_is_valid_for_subject_name(&ServerName::try_from("payments.internal").unwrap())
        .expect("payments.internal is a DNS SAN");
    // Three certificates for one key, three serial numbers (RFC 5280 §4.1.2.2).
    let mut serials: Vec<Vec<u8>> = minted
        .svids
        .iter()
        .map(|svid| {
            x509_parser::parse_x509_certificate(&svid.chain[0])
                .unwrap()
                .1
                .raw_serial()
                .to_vec()
        })
        .collect();
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 3);

    // The same workload on node 2: the node-bound entries do not apply.
    let key2 = workload_key();
    let on_node2 = client
        .mint_x509svi_ds(x509_request(
            &node2,
            &key2,
            &["unix:gid:10", "unix:uid:1000"],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&on_node2.svids), vec!["spiffe://example.org/payments"]);
    check_x509_svid(&on_node2.svids[0], &bundle, &key2);

    // Another uid gets another identity.
    let key3 = workload_key();
    let batch = client
        .mint_x509svi_ds(x509_request(&node2, &key3, &["unix:uid:2000"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&batch.svids), vec!["spiffe://example.org/batch"]);
    assert_eq!(batch.svids[0].hint, "");
    check_x509_svid(&batch.svids[0], &bundle, &key3);
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmatched_workload_is_refused_with_the_selectors_seen() {
    let mut site = site().await;
    let mut client = site.client().await;
    let node = Node::attested(&site.ca, NODE2, None);
    let key = workload_key();
    let status = client
        .mint_x509svi_ds(x509_request(
            &node,
            &key,
            &["unix:uid:4242", "unix:gid:4242"],
        ))
        .await
        .expect_err("no entry names uid 4242");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let message = status.message();
    assert!(
        message.contains("no registration entry matches"),
        "{message}"
    );
    for seen in node.selectors.iter().map(String::as_str).chain([
        "unix:uid:4242",
        "unix:gid:4242",
        "host:hostname:node-1",
    ]) {
        assert!(message.contains(seen), "{message} lacks {seen}");
    }
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_matching_more_entries_than_one_mint_may_hold_is_refused() {
    let many: String = (0..=64)
        .map(|i| {
            format!("[[entry]]\nspiffe_id = \"spiffe://example.org/id-{i}\"\nselectors = [\"unix:uid:7\"]\n")
        })
        .collect();
    let mut site = Site::start(&many, "").await;
    let mut client = site.client().await;
    let node = Node::attested(&site.ca, NODE2, None);
    let key = workload_key();
    let status = client
        .mint_x509svi_ds(x509_request(&node, &key, &["unix:uid:7"]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("matches 65 registration entries"),
        "{status:?}"
    );
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_that_does_not_prove_this_request_is_refused() {
    let mut site = site().await;
    let mut client = site.client().await;
    let node = Node::attested(&site.ca, NODE1, secure_boot());
    let key = workload_key();
    let other_key = workload_key();
    let uid = ["unix:uid:1000"];
    let good = node.claims(mint_x509_nonce(&key), &uid);

    let stale = {
        let mut claims = good.clone();
        claims.issued_at = now() - 61;
        claims
    };
    let no_audience = {
        let mut claims = good.clone();
        claims.audience = None;
        claims
    };
    let other_audience = {
        let mut claims = good.clone();
        claims.audience = Some("spiffe://example.org/db".into());
        claims
    };
    let jwt_nonce = node.claims(mint_jwt_nonce(&[AUDIENCE.into()], ""), &uid);
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign = Node::attested(&support::other_ca(foreign_dir.path()), NODE1, None);
    let another_node = Node::attested(&site.ca, NODE2, None);
    // A workload SVID whose key signs evidence, passed off as a node SVID.
    let workload_svid_as_node = {
        let pretender = Node::attested(&site.ca, NODE1, None);
        let spki = p256_spki(pretender.session_public_key());
        let minted = client
            .mint_x509svi_ds(x509_request(&node, &spki, &uid))
            .await
            .unwrap()
            .into_inner();
        pretender.evidence_with_chain(&good_for(&pretender, &key), &minted.svids[0].chain)
    };

    let cases: Vec<(&str, MintX509Request, Code, &str)> = vec![
        (
            "evidence for another key, replayed",
            MintX509Request {
                evidence: node.evidence(&good),
                public_key: other_key.clone(),
            },
            Code::PermissionDenied,
            "nonce does not match",
        ),
        (
            "evidence made for JWT-SVIDs",
            MintX509Request {
                evidence: node.evidence(&jwt_nonce),
                public_key: key.clone(),
            },
            Code::PermissionDenied,
            "nonce does not match",
        ),
        (
            "evidence more than 60 s old",
            MintX509Request {
                evidence: node.evidence(&stale),
                public_key: key.clone(),
            },
            Code::PermissionDenied,
            "s old",
        ),
        (
            "evidence for no audience",
            MintX509Request {
                evidence: node.evidence(&no_audience),
                public_key: key.clone(),
            },
            Code::PermissionDenied,
            "audience",
        ),
        (
            "evidence for another audience",
            MintX509Request {
                evidence: node.evidence(&other_audience),
                public_key: key.clone(),
            },
            Code::PermissionDenied,
            "audience",
        ),
        (
            "evidence without x5chain",
            MintX509Request {
                evidence: node.evidence_with_chain(&good, &[]),
                public_key: key.clone(),
            },
            Code::PermissionDenied,
            "no node SVID chain",
        ),
        (
            "a node SVID from another CA",
            MintX509Request {
                evidence: foreign.evidence(&foreign.claims(mint_x509_nonce(&key), &uid)),
                public_key: key.clone(),
            },
            Code::PermissionDenied,
            "does not verify against the trust bundle",
        ),
        (
            "another node's SVID",
            MintX509Request {
                evidence: node.evidence_with_chain(&good, &another_node.chain),
                public_key: key.clone(),
            },
            Code::PermissionDenied,
            "certifies another key",
        ),
        (
            "a workload SVID as a node SVID",
            MintX509Request {
                evidence: workload_svid_as_node,
                public_key: key.clone(),
            },
            Code::PermissionDenied,
            "attestd/node",
        ),
        (
            "garbage evidence",
            MintX509Request {
                evidence: b"not evidence".to_vec(),
                public_key: key.clone(),
            },
            Code::InvalidArgument,
            "malformed",
        ),
        (
            "a public key that is no P-256 SPKI",
            MintX509Request {
                evidence: node.evidence(&node.claims(mint_x509_nonce(b"junk"), &uid)),
                public_key: b"junk".to_vec(),
            },
            Code::InvalidArgument,
            "public_key",
        ),
        (
            "a P-256 SPKI whose point is off the curve",
            {
                let mut spki = key.clone();
                let last = spki.len() - 1;
                spki[last] ^= 0x01;
                MintX509Request {
                    evidence: node.evidence(&node.claims(mint_x509_nonce(&spki), &uid)),
                    public_key: spki,
                }
            },
            Code::InvalidArgument,
            "not on the curve",
        ),
    ];
    for (what, request, code, reason) in cases {
        let status = client.mint_x509svi_ds(request).await.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status:?}");
        assert!(
            status.message().contains(reason),
            "{what}: {:?} lacks {reason:?}",
            status.message()
        );
    }
    // The good one, for contrast: the refusals are about what was changed.
    client
        .mint_x509svi_ds(MintX509Request {
            evidence: node.evidence(&good),
            public_key: key,
        })
        .await
        .expect("the unchanged request is granted");
    site.stop().await;
}

/// Claims that `pretender` could make for `key`.
fn good_for(pretender: &Node, key: &[u8]) -> attestd_proto::evidence::EvidenceClaims {
    pretender.claims(mint_x509_nonce(key), &["unix:uid:1000"])
}

fn p256_spki(point: &[u8]) -> Vec<u8> {
    // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING }.
    let prefix = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
    [prefix.as_slice(), point].concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_svids_verify_with_the_jwks_from_bundles() {
    let mut site = site().await;
    let mut client = site.client().await;
    let bundle = client
        .bundles(BundlesRequest {})
        .await
        .unwrap()
        .into_inner();
    let jwks: JwkSet = serde_json::from_slice(&bundle.jwks).expect("the JWKS is JSON");
    assert_eq!(jwks.keys.len(), 1);
    let raw: serde_json::Value = serde_json::from_slice(&bundle.jwks).unwrap();
    assert_eq!(raw["keys"][0]["use"], "jwt-svid");
    assert_eq!(raw["keys"][0]["kty"], "EC");
    assert_eq!(raw["keys"][0]["crv"], "P-256");

    let node = Node::attested(&site.ca, NODE1, secure_boot());
    let selectors = ["unix:uid:1000", "unix:gid:10"];
    let audience = vec![
        "spiffe://example.org/db".to_owned(),
        "https://ledger.example".to_owned(),
    ];
    let request = |audience: &[String], spiffe_id: &str| MintJwtRequest {
        evidence: node.evidence(&node.claims(mint_jwt_nonce(audience, spiffe_id), &selectors)),
        audience: audience.to_vec(),
        spiffe_id: spiffe_id.to_owned(),
    };
    let before = now();
    let minted = client
        .mint_jwtsvi_ds(request(&audience, ""))
        .await
        .expect("JWT-SVIDs for every matching entry")
        .into_inner();
    assert_eq!(minted.revision, bundle.revision);
    let minted_ids: Vec<&str> = minted.svids.iter().map(|s| s.spiffe_id.as_str()).collect();
    assert_eq!(
        minted_ids,
        vec![
            "spiffe://example.org/payments",
            "spiffe://example.org/payments-admin",
            "spiffe://example.org/on-a-secure-boot-node-1",
        ]
    );
    for (svid, ttl) in minted.svids.iter().zip([120, 300, 300]) {
        let header = jsonwebtoken::decode_header(&svid.token).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let kid = header.kid.expect("a kid");
        assert_eq!(kid.len(), 43, "base64url of a SHA-256, unpadded");
        let jwk = jwks.find(&kid).expect("the kid is in the JWKS");
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["https://ledger.example"]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(&svid.token, &key, &validation)
            .unwrap_or_else(|e| panic!("{}: {e}", svid.spiffe_id))
            .claims;
        assert_eq!(claims["sub"], svid.spiffe_id.as_str());
        assert_eq!(claims["aud"], serde_json::json!(audience));
        let iat = claims["iat"].as_i64().unwrap();
        let exp = claims["exp"].as_i64().unwrap();
        assert!((before..=now()).contains(&iat));
        assert_eq!(exp - iat, ttl, "{}", svid.spiffe_id);
        assert_eq!(exp, svid.expires_at);
        // Another relying party's audience does not accept it.
        let mut elsewhere = Validation::new(Algorithm::ES256);
        elsewhere.set_audience(&["https://elsewhere.example"]);
        assert!(jsonwebtoken::decode::<serde_json::Value>(&svid.token, &key, &elsewhere).is_err());
    }

    // Only the SVID asked for.
    let one = client
        .mint_jwtsvi_ds(request(&audience, "spiffe://example.org/payments-admin"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.svids.len(), 1);
    assert_eq!(
        one.svids[0].spiffe_id,
        "spiffe://example.org/payments-admin"
    );

    let refused = |status: tonic::Status, code: Code, reason: &str| {
        assert_eq!(status.code(), code, "{status:?}");
        assert!(
            status.message().contains(reason),
            "{status:?} lacks {reason:?}"
        );
    };
    refused(
        client
            .mint_jwtsvi_ds(request(&audience, "spiffe://example.org/batch"))
            .await
            .unwrap_err(),
        Code::PermissionDenied,
        "not entitled to \"spiffe://example.org/batch\"",
    );
    // Evidence for one audience list does not buy tokens for another.
    let mut swapped = request(&audience, "");
    swapped.audience = vec!["spiffe://example.org/db".into()];
    refused(
        client.mint_jwtsvi_ds(swapped).await.unwrap_err(),
        Code::PermissionDenied,
        "nonce does not match",
    );
    // Nor for another SPIFFE ID.
    let mut retargeted = request(&audience, "spiffe://example.org/payments");
    retargeted.spiffe_id = "spiffe://example.org/payments-admin".into();
    refused(
        client.mint_jwtsvi_ds(retargeted).await.unwrap_err(),
        Code::PermissionDenied,
        "nonce does not match",
    );
    // Evidence made for an X.509 mint is not JWT evidence.
    let mut x509_evidence = request(&audience, "");
    x509_evidence.evidence = node.evidence(&node.claims(mint_x509_nonce(b"k"), &selectors));
    refused(
        client.mint_jwtsvi_ds(x509_evidence).await.unwrap_err(),
        Code::PermissionDenied,
        "nonce does not match",
    );
    let seventeen: Vec<String> = (0..17).map(|i| format!("aud-{i}")).collect();
    for (audience, reason) in [
        (vec![], "name at least one"),
        (seventeen, "at most 16"),
        (vec!["a".repeat(257)], "1 to 256 bytes"),
        (vec![String::new()], "1 to 256 bytes"),
        (vec!["a\0b".into()], "NUL"),
    ] {
        refused(
            client
                .mint_jwtsvi_ds(request(&audience, ""))
                .await
                .unwrap_err(),
            Code::InvalidArgument,
            reason,
        );
    }
    refused(
        client
            .mint_jwtsvi_ds(request(&audience, "payments"))
            .await
            .unwrap_err(),
        Code::InvalidArgument,
        "spiffe_id",
    );
    site.stop().await;
}

/// The next revision on a WatchRevision stream.
async fn next(stream: &mut tonic::Streaming<attestd_proto::v1::Revision>) -> String {
    tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("a revision within the deadline")
        .expect("the stream is healthy")
        .expect("the stream is open")
        .revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewriting_the_entries_and_reloading_moves_the_watched_revision() {
    let mut site = site().await;
    let mut client = site.client().await;
    let first = client
        .bundles(BundlesRequest {})
        .await
        .unwrap()
        .into_inner()
        .revision;
    assert_eq!(first.len(), 64);
    let mut stream = client
        .watch_revision(WatchRevisionRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        next(&mut stream).await,
        first,
        "the current revision comes first"
    );

    // uid 3000 has no entry yet.
    let node = Node::attested(&site.ca, NODE2, None);
    let key = workload_key();
    let status = client
        .mint_x509svi_ds(x509_request(&node, &key, &["unix:uid:3000"]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // The same bytes again: no change, nothing streamed.
    assert!(!site.reload.reload_entries().unwrap().changed);
    // An invalid file: refused, the old entries stay, nothing streamed.
    site.write_entries(
        "[[entry]]\nspiffe_id = \"spiffe://other.org/x\"\nselectors = [\"unix:uid:1\"]\n",
    );
    let error = site.reload.reload_entries().unwrap_err();
    assert!(
        error.to_string().contains("not in the trust domain"),
        "{error}"
    );

    let added = format!(
        "{}\n[[entry]]\nspiffe_id = \"spiffe://example.org/reports\"\nselectors = [\"unix:uid:3000\"]\n",
        entries(&hex::encode([NODE1; 32]))
    );
    site.write_entries(&added);
    let reloaded = site.reload.reload_entries().unwrap();
    assert!(reloaded.changed);
    assert_eq!(reloaded.entries, 5);
    // The next message is the new revision: neither the no-op nor the
    // refused file produced one.
    let second = next(&mut stream).await;
    assert_eq!(second, reloaded.revision);
    assert_ne!(second, first);
    let minted = client
        .mint_x509svi_ds(x509_request(&node, &key, &["unix:uid:3000"]))
        .await
        .expect("the new entry applies at once")
        .into_inner();
    assert_eq!(ids(&minted.svids), vec!["spiffe://example.org/reports"]);
    assert_eq!(minted.revision, second);
    assert_eq!(
        client
            .bundles(BundlesRequest {})
            .await
            .unwrap()
            .into_inner()
            .revision,
        second
    );

    // Stopping the issuer ends the stream (and does not wait for it).
    site.stop().await;
    let end = tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("the stream ends with the issuer");
    assert!(!matches!(end, Ok(Some(_))), "{end:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_the_same_files_agree_on_the_revision_and_a_new_key_changes_it() {
    let mut one = site().await;
    // A second issuer on the same CA, JWT key and entries files.
    let dir = tempfile::tempdir().unwrap();
    let mut config = one.config.clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let mut two = Site::start_with(dir, config.clone()).await;
    let mut client_one = one.client().await;
    let mut client_two = two.client().await;
    let bundles_one = client_one
        .bundles(BundlesRequest {})
        .await
        .unwrap()
        .into_inner();
    let bundles_two = client_two
        .bundles(BundlesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bundles_one.revision, bundles_two.revision);
    assert_eq!(bundles_one.jwks, bundles_two.jwks);
    two.stop().await;

    // Another JWT key: another JWKS, another revision.
    let dir = tempfile::tempdir().unwrap();
    config.jwt.key = Some(dir.path().join("jwt.key"));
    let mut three = Site::start_with(dir, config).await;
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(three.path("jwt.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the JWT key is written 0600");
    let bundles_three = three
        .client()
        .await
        .bundles(BundlesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_ne!(bundles_three.jwks, bundles_one.jwks);
    assert_ne!(bundles_three.revision, bundles_one.revision);
    three.stop().await;
    one.stop().await;
}
