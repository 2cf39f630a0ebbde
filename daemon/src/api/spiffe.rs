//! The SPIFFE Workload API (`SpiffeWorkloadAPI`, proto/spiffe/workload.proto)
//! on the daemon's socket, so existing SPIFFE clients get identities with no
//! change. The caller is attested from the connection, exactly as for
//! `attestd.v1.Attestation`; its selectors pick the cached SVIDs.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use attestd_proto::spiffe::spiffe_workload_api_server::SpiffeWorkloadApi;
use attestd_proto::spiffe::{
    JwtBundlesRequest, JwtBundlesResponse, Jwtsvid, JwtsvidRequest, JwtsvidResponse,
    ValidateJwtsvidRequest, ValidateJwtsvidResponse, X509BundlesRequest, X509BundlesResponse,
    X509svid, X509svidRequest, X509svidResponse,
};
use tokio_stream::wrappers::WatchStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use tracing::debug;

use super::peer::Peer;
use super::socket::PeerInfo;
use crate::identity::{Bundles, Identities, X509State};
use crate::workload::{WorkloadAttestation, WorkloadAttestor, WorkloadError};

/// The metadata every Workload API request must carry (SPIFFE Workload API
/// §5.1), so that a browser or proxy cannot be tricked into calling it.
const SECURITY_HEADER: &str = "workload.spiffe.io";
/// Bounds on JWT-SVID requests.
const MAX_AUDIENCES: usize = 16;
const MAX_AUDIENCE_BYTES: usize = 256;
const MAX_JWT_BYTES: usize = 16 * 1024;

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

pub struct WorkloadApiService {
    workload: Arc<WorkloadAttestor>,
    /// None when no issuer is configured: there are no identities to serve.
    identities: Option<Arc<Identities>>,
}

impl WorkloadApiService {
    pub fn new(workload: Arc<WorkloadAttestor>, identities: Option<Arc<Identities>>) -> Self {
        WorkloadApiService {
            workload,
            identities,
        }
    }

    fn identities(&self) -> Result<&Arc<Identities>, Status> {
        self.identities.as_ref().ok_or_else(|| {
            Status::unavailable(
                "this daemon has no issuer configured ([issuer] url), so it has no SPIFFE identities",
            )
        })
    }

    /// Checks the security header, then attests the caller.
    async fn caller<T>(
        &self,
        request: &Request<T>,
    ) -> Result<(Arc<Peer>, Arc<WorkloadAttestation>), Status> {
        check_security_header(request)?;
        let PeerInfo(peer) = request
            .extensions()
            .get::<PeerInfo>()
            .cloned()
            .ok_or_else(|| Status::internal("connection has no identified peer"))?;
        let attestation = self
            .workload
            .attest(&peer)
            .await
            .map_err(|error| match error {
                WorkloadError::CallerGone => Status::unauthenticated(error.to_string()),
            })?;
        Ok((peer, attestation))
    }
}

fn check_security_header<T>(request: &Request<T>) -> Result<(), Status> {
    match request.metadata().get(SECURITY_HEADER) {
        Some(value) if value.as_bytes() == b"true" => Ok(()),
        _ => Err(Status::invalid_argument(
            "security header missing from request: set the gRPC metadata workload.spiffe.io: true",
        )),
    }
}

fn concat(ders: &[Vec<u8>]) -> Vec<u8> {
    ders.concat()
}

fn trust_domain_id(bundles: &Bundles) -> String {
    format!("spiffe://{}", bundles.trust_domain)
}

