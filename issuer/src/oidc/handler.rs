//! The two discovery endpoints as a function of a request's method, path and
//! headers: no I/O, so each odd request is a unit test. Unknown paths are
//! 404 and other methods 405, with short fixed bodies that never repeat the
//! request; query strings are ignored (the documents do not depend on them).

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};

use super::IssuerUrl;
use crate::jwt::PublishedKeys;

/// The only algorithm JWT-SVIDs are signed with.
const SIGNING_ALG: &str = "ES256";

pub type Body = Full<Bytes>;

/// What the listener serves.
#[derive(Debug)]
pub struct Endpoints {
    discovery_path: String,
    jwks_path: String,
    discovery: Bytes,
    discovery_etag: HeaderValue,
    cache_control: HeaderValue,
}

impl Endpoints {
    /// `max_age_secs`: how long clients may cache either document (see
    /// `Schedule::cache_max_age_secs`).
    pub fn new(issuer: &IssuerUrl, max_age_secs: u64) -> Endpoints {
        let discovery = discovery_document(issuer);
        Endpoints {
            discovery_path: issuer.discovery_path(),
            jwks_path: issuer.jwks_path(),
            discovery_etag: etag(&hex::encode(ring::digest::digest(
                &ring::digest::SHA256,
                &discovery,
            ))),
            discovery: Bytes::from(discovery),
            cache_control: HeaderValue::from_str(&format!("public, max-age={max_age_secs}"))
                .unwrap_or(HeaderValue::from_static("no-cache")),
        }
    }

    /// The response to a request for `path` (without its query).
    pub fn respond(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        keys: &PublishedKeys,
    ) -> Response<Body> {
        let document = if path == self.discovery_path {
            Some((self.discovery.clone(), self.discovery_etag.clone()))
        } else if path == self.jwks_path {
            Some((
                Bytes::copy_from_slice(&keys.oidc_jwks),
                etag(&keys.oidc_jwks_digest),
            ))
        } else {
            None
        };
        let mut response = match document {
            None => plain(StatusCode::NOT_FOUND, "not found\n"),
            Some(_) if method != Method::GET && method != Method::HEAD => {
                let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                response
            }
            Some((body, etag)) => {
                let fresh = if_none_match(headers, &etag);
                let mut response = if fresh {
                    status_only(StatusCode::NOT_MODIFIED)
                } else {
                    // For HEAD, hyper sends the length and leaves out the body.
                    let mut response = Response::new(Full::new(body));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    response
                };
                let headers = response.headers_mut();
                headers.insert(header::CACHE_CONTROL, self.cache_control.clone());
                headers.insert(header::ETAG, etag);
                // Public documents: browsers' OIDC clients may read them too.
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
                response
            }
        };
        let close = announces_body(headers);
        let headers = response.headers_mut();
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        // A request body is never read: close rather than leave its bytes to
        // be parsed as the next request.
        if close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Whether a request's headers announce a body.
fn announces_body(request: &HeaderMap) -> bool {
    request.contains_key(header::TRANSFER_ENCODING)
        || request
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0")
}

/// Where workloads get tokens: not over HTTP but from the daemon's SPIFFE
/// Workload API. Discovery §3 requires an `authorization_endpoint`; like
/// Kubernetes' service account issuer (`urn:kubernetes:...`), this names a
/// URN nobody fetches, so strict parsers find the field.
pub const AUTHORIZATION_ENDPOINT: &str = "urn:attestd:workload-api";

/// The OpenID Provider Metadata (OpenID Connect Discovery 1.0 §3) that a
/// relying party verifying ID tokens needs: AWS IAM reads `issuer` and
/// `jwks_uri`, and checks that the token's `alg` is among
/// `id_token_signing_alg_values_supported`. Keys are sorted (serde_json's
/// map), so the bytes are the same on every replica.
fn discovery_document(issuer: &IssuerUrl) -> Vec<u8> {
    let document = serde_json::json!({
        "issuer": issuer.as_str(),
        "jwks_uri": issuer.jwks_uri(),
        "authorization_endpoint": AUTHORIZATION_ENDPOINT,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [SIGNING_ALG],
        "claims_supported": ["sub", "aud", "exp", "iat", "iss"],
    });
    let mut bytes = serde_json::to_vec(&document).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// A strong validator from a hex digest (32 hex digits are plenty).
fn etag(digest_hex: &str) -> HeaderValue {
    let short = digest_hex.get(..32).unwrap_or(digest_hex);
    HeaderValue::from_str(&format!("\"{short}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// RFC 9110 §13.1.2: `*`, or a list of entity tags compared weakly.
fn if_none_match(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == ours)
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn status_only(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn endpoints(issuer: &str) -> Endpoints {
        Endpoints::new(&IssuerUrl::parse(issuer).unwrap(), 900)
    }

    fn keys() -> PublishedKeys {
        let jwks = br#"{"keys":[{"kty":"EC","kid":"k1"}]}"#.to_vec();
        PublishedKeys {
            kids: vec!["k1".into()],
            spiffe_jwks: b"{}".to_vec(),
            oidc_jwks_digest: hex::encode(ring::digest::digest(&ring::digest::SHA256, &jwks)),
            oidc_jwks: jwks,
        }
    }

    fn get(
        endpoints: &Endpoints,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (Response<Body>, Vec<u8>) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let mut response = endpoints.respond(&method, path, &map, &keys());
        let body = std::mem::take(response.body_mut());
        let bytes = collect_body(body);
        (response, bytes)
    }

    fn collect_body(body: Body) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(body.collect())
            .map(|collected| collected.to_bytes().to_vec())
            .unwrap_or_default()
    }

    fn header_of(response: &Response<Body>, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap())
            .unwrap_or("")
    }

    #[test]
    fn the_discovery_document_names_the_issuer_the_jwks_and_es256() {
        let endpoints = endpoints("https://oidc.example.org");
        let (response, body) = get(
            &endpoints,
            Method::GET,
            "/.well-known/openid-configuration",
            &[],
        );
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header_of(&response, header::CONTENT_TYPE),
            "application/json"
        );
        assert_eq!(
            header_of(&response, header::CACHE_CONTROL),
            "public, max-age=900"
        );
        let document: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(document["issuer"], "https://oidc.example.org");
        assert_eq!(document["jwks_uri"], "https://oidc.example.org/keys");
        assert_eq!(
            document["authorization_endpoint"],
            "urn:attestd:workload-api"
        );
        assert_eq!(
            document["response_types_supported"],
            serde_json::json!(["id_token"])
        );
        assert_eq!(
            document["subject_types_supported"],
            serde_json::json!(["public"])
        );
        assert_eq!(
            document["id_token_signing_alg_values_supported"],
            serde_json::json!(["ES256"])
        );
    }

    #[test]
    fn the_jwks_is_served_at_jwks_uri_under_the_issuer_path() {
        let endpoints = endpoints("https://example.org/attestd");
        let (response, body) = get(&endpoints, Method::GET, "/attestd/keys", &[]);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body, keys().oidc_jwks);
        let (response, _) = get(
            &endpoints,
            Method::GET,
            "/attestd/.well-known/openid-configuration",
            &[],
        );
        assert_eq!(response.status(), StatusCode::OK);
        // Not at the root: the issuer path is part of every URL.
        for path in ["/keys", "/.well-known/openid-configuration"] {
            assert_eq!(
                get(&endpoints, Method::GET, path, &[]).0.status(),
                StatusCode::NOT_FOUND
            );
        }
    }

    #[test]
    fn odd_paths_are_404_with_a_fixed_body_that_repeats_nothing() {
        let endpoints = endpoints("https://oidc.example.org");
        let long = format!("/{}", "a".repeat(7000));
        for path in [
            "/",
            "",
            "*",
            "//.well-known/openid-configuration",
            "/.well-known/openid-configuration/",
            "/.well-known//openid-configuration",
            "/.well-known/openid-configuration%00",
            "/.well-known/%6fpenid-configuration",
            "/..%2f.well-known/openid-configuration",
            "/../.well-known/openid-configuration",
            "/keys/",
            "/KEYS",
            "/%ff%fe",
            long.as_str(),
        ] {
            let (response, body) = get(&endpoints, Method::GET, path, &[]);
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path:?}");
            assert_eq!(body, b"not found\n", "{path:?}");
            assert!(response.headers().get(header::CACHE_CONTROL).is_none());
            // Unknown paths are 404 whatever the method.
            let (response, _) = get(&endpoints, Method::DELETE, path, &[]);
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path:?}");
        }
    }

