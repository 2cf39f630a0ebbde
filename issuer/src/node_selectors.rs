//! Node selectors: what node attestation proved about a node (its EK, its
//! quoted PCRs, what its replayed boot log says), as `tpm:` selectors carried
//! in a private X.509 extension of its node SVID. The issuer keeps no record
//! of attested nodes: when a daemon later asks for workload SVIDs, the node
//! SVID chain in its evidence brings these facts back, signed by our own CA.
//! docs/selectors.md lists them.

use attestd_verifier::PcrValues;
use rcgen::CustomExtension;
use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::asn1_rs::{FromDer, Oid};

use crate::policy::{bank_name, BootFacts};

/// The node-selector extension's OID, in Microsoft's GUID arc (a GUID
/// `aaaabbbb-cccc-dddd-eeee-ffffffgggggg` is
/// `1.2.840.113556.1.8000.2554.A.B.C.D.E.F.G`, each chunk in decimal), for the
/// UUID f4691d38-05df-4eb3-8e0e-9efeb1d29d49, generated once for attestd. The
/// same UUID under `2.25` (2.25.324877414770138623750439759027442457929) has a
/// 128-bit arc, which rcgen's `u64` arcs cannot write.
pub const OID: &[u64] = &[
    1, 2, 840, 113556, 1, 8000, 2554, 62569, 7480, 1503, 20147, 36366, 10419889, 13802825,
];
/// [`OID`] in dotted form.
pub const OID_DOTTED: &str =
    "1.2.840.113556.1.8000.2554.62569.7480.1503.20147.36366.10419889.13802825";

/// Most selectors read from one extension: 4 banks × 24 PCRs, and the rest.
pub const MAX_NODE_SELECTORS: usize = 128;
/// Longest selector read: a SHA-512 PCR is 147 bytes.
pub const MAX_NODE_SELECTOR_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeSelectorError {
    #[error("the node SVID is not X.509: {0}")]
    Certificate(String),
    #[error("the node SVID has the node-selector extension more than once")]
    Repeated,
    #[error("the node-selector extension is not a DER SEQUENCE OF UTF8String: {0}")]
    Malformed(String),
    #[error("the node-selector extension holds {count} selectors; at most {MAX_NODE_SELECTORS}")]
    TooMany { count: usize },
    #[error("a node selector is {len} bytes; at most {MAX_NODE_SELECTOR_LEN}")]
    TooLong { len: usize },
}

/// The selectors of a node that passed attestation: `tpm:ek:<hash>`, one
/// `tpm:pcr:<bank>:<index>:<hex>` per quoted PCR, and, when its boot log was
/// replayed, `tpm:secure_boot:<bool>` and `tpm:kernel_digest:<hex>` as far
/// as the log says. Sorted, without duplicates.
pub fn collect(ek_hash: &[u8], pcrs: &PcrValues, boot: Option<&BootFacts>) -> Vec<String> {
    let mut selectors = vec![format!("tpm:ek:{}", hex::encode(ek_hash))];
    selectors.extend(pcrs.iter().map(|(bank, index, value)| {
        format!("tpm:pcr:{}:{index}:{}", bank_name(bank), hex::encode(value))
    }));
    if let Some(boot) = boot {
        if let Some(secure_boot) = boot.secure_boot {
            selectors.push(format!("tpm:secure_boot:{secure_boot}"));
        }
        if let Some(digest) = &boot.kernel_sha256 {
            selectors.push(format!("tpm:kernel_digest:{}", hex::encode(digest)));
        }
    }
    selectors.sort();
    selectors.dedup();
    selectors
}

/// The extension, non-critical: a verifier that does not know it may ignore
/// it, since it restricts nothing. Its value is a DER SEQUENCE OF UTF8String.
pub fn extension(selectors: &[String]) -> CustomExtension {
    CustomExtension::from_oid_content(OID, encode(selectors))
}

fn encode(selectors: &[String]) -> Vec<u8> {
    yasna::construct_der(|writer| {
        writer.write_sequence_of(|writer| {
            for selector in selectors {
                writer.next().write_utf8_string(selector);
            }
        })
    })
}

/// The node selectors in a certificate: empty when it has no node-selector
/// extension (a node SVID from an issuer before this extension). Trust the
/// answer only for a certificate whose chain has been verified.
pub fn read(certificate: &X509Certificate<'_>) -> Result<Vec<String>, NodeSelectorError> {
    let oid = Oid::from(OID).map_err(|_| NodeSelectorError::Malformed("bad OID".into()))?;
    let mut found = certificate
        .extensions()
        .iter()
        .filter(|extension| extension.oid == oid);
    let Some(extension) = found.next() else {
        return Ok(Vec::new());
    };
    if found.next().is_some() {
        return Err(NodeSelectorError::Repeated);
    }
    decode(extension.value)
}

/// As [`read`], from the certificate's DER.
pub fn read_der(certificate_der: &[u8]) -> Result<Vec<String>, NodeSelectorError> {
    let (_, certificate) = x509_parser::parse_x509_certificate(certificate_der)
        .map_err(|error| NodeSelectorError::Certificate(error.to_string()))?;
    read(&certificate)
}