/// Ends the stream after the first error: a refusal is final for a stream.
fn until_error<T: Send + 'static>(
    stream: impl Stream<Item = Result<T, Status>> + Send + 'static,
) -> ResponseStream<T> {
    let mut failed = false;
    Box::pin(stream.take_while(move |item| {
        if failed {
            return false;
        }
        failed = item.is_err();
        true
    }))
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for WorkloadApiService {
    type FetchX509SVIDStream = ResponseStream<X509svidResponse>;
    type FetchX509BundlesStream = ResponseStream<X509BundlesResponse>;
    type FetchJWTBundlesStream = ResponseStream<JwtBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        request: Request<X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        let (peer, attestation) = self.caller(&request).await?;
        let selectors = attestation.selectors.len();
        // The stream lives no longer than the process that opened it, even if
        // the connection outlives it (inherited by a child, say).
        let exit = peer
            .exit_watch()
            .map_err(|e| Status::internal(format!("cannot watch the calling process: {e}")))?;
        let states = self.identities()?.x509(&peer, attestation).await?;
        debug!(selectors, pid = peer.pid, "X.509-SVID stream opened");
        let stream = WatchStream::new(states).filter_map(|state| match state {
            X509State::Pending => None,
            X509State::Denied(reason) => Some(Err(Status::permission_denied(format!(
                "no registration entry matches this workload: {reason}"
            )))),
            X509State::Ready(set) => {
                let bundle = concat(&set.bundle);
                Some(Ok(X509svidResponse {
                    svids: set
                        .svids
                        .iter()
                        .map(|svid| X509svid {
                            spiffe_id: svid.spiffe_id.clone(),
                            x509_svid: concat(&svid.chain),
                            x509_svid_key: svid.key.to_vec(),
                            bundle: bundle.clone(),
                            hint: svid.hint.clone(),
                        })
                        .collect(),
                    crl: Vec::new(),
                    federated_bundles: HashMap::new(),
                }))
            }
        });
        let pid = peer.pid;
        let stream = futures_util::StreamExt::take_until(stream, async move {
            exit.exited().await;
            debug!(
                pid,
                "the process that opened an X.509-SVID stream exited; ending it"
            );
        });
        Ok(Response::new(until_error(stream)))
    }

    async fn fetch_x509_bundles(
        &self,
        request: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        // Bundles are public; the caller must still be an identifiable process.
        self.caller(&request).await?;
        let stream = WatchStream::new(self.identities()?.bundles()).filter_map(|bundles| {
            bundles.map(|bundles| {
                Ok(X509BundlesResponse {
                    crl: Vec::new(),
                    bundles: HashMap::from([(
                        trust_domain_id(&bundles),
                        concat(&bundles.x509_authorities),
                    )]),
                })
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn fetch_jwtsvid(
        &self,
        request: Request<JwtsvidRequest>,
    ) -> Result<Response<JwtsvidResponse>, Status> {
        let (peer, attestation) = self.caller(&request).await?;
        let JwtsvidRequest {
            mut audience,
            spiffe_id,
        } = request.into_inner();
        if audience.is_empty() {
            return Err(Status::invalid_argument(
                "at least one audience is required",
            ));
        }
        if audience.len() > MAX_AUDIENCES
            || audience.iter().any(|aud| {
                aud.is_empty()
                    || aud.len() > MAX_AUDIENCE_BYTES
                    || aud.chars().any(char::is_control)
            })
        {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_AUDIENCES} audiences of 1 to {MAX_AUDIENCE_BYTES} bytes of printable text"
            )));
        }
        if spiffe_id.len() > 2048 || spiffe_id.chars().any(char::is_control) {
            return Err(Status::invalid_argument("spiffe_id is not a SPIFFE ID"));
        }
        audience.sort();
        audience.dedup();
        let set = self
            .identities()?
            .jwt(&peer, &attestation, audience, spiffe_id)
            .await?;
        Ok(Response::new(JwtsvidResponse {
            svids: set
                .svids
                .iter()
                .map(|(spiffe_id, token, hint)| Jwtsvid {
                    spiffe_id: spiffe_id.clone(),
                    svid: token.clone(),
                    hint: hint.clone(),
                })
                .collect(),
        }))
    }

    async fn fetch_jwt_bundles(
        &self,
        request: Request<JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        self.caller(&request).await?;
        let stream = WatchStream::new(self.identities()?.bundles()).filter_map(|bundles| {
            bundles.map(|bundles| {
                Ok(JwtBundlesResponse {
                    bundles: HashMap::from([(trust_domain_id(&bundles), bundles.jwks.clone())]),
                })
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn validate_jwtsvid(
        &self,
        request: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        self.caller(&request).await?;
        let ValidateJwtsvidRequest { audience, svid } = request.into_inner();
        if audience.is_empty() || svid.is_empty() {
            return Err(Status::invalid_argument("audience and svid are required"));
        }
        if svid.len() > MAX_JWT_BYTES || audience.len() > MAX_AUDIENCE_BYTES {
            return Err(Status::invalid_argument("audience or svid is too long"));
        }
        let bundles = self
            .identities()?
            .bundles()
            .borrow()
            .clone()
            .ok_or_else(|| Status::unavailable("no JWT bundle from the issuer yet"))?;
        let (spiffe_id, claims) = validate_jwt(&svid, &audience, &bundles).map_err(|reason| {
            Status::invalid_argument(format!("the JWT-SVID is not valid: {reason}"))
        })?;
        Ok(Response::new(ValidateJwtsvidResponse {
            spiffe_id,
            claims: Some(claims),
        }))
    }
}

/// Checks a JWT-SVID against the trust domain's JWT keys (SPIFFE JWT-SVID §3,
/// §4): a known `kid`, an ES256 signature, `aud` containing `audience`, an
/// unexpired `exp`, and a `sub` in the trust domain.
pub fn validate_jwt(
    token: &str,
    audience: &str,
    bundles: &Bundles,
) -> Result<(String, prost_types::Struct), String> {
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};

    let header = decode_header(token).map_err(|e| format!("header: {e}"))?;
    if header.alg != Algorithm::ES256 {
        return Err(format!("algorithm {:?} is not ES256", header.alg));
    }
    let kid = header.kid.ok_or("no kid in the header")?;
    let keys: JwkSet =
        serde_json::from_slice(&bundles.jwks).map_err(|e| format!("the JWT bundle: {e}"))?;
    let jwk = keys
        .find(&kid)
        .ok_or_else(|| format!("kid {kid:?} is not in the trust domain's JWT bundle"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("JWT bundle key {kid:?}: {e}"))?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "sub", "aud"]);
    validation.leeway = 0;
    let data = decode::<serde_json::Map<String, serde_json::Value>>(token, &key, &validation)
        .map_err(|e| e.to_string())?;
    let sub = data
        .claims
        .get("sub")
        .and_then(serde_json::Value::as_str)
        .ok_or("sub is not a string")?
        .to_owned();
    let prefix = format!("spiffe://{}/", bundles.trust_domain);
    if !sub.starts_with(&prefix) {
        return Err(format!("sub {sub:?} is not in {}", bundles.trust_domain));
    }
    Ok((sub, to_struct(data.claims)))
}

fn to_struct(map: serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
    }
}

fn to_value(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(to_value).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}
