//! Strict DER check of a certificate's unsigned envelope. x509-parser accepts
//! wrong outer tags and nonzero unused bits around the signed TBS, which would
//! let one certificate circulate under many encodings (and fingerprints).

use x509_parser::certificate::X509Certificate;

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_VERSION: u8 = 0xa0;

/// One DER element: its whole encoding and its content.
struct Element<'a> {
    tag: u8,
    encoded: &'a [u8],
    content: &'a [u8],
}

/// Reads one element with a single-byte tag and a minimally encoded length.
fn read_element(input: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let (&tag, after_tag) = input.split_first()?;
    let (&first_length_byte, after_first) = after_tag.split_first()?;
    let (length, after_length) = if first_length_byte < 0x80 {
        (usize::from(first_length_byte), after_first)
    } else {
        let count = usize::from(first_length_byte & 0x7f);
        if !(1..=4).contains(&count) {
            return None;
        }
        let (length_bytes, rest) = after_first.split_at_checked(count)?;
        if length_bytes.first() == Some(&0) {
            return None;
        }
        let length = length_bytes
            .iter()
            .fold(0usize, |acc, byte| (acc << 8) | usize::from(*byte));
        if length < 0x80 {
            return None;
        }
        (length, rest)
    };
    let (content, rest) = after_length.split_at_checked(length)?;
    let header_len = input.len() - after_length.len();
    let encoded = input.get(..header_len + length)?;
    Some((
        Element {
            tag,
            encoded,
            content,
        },
        rest,
    ))
}

fn read_expected(input: &[u8], tag: u8) -> Option<(Element<'_>, &[u8])> {
    read_element(input).filter(|(element, _)| element.tag == tag)
}

/// True when `der` is exactly SEQUENCE { tbs, algorithm, BIT STRING } in DER,
/// `tbs` is what x509-parser verified, the outer algorithm is byte-identical
/// to the signed one, and the signature has no unused bits.
pub(super) fn is_canonical(der: &[u8], certificate: &X509Certificate<'_>) -> bool {
    check(der, certificate).is_some()
}

fn check(der: &[u8], certificate: &X509Certificate<'_>) -> Option<()> {
    let (outer, rest) = read_expected(der, TAG_SEQUENCE)?;
    if !rest.is_empty() {
        return None;
    }
    let (tbs, rest) = read_expected(outer.content, TAG_SEQUENCE)?;
    let (algorithm, rest) = read_expected(rest, TAG_SEQUENCE)?;
    let (signature, rest) = read_expected(rest, TAG_BIT_STRING)?;
    if !rest.is_empty() || signature.content.first() != Some(&0) {
        return None;
    }
    if tbs.encoded != certificate.tbs_certificate.as_ref() {
        return None;
    }
    // TBSCertificate starts [0] version (optional), serialNumber, signature.
    let (first, rest) = read_element(tbs.content)?;
    let after_serial = if first.tag == TAG_VERSION {
        read_expected(rest, TAG_INTEGER)?.1
    } else if first.tag == TAG_INTEGER {
        rest
    } else {
        return None;
    };
    let (signed_algorithm, _) = read_expected(after_serial, TAG_SEQUENCE)?;
    (signed_algorithm.encoded == algorithm.encoded).then_some(())
}

#[cfg(test)]
#[path = "envelope_test.rs"]
mod tests;
