//! Builders for the event-log unit tests: serialise headers, events and the
//! UEFI structures inside them, so each test states only what it varies.
#![allow(dead_code)]

use crate::tpm2::constants::alg;
use crate::tpm2::HashAlg;

use super::event_type::EV_NO_ACTION;

pub(crate) const SHA1: u16 = alg::SHA1;
pub(crate) const SHA256: u16 = alg::SHA256;
pub(crate) const SHA384: u16 = alg::SHA384;
/// TPM_ALG_SM3_256: a real bank this crate cannot compute.
pub(crate) const SM3_256: u16 = 0x0012;

pub(crate) const SHA1_AND_SHA256: [(u16, u16); 2] = [(SHA1, 20), (SHA256, 32)];

/// TCG_EfiSpecIDEventStruct declaring `algorithms`.
pub(crate) fn spec_id(algorithms: &[(u16, u16)]) -> Vec<u8> {
    let mut data = b"Spec ID Event03\0".to_vec();
    data.extend_from_slice(&0u32.to_le_bytes()); // platformClass: client
    data.extend_from_slice(&[0, 2, 0, 2]); // version 2.0, errata 0, uintnSize 2 (64-bit)
    data.extend_from_slice(&u32::try_from(algorithms.len()).unwrap().to_le_bytes());
    for (alg_id, size) in algorithms {
        data.extend_from_slice(&alg_id.to_le_bytes());
        data.extend_from_slice(&size.to_le_bytes());
    }
    data.push(0); // vendorInfoSize
    data
}

/// A SHA-1-format TCG_PCClientPCREvent.
pub(crate) fn sha1_format_event(
    pcr: u32,
    event_type: u32,
    digest: [u8; 20],
    data: &[u8],
) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&pcr.to_le_bytes());
    bytes.extend_from_slice(&event_type.to_le_bytes());
    bytes.extend_from_slice(&digest);
    bytes.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// The Spec ID header event as firmware writes it.
pub(crate) fn header(algorithms: &[(u16, u16)]) -> Vec<u8> {
    sha1_format_event(0, EV_NO_ACTION, [0; 20], &spec_id(algorithms))
}

/// A TCG_PCR_EVENT2 with exactly the digests given.
pub(crate) fn event2(
    pcr: u32,
    event_type: u32,
    digests: &[(u16, Vec<u8>)],
    data: &[u8],
) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&pcr.to_le_bytes());
    bytes.extend_from_slice(&event_type.to_le_bytes());
    bytes.extend_from_slice(&u32::try_from(digests.len()).unwrap().to_le_bytes());
    for (alg_id, digest) in digests {
        bytes.extend_from_slice(&alg_id.to_le_bytes());
        bytes.extend_from_slice(digest);
    }
    bytes.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// Each declared algorithm's hash of `data`; algorithms ring lacks get a
/// filler of their declared size.
pub(crate) fn digests_of(algorithms: &[(u16, u16)], data: &[u8]) -> Vec<(u16, Vec<u8>)> {
    algorithms
        .iter()
        .map(|&(alg_id, size)| {
            let digest = match HashAlg::from_tpm(alg_id) {
                Some(bank) => ring_digest(bank, data),
                None => vec![0xab; usize::from(size)],
            };
            (alg_id, digest)
        })
        .collect()
}

pub(crate) fn ring_algorithm(bank: HashAlg) -> &'static ring::digest::Algorithm {
    match bank {
        HashAlg::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        HashAlg::Sha256 => &ring::digest::SHA256,
        HashAlg::Sha384 => &ring::digest::SHA384,
        HashAlg::Sha512 => &ring::digest::SHA512,
    }
}

pub(crate) fn ring_digest(bank: HashAlg, data: &[u8]) -> Vec<u8> {
    ring::digest::digest(ring_algorithm(bank), data)
        .as_ref()
        .to_vec()
}

/// The expected PCR after extending `digests` in order from `start`,
/// computed here rather than with the code under test.
pub(crate) fn chain(bank: HashAlg, start: Vec<u8>, digests: &[Vec<u8>]) -> Vec<u8> {
    digests.iter().fold(start, |pcr, digest| {
        ring_digest(bank, &[pcr.as_slice(), digest.as_slice()].concat())
    })
}

/// A log under construction: header first, then events in call order.
pub(crate) struct LogBuilder {
    algorithms: Vec<(u16, u16)>,
    bytes: Vec<u8>,
}