    #[test]
    fn other_methods_are_405_naming_get_and_head() {
        let endpoints = endpoints("https://oidc.example.org");
        for method in [
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
            Method::TRACE,
            Method::CONNECT,
            Method::from_bytes(b"BREW").unwrap(),
        ] {
            for path in ["/keys", "/.well-known/openid-configuration"] {
                let (response, body) = get(&endpoints, method.clone(), path, &[]);
                assert_eq!(
                    response.status(),
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path}"
                );
                assert_eq!(header_of(&response, header::ALLOW), "GET, HEAD");
                assert_eq!(body, b"method not allowed\n");
            }
        }
    }

    #[test]
    fn head_is_get_without_a_body_and_a_matching_etag_is_304() {
        let endpoints = endpoints("https://oidc.example.org");
        let (get_response, get_body) = get(&endpoints, Method::GET, "/keys", &[]);
        let (head_response, _) = get(&endpoints, Method::HEAD, "/keys", &[]);
        assert_eq!(head_response.status(), StatusCode::OK);
        let etag = header_of(&get_response, header::ETAG).to_owned();
        assert_eq!(etag, format!("\"{}\"", &keys().oidc_jwks_digest[..32]));
        assert_eq!(header_of(&head_response, header::ETAG), etag);
        assert!(!get_body.is_empty());

        for matching in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"x\", {etag}"),
            "*".into(),
        ] {
            let (response, body) = get(
                &endpoints,
                Method::GET,
                "/keys",
                &[("if-none-match", &matching)],
            );
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{matching}");
            assert!(body.is_empty());
            assert_eq!(header_of(&response, header::ETAG), etag);
            assert_eq!(
                header_of(&response, header::CACHE_CONTROL),
                "public, max-age=900"
            );
        }
        let (response, _) = get(
            &endpoints,
            Method::GET,
            "/keys",
            &[("if-none-match", "\"other\"")],
        );
        assert_eq!(response.status(), StatusCode::OK);
        // The discovery document has its own validator.
        let (response, _) = get(
            &endpoints,
            Method::GET,
            "/.well-known/openid-configuration",
            &[("if-none-match", &etag)],
        );
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[test]
    fn a_request_that_announces_a_body_closes_the_connection() {
        let endpoints = endpoints("https://oidc.example.org");
        for announced in [("content-length", "5"), ("transfer-encoding", "chunked")] {
            let (response, _) = get(&endpoints, Method::GET, "/keys", &[announced]);
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                header_of(&response, header::CONNECTION),
                "close",
                "{announced:?}"
            );
        }
        let (response, _) = get(&endpoints, Method::GET, "/keys", &[("content-length", "0")]);
        assert!(response.headers().get(header::CONNECTION).is_none());
    }
}
