//! Builders for the IMA unit tests: serialise entries the way the kernel
//! writes `binary_runtime_measurements`.
#![allow(dead_code)]

use crate::tpm2::HashAlg;

/// The template fields, each a u32 length and bytes.
pub(crate) fn template_data(
    algorithm: &str,
    digest: &[u8],
    path: &[u8],
    sig: Option<&[u8]>,
) -> Vec<u8> {
    let mut digest_field = format!("{algorithm}:\0").into_bytes();
    digest_field.extend_from_slice(digest);
    let mut name_field = path.to_vec();
    name_field.push(0);
    let mut data = field(&digest_field);
    data.extend_from_slice(&field(&name_field));
    if let Some(sig) = sig {
        data.extend_from_slice(&field(sig));
    }
    data
}

pub(crate) fn field(bytes: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(bytes.len()).unwrap().to_le_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// One log entry with an explicit template digest.
pub(crate) fn raw_entry(
    pcr: u32,
    template_digest: [u8; 20],
    template: &str,
    data: &[u8],
) -> Vec<u8> {
    let mut out = pcr.to_le_bytes().to_vec();
    out.extend_from_slice(&template_digest);
    out.extend_from_slice(&field(template.as_bytes()));
    out.extend_from_slice(&field(data));
    out
}

pub(crate) fn sha1(data: &[u8]) -> [u8; 20] {
    let mut out = [0u8; 20];
    out.copy_from_slice(
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref(),
    );
    out
}

/// A measured file in PCR 10 with an ima-ng template.
pub(crate) fn ima_ng(path: &str, content: &[u8]) -> Vec<u8> {
    let digest = ring::digest::digest(&ring::digest::SHA256, content);
    let data = template_data("sha256", digest.as_ref(), path.as_bytes(), None);
    raw_entry(10, sha1(&data), "ima-ng", &data)
}

/// A measured, signed file in PCR 10 with an ima-sig template.
pub(crate) fn ima_sig(path: &str, content: &[u8], signature: &[u8]) -> Vec<u8> {
    let digest = ring::digest::digest(&ring::digest::SHA256, content);
    let data = template_data("sha256", digest.as_ref(), path.as_bytes(), Some(signature));
    raw_entry(10, sha1(&data), "ima-sig", &data)
}

/// A violation: all-zero digests in the template and the log.
pub(crate) fn violation(path: &str) -> Vec<u8> {
    let data = template_data("sha256", &[0; 32], path.as_bytes(), None);
    raw_entry(10, [0; 20], "ima-ng", &data)
}

/// The template data of a serialised entry (everything after its length).
pub(crate) fn data_of(entry: &[u8]) -> Vec<u8> {
    let name_len = u32::from_le_bytes(entry[24..28].try_into().unwrap()) as usize;
    entry[28 + name_len + 4..].to_vec()
}

/// PCR 10 after extending each entry, chained here with ring: all ones for
/// a violation, SHA-1 template digest or the bank's hash of the data.
pub(crate) fn expected_pcr(bank: HashAlg, entries: &[Vec<u8>]) -> Vec<u8> {
    let algorithm = match bank {
        HashAlg::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        HashAlg::Sha256 => &ring::digest::SHA256,
        HashAlg::Sha384 => &ring::digest::SHA384,
        HashAlg::Sha512 => &ring::digest::SHA512,
    };
    let len = algorithm.output_len();
    entries.iter().fold(vec![0; len], |pcr, entry| {
        let is_violation = entry[4..24].iter().all(|&byte| byte == 0);
        let digest = if is_violation {
            vec![0xff; len]
        } else {
            ring::digest::digest(algorithm, &data_of(entry))
                .as_ref()
                .to_vec()
        };
        ring::digest::digest(algorithm, &[pcr, digest].concat())
            .as_ref()
            .to_vec()
    })
}
