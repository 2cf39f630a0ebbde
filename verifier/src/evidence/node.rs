//! The node SVID chain (`x5chain`) in evidence: the issuer's statement that it
//! attested this node's TPM (EK → AK → quote) and certified the session key
//! that signed the evidence. Checking it replaces pinning session keys.

use std::time::Duration;

use attestd_proto::evidence::{EvidenceError, UEID_LEN, UEID_TYPE_RAND};
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::extensions::GeneralName;

/// Path under the trust domain that the issuer gives node SVIDs.
const NODE_PATH: &str = "/attestd/node/";

/// The attested-AK extension of a node SVID: the TPM Name (nameAlg ‖ digest
/// of the public area) of the AK the issuer activated and whose quote it
/// verified. Hardware-fresh evidence is accepted only from that AK. The OID is
/// in Microsoft's GUID arc (see `attestd_issuer::node_selectors`) for the UUID
/// f40cf040-7208-48e2-8df2-0c6ab24d69a4, generated once for attestd. Its value
/// is a DER OCTET STRING; the extension is not critical.
pub const AK_NAME_OID: &[u64] = &[
    1, 2, 840, 113556, 1, 8000, 2554, 62476, 61504, 29192, 18658, 36338, 813746, 5073316,
];
/// Longest TPM Name: a 2-byte algorithm and a SHA-512 digest.
const MAX_AK_NAME: usize = 66;

/// The DER value of the attested-AK extension for `name`.
pub fn ak_name_extension_value(name: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(name.len() + 2);
    value.push(0x04);
    value.push(name.len().min(MAX_AK_NAME) as u8);
    value.extend_from_slice(&name[..name.len().min(MAX_AK_NAME)]);
    value
}

/// Signature algorithms accepted on node SVID chains. The issuer signs with
/// ECDSA P-256; the others allow an operator's own CA hierarchy above it.
const ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
];

/// Who may certify session keys: the issuer CA bundle of one trust domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTrust {
    anchors: Vec<TrustAnchor<'static>>,
    trust_domain: String,
}