impl LogBuilder {
    pub(crate) fn new(algorithms: &[(u16, u16)]) -> Self {
        Self {
            algorithms: algorithms.to_vec(),
            bytes: header(algorithms),
        }
    }

    /// An event whose digests are every declared bank's hash of `data`.
    pub(crate) fn measure(self, pcr: u32, event_type: u32, data: &[u8]) -> Self {
        let digests = digests_of(&self.algorithms, data);
        self.event(pcr, event_type, &digests, data)
    }

    pub(crate) fn event(
        mut self,
        pcr: u32,
        event_type: u32,
        digests: &[(u16, Vec<u8>)],
        data: &[u8],
    ) -> Self {
        self.bytes
            .extend_from_slice(&event2(pcr, event_type, digests, data));
        self
    }

    /// An EV_NO_ACTION event with the all-zero digests the spec prescribes.
    pub(crate) fn no_action(self, pcr: u32, data: &[u8]) -> Self {
        let digests: Vec<(u16, Vec<u8>)> = self
            .algorithms
            .iter()
            .map(|&(alg_id, size)| (alg_id, vec![0; usize::from(size)]))
            .collect();
        self.event(pcr, EV_NO_ACTION, &digests, data)
    }

    pub(crate) fn raw(mut self, bytes: &[u8]) -> Self {
        self.bytes.extend_from_slice(bytes);
        self
    }

    pub(crate) fn build(self) -> Vec<u8> {
        self.bytes
    }
}

/// "StartupLocality\0" and the locality byte (TCG_EfiStartupLocalityEvent).
pub(crate) fn startup_locality_data(locality: u8) -> Vec<u8> {
    let mut data = b"StartupLocality\0".to_vec();
    data.push(locality);
    data
}

pub(crate) fn utf16(text: &str, nul: bool) -> Vec<u8> {
    let mut bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    if nul {
        bytes.extend_from_slice(&[0, 0]);
    }
    bytes
}

/// UEFI_VARIABLE_DATA; `nul` includes a terminating NUL in the name and its length.
pub(crate) fn uefi_variable(vendor: [u8; 16], name: &str, nul: bool, value: &[u8]) -> Vec<u8> {
    let name = utf16(name, nul);
    let mut bytes = vendor.to_vec();
    bytes.extend_from_slice(&u64::try_from(name.len() / 2).unwrap().to_le_bytes());
    bytes.extend_from_slice(&u64::try_from(value.len()).unwrap().to_le_bytes());
    bytes.extend_from_slice(&name);
    bytes.extend_from_slice(value);
    bytes
}

/// UEFI_IMAGE_LOAD_EVENT around a device path.
pub(crate) fn image_load_event(device_path: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&0x7e00_0000u64.to_le_bytes());
    bytes.extend_from_slice(&0x0010_0000u64.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.extend_from_slice(&u64::try_from(device_path.len()).unwrap().to_le_bytes());
    bytes.extend_from_slice(device_path);
    bytes
}

/// One device path node.
pub(crate) fn node(node_type: u8, subtype: u8, body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![node_type, subtype];
    bytes.extend_from_slice(&u16::try_from(body.len() + 4).unwrap().to_le_bytes());
    bytes.extend_from_slice(body);
    bytes
}

pub(crate) fn end_node() -> Vec<u8> {
    node(0x7f, 0xff, &[])
}

pub(crate) fn file_path_node(path: &str) -> Vec<u8> {
    node(0x04, 0x04, &utf16(path, true))
}

/// The PCR values a TPM would hold after measuring `measured` (PCR, data)
/// with digest = hash(data), in `banks`, chained here independently.
pub(crate) fn quoted_after(banks: &[HashAlg], measured: &[(u8, &[u8])]) -> crate::tpm2::PcrValues {
    let mut values = crate::tpm2::PcrValues::new();
    for &bank in banks {
        let mut pcrs: std::collections::BTreeMap<u8, Vec<u8>> = std::collections::BTreeMap::new();
        for &(pcr, data) in measured {
            let value = pcrs
                .entry(pcr)
                .or_insert_with(|| vec![0; bank.digest_len()]);
            *value = chain(bank, value.clone(), &[ring_digest(bank, data)]);
        }
        for (pcr, value) in pcrs {
            values.insert(bank, pcr, value);
        }
    }
    values
}
