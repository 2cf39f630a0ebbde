//! Reading certificate bundles as operators supply them: one or more PEM
//! CERTIFICATE blocks, or a single DER certificate (as read from TPM NV).

use x509_parser::pem::Pem;

use super::{parse_certificate, EkCertError, MAX_CERTIFICATE_LEN, MAX_ROOTS};

/// A bundle of MAX_ROOTS certificates of the maximum size, in base64.
const MAX_BUNDLE_LEN: usize = MAX_ROOTS * MAX_CERTIFICATE_LEN * 4 / 3;
const DER_SEQUENCE_TAG: u8 = 0x30;

/// Returns the DER of every certificate in `input`. Non-certificate PEM
/// blocks are skipped; every certificate must parse.
pub fn parse_pem_bundle(input: &[u8]) -> Result<Vec<Vec<u8>>, EkCertError> {
    if input.len() > MAX_BUNDLE_LEN {
        return Err(EkCertError::CertificateTooLarge {
            role: "bundle".to_string(),
            size: input.len(),
            max: MAX_BUNDLE_LEN,
        });
    }
    // A certificate is a SEQUENCE longer than 127 bytes, so DER starts 0x30
    // then a long-form length byte; text never does (0x81.. is not UTF-8 there).
    if matches!(input, [DER_SEQUENCE_TAG, 0x81..=0x84, ..]) {
        parse_certificate(input, "DER")?;
        return Ok(vec![input.to_vec()]);
    }
    let mut certificates = Vec::new();
    for block in Pem::iter_from_buffer(input) {
        let block = block.map_err(|error| EkCertError::PemInvalid(error.to_string()))?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        if certificates.len() == MAX_ROOTS {
            return Err(EkCertError::TooManyCertificates {
                what: "certificates in the bundle",
                count: certificates.len() + 1,
                max: MAX_ROOTS,
            });
        }
        parse_certificate(&block.contents, &format!("PEM #{}", certificates.len()))?;
        certificates.push(block.contents);
    }
    if certificates.is_empty() {
        return Err(EkCertError::NoCertificates);
    }
    Ok(certificates)
}