impl NodeTrust {
    /// `roots`: DER CA certificates (the issuer's bundle, as
    /// `attestd-issuer bundle` prints it). `trust_domain`: the SPIFFE trust
    /// domain node SVIDs must name, without `spiffe://`.
    pub fn new(roots: &[Vec<u8>], trust_domain: &str) -> Result<NodeTrust, EvidenceError> {
        if roots.is_empty() {
            return Err(EvidenceError::InvalidPolicy(
                "the node trust bundle holds no certificate".to_owned(),
            ));
        }
        if trust_domain.is_empty()
            || !trust_domain
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
        {
            return Err(EvidenceError::InvalidPolicy(format!(
                "trust domain {trust_domain:?} is not a SPIFFE trust domain name (lowercase letters, digits, '-', '.', '_')"
            )));
        }
        let anchors = roots
            .iter()
            .enumerate()
            .map(|(index, der)| {
                webpki::anchor_from_trusted_cert(&CertificateDer::from(der.as_slice()))
                    .map(|anchor| anchor.to_owned())
                    .map_err(|error| {
                        EvidenceError::InvalidPolicy(format!(
                            "trust bundle certificate {index} is not usable as a CA: {error}"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(NodeTrust {
            anchors,
            trust_domain: trust_domain.to_owned(),
        })
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }
}

/// The node that the verified chain names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNode {
    /// `spiffe://<trust domain>/attestd/node/<ek hash>`.
    pub spiffe_id: String,
    /// SHA-256 of the node's EK SubjectPublicKeyInfo.
    pub ek_hash: [u8; 32],
    /// The node SVID's notAfter, seconds since the Unix epoch.
    pub not_after: i64,
    /// The TPM Name of the AK the issuer attested, from the attested-AK
    /// extension ([`AK_NAME_OID`]); `None` when the SVID has none.
    pub ak_name: Option<Vec<u8>>,
}

impl VerifiedNode {
    /// The `ueid` claim a node with this EK must carry.
    pub fn ueid(&self) -> [u8; UEID_LEN] {
        let mut ueid = [0u8; UEID_LEN];
        ueid[0] = UEID_TYPE_RAND;
        ueid[1..].copy_from_slice(&self.ek_hash);
        ueid
    }
}

/// Checks that `x5chain` is a valid path from a node SVID to `trust` at
/// `now`, that the SVID certifies exactly `session_key_spki`, and that it
/// names a node of the trust domain.
pub(super) fn check_node_chain(
    x5chain: &[Vec<u8>],
    session_key_spki: &[u8],
    trust: &NodeTrust,
    now_unix_secs: i64,
) -> Result<VerifiedNode, EvidenceError> {
    let Some((leaf_der, intermediates)) = x5chain.split_first() else {
        return Err(EvidenceError::NodeNotCertified);
    };
    let chain_error = |error: webpki::Error| EvidenceError::NodeChain(format!("{error:?}"));
    let leaf_cert = CertificateDer::from(leaf_der.as_slice());
    let leaf = EndEntityCert::try_from(&leaf_cert).map_err(chain_error)?;
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|der| CertificateDer::from(der.as_slice()))
        .collect();
    let now = u64::try_from(now_unix_secs).map_err(|_| {
        EvidenceError::InvalidPolicy(format!("clock {now_unix_secs} is before 1970"))
    })?;
    leaf.verify_for_usage(
        ALGORITHMS,
        &trust.anchors,
        &intermediates,
        UnixTime::since_unix_epoch(Duration::from_secs(now)),
        KeyUsage::client_auth(),
        None,
        None,
    )
    .map_err(chain_error)?;

    // webpki accepted the DER; x509-parser reads what webpki does not expose.
    let (_, certificate) = x509_parser::parse_x509_certificate(leaf_der)
        .map_err(|error| EvidenceError::NodeChain(format!("leaf certificate: {error}")))?;
    if certificate.public_key().raw != session_key_spki {
        return Err(EvidenceError::NodeMismatch(
            "the node SVID certifies another key than the one that signed the evidence".to_owned(),
        ));
    }
    let spiffe_id = single_uri_san(&certificate)?;
    let ek_hash = node_ek_hash(&spiffe_id, &trust.trust_domain)?;
    Ok(VerifiedNode {
        spiffe_id,
        ek_hash,
        not_after: certificate.validity().not_after.timestamp(),
        ak_name: attested_ak_name(&certificate)?,
    })
}

/// The attested-AK extension's TPM Name: one extension at most, holding a
/// DER OCTET STRING (short-form length) of 3 to [`MAX_AK_NAME`] bytes.
fn attested_ak_name(
    certificate: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<Option<Vec<u8>>, EvidenceError> {
    let mismatch = |reason: &str| EvidenceError::NodeMismatch(reason.to_owned());
    let oid = x509_parser::der_parser::asn1_rs::Oid::from(AK_NAME_OID)
        .map_err(|_| mismatch("the attested-AK OID does not encode"))?;
    let mut found = certificate
        .extensions()
        .iter()
        .filter(|extension| extension.oid == oid);
    let Some(extension) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(mismatch("the node SVID names its AK twice"));
    }
    match extension.value {
        [0x04, len, name @ ..]
            if usize::from(*len) == name.len() && (3..=MAX_AK_NAME).contains(&name.len()) =>
        {
            Ok(Some(name.to_vec()))
        }
        _ => Err(mismatch(
            "the node SVID's attested-AK extension is not an OCTET STRING holding a TPM Name",
        )),
    }
}

/// An X.509-SVID has exactly one URI SAN (SPIFFE X509-SVID §2).
fn single_uri_san(
    certificate: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<String, EvidenceError> {
    let mismatch = |reason: &str| EvidenceError::NodeMismatch(reason.to_owned());
    let san = certificate
        .subject_alternative_name()
        .map_err(|_| mismatch("the node SVID's subjectAltName is malformed or repeated"))?
        .ok_or_else(|| mismatch("the node SVID has no subjectAltName"))?;
    let mut uris = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        });
    match (uris.next(), uris.next()) {
        (Some(uri), None) => Ok(uri.to_owned()),
        (None, _) => Err(mismatch("the node SVID has no URI SAN")),
        (Some(_), Some(_)) => Err(mismatch("the node SVID has more than one URI SAN")),
    }
}

/// `spiffe://<trust_domain>/attestd/node/<64 lowercase hex>` → the EK hash.
fn node_ek_hash(spiffe_id: &str, trust_domain: &str) -> Result<[u8; 32], EvidenceError> {
    let wrong = || {
        EvidenceError::NodeMismatch(format!(
            "the node SVID names {spiffe_id:?}, not spiffe://{trust_domain}{NODE_PATH}<sha256 of the EK>"
        ))
    };
    let hex = spiffe_id
        .strip_prefix("spiffe://")
        .and_then(|rest| rest.strip_prefix(trust_domain))
        .and_then(|rest| rest.strip_prefix(NODE_PATH))
        .ok_or_else(wrong)?;
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(wrong());
    }
    let mut hash = [0u8; 32];
    hex::decode_to_slice(hex, &mut hash).map_err(|_| wrong())?;
    Ok(hash)
}
