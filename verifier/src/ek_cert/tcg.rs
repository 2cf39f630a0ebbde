//! TCG-specific EK certificate content: which critical extensions an EK
//! certificate may carry, and the TPM identity in its subjectAltName.

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};

use super::EkCertError;

const TPM_MANUFACTURER: &str = "2.23.133.2.1";
const TPM_MODEL: &str = "2.23.133.2.2";
const TPM_VERSION: &str = "2.23.133.2.3";

/// Critical extensions we either enforce or that carry no constraint we would
/// have to enforce; anything else critical is refused (RFC 5280 §4.2).
const UNDERSTOOD_CRITICAL: &[(&str, &str)] = &[
    ("2.5.29.9", "subjectDirectoryAttributes"),
    ("2.5.29.14", "subjectKeyIdentifier"),
    ("2.5.29.15", "keyUsage"),
    ("2.5.29.17", "subjectAltName"),
    ("2.5.29.19", "basicConstraints"),
    ("2.5.29.32", "certificatePolicies"),
    ("2.5.29.35", "authorityKeyIdentifier"),
    ("2.5.29.37", "extendedKeyUsage"),
];

pub(super) fn check_critical_extensions(
    certificate: &X509Certificate<'_>,
) -> Result<(), EkCertError> {
    for extension in certificate.extensions() {
        let oid = extension.oid.to_id_string();
        let understood = UNDERSTOOD_CRITICAL
            .iter()
            .find(|(known, _)| *known == oid)
            .map(|(_, name)| *name);
        match (extension.critical, understood) {
            (true, None) => {
                return Err(EkCertError::UnknownCriticalExtension {
                    subject: subject_of(certificate),
                    oid,
                })
            }
            // A critical extension we rely on must also be one we could read.
            (true, Some(name)) => {
                if matches!(
                    extension.parsed_extension(),
                    ParsedExtension::ParseError { .. }
                ) {
                    return Err(EkCertError::MalformedExtension {
                        subject: subject_of(certificate),
                        extension: name,
                    });
                }
            }
            (false, _) => {}
        }
    }
    Ok(())
}

#[derive(Debug, Default)]
pub(super) struct TpmIdentity {
    pub(super) manufacturer: Option<String>,
    pub(super) model: Option<String>,
    pub(super) version: Option<String>,
}

/// Reads TPMManufacturer/TPMModel/TPMVersion from directoryName entries of the
/// subjectAltName (TCG EK Credential Profile §3.2.9).
pub(super) fn tpm_identity(certificate: &X509Certificate<'_>) -> Result<TpmIdentity, EkCertError> {
    let mut identity = TpmIdentity::default();
    let san =
        certificate
            .subject_alternative_name()
            .map_err(|_| EkCertError::MalformedExtension {
                subject: subject_of(certificate),
                extension: "subjectAltName",
            })?;
    let Some(san) = san else {
        return Ok(identity);
    };
    for general_name in &san.value.general_names {
        let GeneralName::DirectoryName(name) = general_name else {
            continue;
        };
        for attribute in name.iter_attributes() {
            let slot = match attribute.attr_type().to_id_string().as_str() {
                TPM_MANUFACTURER => &mut identity.manufacturer,
                TPM_MODEL => &mut identity.model,
                TPM_VERSION => &mut identity.version,
                _ => continue,
            };
            if let Ok(value) = attribute.as_str() {
                *slot = Some(value.to_string());
            }
        }
    }
    Ok(identity)
}

/// A printable name for messages; EK certificates often have an empty subject.
pub(super) fn subject_of(certificate: &X509Certificate<'_>) -> String {
    certificate.subject().to_string()
}
