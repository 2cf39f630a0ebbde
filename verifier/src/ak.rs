//! Attestation-key policy: the attributes that make a key's quotes mean "this
//! TPM generated it, it cannot leave this TPM, and it signs only TPM data".

use crate::tpm2::TpmPublic;

/// Why a public area is not acceptable as an AK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AkError {
    #[error("AK attributes rejected: {}", describe(.missing, .forbidden))]
    AttributesRejected {
        /// Required attributes that are clear, by TPMA_OBJECT name.
        missing: Vec<&'static str>,
        /// Attributes that must be clear but are set.
        forbidden: Vec<&'static str>,
    },
}

fn describe(missing: &[&'static str], forbidden: &[&'static str]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing {}", missing.join(", ")));
    }
    if !forbidden.is_empty() {
        parts.push(format!("must not have {}", forbidden.join(", ")));
    }
    parts.join("; ")
}

/// Requires restricted, sign, fixedTPM, fixedParent and sensitiveDataOrigin,
/// and decrypt clear; reports every offending attribute at once.
pub fn check_ak_attributes(ak: &TpmPublic) -> Result<(), AkError> {
    let attributes = ak.attributes;
    let required = [
        ("restricted", attributes.restricted()),
        ("sign", attributes.sign()),
        ("fixedTPM", attributes.fixed_tpm()),
        ("fixedParent", attributes.fixed_parent()),
        ("sensitiveDataOrigin", attributes.sensitive_data_origin()),
    ];
    let missing: Vec<&'static str> = required
        .iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| *name)
        .collect();
    let forbidden: Vec<&'static str> = if attributes.decrypt() {
        vec!["decrypt"]
    } else {
        Vec::new()
    };
    if missing.is_empty() && forbidden.is_empty() {
        Ok(())
    } else {
        Err(AkError::AttributesRejected { missing, forbidden })
    }
}
