//! Just enough DER encoding to express TPM keys and signatures in the X.509
//! and ring formats (SubjectPublicKeyInfo, ECDSA-Sig-Value).

/// OID content bytes (without tag and length).
pub(crate) mod oid {
    /// rsaEncryption, 1.2.840.113549.1.1.1
    pub(crate) const RSA_ENCRYPTION: &[u8] =
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    /// id-ecPublicKey, 1.2.840.10045.2.1
    pub(crate) const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    /// prime256v1 / NIST P-256, 1.2.840.10045.3.1.7
    pub(crate) const NIST_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    /// secp384r1 / NIST P-384, 1.3.132.0.34
    pub(crate) const NIST_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    /// secp521r1 / NIST P-521, 1.3.132.0.35
    pub(crate) const NIST_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
}

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        // Short form; the cast cannot truncate because len < 0x80.
        out.push(len as u8);
    } else {
        let len_bytes = len.to_be_bytes();
        let first = len_bytes
            .iter()
            .position(|byte| *byte != 0)
            .unwrap_or(len_bytes.len());
        let significant = len_bytes.get(first..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

pub(crate) fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &parts.concat())
}

pub(crate) fn object_id(content: &[u8]) -> Vec<u8> {
    tlv(TAG_OID, content)
}

pub(crate) fn null() -> Vec<u8> {
    tlv(TAG_NULL, &[])
}

/// A BIT STRING with no unused bits, as keys are always whole bytes.
pub(crate) fn bit_string(content: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(content.len() + 1);
    body.push(0);
    body.extend_from_slice(content);
    tlv(TAG_BIT_STRING, &body)
}

/// A non-negative INTEGER from big-endian magnitude bytes: minimal length,
/// with a 0x00 prefix when the top bit would otherwise read as a sign.
pub(crate) fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed = strip_leading_zeros(magnitude);
    let mut body = Vec::with_capacity(trimmed.len() + 1);
    let needs_sign_byte = match trimmed.first() {
        None => true,
        Some(byte) => byte & 0x80 != 0,
    };
    if needs_sign_byte {
        body.push(0);
    }
    body.extend_from_slice(trimmed);
    tlv(TAG_INTEGER, &body)
}

pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

#[cfg(test)]
#[path = "der_test.rs"]
mod tests;