fn decode(value: &[u8]) -> Result<Vec<String>, NodeSelectorError> {
    let (rest, selectors) = <Vec<String>>::from_der(value)
        .map_err(|error| NodeSelectorError::Malformed(error.to_string()))?;
    if !rest.is_empty() {
        return Err(NodeSelectorError::Malformed(format!(
            "{} bytes after the SEQUENCE",
            rest.len()
        )));
    }
    if selectors.len() > MAX_NODE_SELECTORS {
        return Err(NodeSelectorError::TooMany {
            count: selectors.len(),
        });
    }
    if let Some(long) = selectors
        .iter()
        .find(|selector| selector.len() > MAX_NODE_SELECTOR_LEN)
    {
        return Err(NodeSelectorError::TooLong { len: long.len() });
    }
    Ok(selectors)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use attestd_verifier::HashAlg;

    use super::*;
    use crate::ca::Ca;
    use crate::config::CaConfig;

    const SESSION_KEY_SEED: u8 = 7;

    fn ca(dir: &std::path::Path) -> Ca {
        Ca::load_or_generate(
            &CaConfig {
                cert: dir.join("ca.pem"),
                key: dir.join("ca.key"),
            },
            "example.org",
        )
        .unwrap()
    }

    /// A real P-256 point, as the daemon's session key is.
    fn session_key() -> Vec<u8> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap();
        ring::signature::KeyPair::public_key(&key).as_ref().to_vec()
    }

    fn pcrs() -> PcrValues {
        [
            (HashAlg::Sha256, 7, vec![0x77; 32]),
            (HashAlg::Sha256, 0, vec![0x00; 32]),
            (HashAlg::Sha1, 10, vec![0xaa; 20]),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn selectors_name_the_ek_every_quoted_pcr_and_what_the_boot_log_says() {
        let boot = BootFacts {
            secure_boot: Some(false),
            kernel_cmdline: Some("ro quiet".into()),
            kernel_sha256: Some(vec![0xcd; 32]),
        };
        let selectors = collect(&[SESSION_KEY_SEED; 32], &pcrs(), Some(&boot));
        assert_eq!(
            selectors,
            vec![
                format!("tpm:ek:{}", "07".repeat(32)),
                format!("tpm:kernel_digest:{}", "cd".repeat(32)),
                format!("tpm:pcr:sha1:10:{}", "aa".repeat(20)),
                format!("tpm:pcr:sha256:0:{}", "00".repeat(32)),
                format!("tpm:pcr:sha256:7:{}", "77".repeat(32)),
                "tpm:secure_boot:false".to_owned(),
            ]
        );
        // No boot log: nothing is claimed from one.
        let bare = collect(&[1; 32], &PcrValues::new(), None);
        assert_eq!(bare, vec![format!("tpm:ek:{}", "01".repeat(32))]);
        // A log that does not say: no selector either way.
        let silent = collect(&[1; 32], &PcrValues::new(), Some(&BootFacts::default()));
        assert_eq!(silent, bare);
    }

    #[test]
    fn the_extension_round_trips_through_a_node_svid_and_is_not_critical() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let selectors = collect(&[3; 32], &pcrs(), None);
        let svid = ca
            .issue_node_svid(
                "spiffe://example.org/attestd/node/ab",
                &session_key(),
                Duration::from_secs(60),
                &selectors,
                None,
            )
            .unwrap();
        assert_eq!(read_der(&svid.der).unwrap(), selectors);
        let (_, certificate) = x509_parser::parse_x509_certificate(&svid.der).unwrap();
        let extension = certificate
            .extensions()
            .iter()
            .find(|extension| extension.oid.to_id_string() == OID_DOTTED)
            .expect("the extension is there under the documented OID");
        assert!(!extension.critical);

        // Without selectors (issue_svid), no extension and nothing read.
        let plain = ca
            .issue_svid(
                "spiffe://example.org/attestd/node/ab",
                &session_key(),
                Duration::from_secs(60),
            )
            .unwrap();
        assert_eq!(read_der(&plain.der).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn malformed_extension_values_are_refused() {
        // SEQUENCE { UTF8String "a" } followed by a stray byte.
        assert!(matches!(
            decode(&[0x30, 0x03, 0x0c, 0x01, b'a', 0x00]),
            Err(NodeSelectorError::Malformed(_))
        ));
        // SEQUENCE { OCTET STRING "a" }: wrong element type.
        assert!(matches!(
            decode(&[0x30, 0x03, 0x04, 0x01, b'a']),
            Err(NodeSelectorError::Malformed(_))
        ));
        // Indefinite length is BER, not DER.
        assert!(matches!(
            decode(&[0x30, 0x80, 0x0c, 0x01, b'a', 0x00, 0x00]),
            Err(NodeSelectorError::Malformed(_))
        ));
        // A UTF8String that is not UTF-8.
        assert!(matches!(
            decode(&[0x30, 0x03, 0x0c, 0x01, 0xff]),
            Err(NodeSelectorError::Malformed(_))
        ));
        assert!(decode(&[0x30, 0x00]).unwrap().is_empty());
    }

    #[test]
    fn oversized_extension_values_are_refused() {
        let many: Vec<String> = (0..=MAX_NODE_SELECTORS)
            .map(|i| format!("tpm:x:{i}"))
            .collect();
        let value = encode(&many);
        assert_eq!(
            decode(&value),
            Err(NodeSelectorError::TooMany {
                count: MAX_NODE_SELECTORS + 1
            })
        );
        let long = vec!["x".repeat(MAX_NODE_SELECTOR_LEN + 1)];
        assert_eq!(
            decode(&encode(&long)),
            Err(NodeSelectorError::TooLong {
                len: MAX_NODE_SELECTOR_LEN + 1
            })
        );
    }
}
