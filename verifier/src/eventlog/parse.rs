//! Parsing of the crypto-agile TCG event log: the SHA-1-format Spec ID header
//! event, then TCG_PCR_EVENT2 records whose digests are walked with the sizes
//! the header declares, so a bank this crate cannot compute (SM3, SHA3) is
//! skipped by its declared size instead of derailing the parse.

use crate::tpm2::constants::alg;
use crate::tpm2::{HashAlg, ParseError};

use super::event_type::{self, EV_NO_ACTION};
use super::reader::LeReader;
use super::EventLogError;

/// Largest log accepted. Real firmware logs are a few KiB to a few hundred
/// KiB; the cap bounds the work a hostile attester can demand.
pub const MAX_LOG_LEN: usize = 16 * 1024 * 1024;
/// Largest event data. The biggest real events are dbx/db variable
/// measurements (tens of KiB).
pub const MAX_EVENT_DATA_LEN: usize = 1024 * 1024;
/// Most events accepted; real logs have tens to a few thousand.
pub const MAX_EVENTS: usize = 65_536;
/// Most digest algorithms in the Spec ID event or in one event; real TPMs have 1–4 banks.
pub const MAX_ALGORITHMS: usize = 16;
/// Highest PCR index (TPM2_MAX_PCRS is 32; PC Client TPMs have 24).
pub const MAX_PCR_INDEX: u32 = 31;

const SPEC_ID_SIGNATURE: &[u8; 16] = b"Spec ID Event03\0";
const SHA1_DIGEST_LEN: usize = 20;
/// pcrIndex, eventType and digest count: an all-zero one can never start a
/// real event (a crypto-agile event carries at least one digest).
const EVENT2_HEADER_LEN: usize = 12;

/// A parsed crypto-agile event log. Nothing in it is trustworthy until a
/// replay matches a verified quote (see [`super::verify_event_log`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLog {
    /// (TPM_ALG_ID, digest size) from the Spec ID event, in its order. This,
    /// not the header event's SHA-1 field, says which banks the log covers.
    pub algorithms: Vec<(u16, u16)>,
    /// Every event in log order. `events[0]` is the Spec ID header itself
    /// (EV_NO_ACTION, its all-zero SHA-1 digest, the Spec ID structure as
    /// data), so indices match `tpm2_eventlog`'s `EventNum`.
    pub events: Vec<Event>,
}

/// One logged measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub pcr: u32,
    pub event_type: u32,
    /// (TPM_ALG_ID, digest) in the order logged.
    pub digests: Vec<(u16, Vec<u8>)>,
    pub data: Vec<u8>,
}

impl Event {
    /// This event's digest for `alg_id`, if it carries one.
    pub fn digest(&self, alg_id: u16) -> Option<&[u8]> {
        self.digests
            .iter()
            .find(|(id, _)| *id == alg_id)
            .map(|(_, digest)| digest.as_slice())
    }
}

impl EventLog {
    /// Whether the Spec ID event declares `bank`, i.e. every extending event
    /// must carry a digest for it.
    pub fn declares(&self, bank: HashAlg) -> bool {
        self.algorithms.iter().any(|(id, _)| *id == bank.to_tpm())
    }
}

/// Parses a crypto-agile log as found in
/// `/sys/kernel/security/tpm0/binary_bios_measurements`.
///
/// Firmware quirks handled here:
/// - Zero padding: some firmware hands over a fixed-size buffer. An all-zero
///   event header (PCR 0, type 0, no digests — never a real event) ends the
///   log; anything but zeros after it is refused, since hidden bytes there
///   would be events no replay looked at.
/// - The header's SHA-1 digest must be all zeros (PFP §10.4.5.1); it is not
///   a SHA-1 measurement and does not make the SHA-1 bank "covered".
pub fn parse_event_log(bytes: &[u8]) -> Result<EventLog, EventLogError> {
    if bytes.len() > MAX_LOG_LEN {
        return Err(EventLogError::LogTooLarge {
            size: bytes.len(),
            max: MAX_LOG_LEN,
        });
    }
    if bytes.is_empty() {
        return Err(EventLogError::Empty);
    }
    let mut reader = LeReader::new(bytes);
    let header = read_header(&mut reader)?;
    let algorithms = parse_spec_id(&header.data)?;
    let mut events = vec![header];
    while !reader.is_empty() {
        if is_padding(reader.remaining()) {
            check_padding(&reader)?;
            break;
        }
        if events.len() >= MAX_EVENTS {
            return Err(EventLogError::TooManyEvents { max: MAX_EVENTS });
        }
        let index = events.len();
        events.push(read_event2(&mut reader, &algorithms, index)?);
    }
    Ok(EventLog { algorithms, events })
}

fn malformed(event: usize) -> impl Fn(ParseError) -> EventLogError {
    move |source| EventLogError::Malformed { event, source }
}

/// The TCG_PCClientPCREvent (SHA-1 format) that opens every TPM 2.0 log.
fn read_header(reader: &mut LeReader<'_>) -> Result<Event, EventLogError> {
    let m = malformed(0);
    let pcr = reader.u32("TCG_PCClientPCREvent.pcrIndex").map_err(&m)?;
    let event_type = reader.u32("TCG_PCClientPCREvent.eventType").map_err(&m)?;
    if event_type != EV_NO_ACTION || pcr != 0 {
        return Err(EventLogError::HeaderNotSpecId {
            pcr,
            event_type: event_type::describe(event_type),
        });
    }
    let digest: [u8; SHA1_DIGEST_LEN] = reader.array("TCG_PCClientPCREvent.digest").map_err(&m)?;
    let data = reader
        .u32_prefixed(MAX_EVENT_DATA_LEN, "TCG_PCClientPCREvent.event")
        .map_err(&m)?;
    if !data.starts_with(SPEC_ID_SIGNATURE) {
        let shown = data.get(..16).unwrap_or(data);
        return Err(EventLogError::NotCryptoAgile {
            signature: String::from_utf8_lossy(shown)
                .trim_end_matches('\0')
                .to_owned(),
        });
    }
    if digest.iter().any(|&byte| byte != 0) {
        return Err(EventLogError::HeaderDigestNotZero);
    }
    Ok(Event {
        pcr,
        event_type,
        digests: vec![(alg::SHA1, digest.to_vec())],
        data: data.to_vec(),
    })
}

/// TCG_EfiSpecIDEventStruct: the digest algorithms and sizes of every later event.
fn parse_spec_id(data: &[u8]) -> Result<Vec<(u16, u16)>, EventLogError> {
    let m = malformed(0);
    let mut reader = LeReader::new(data);
    reader
        .take(SPEC_ID_SIGNATURE.len(), "SpecID.signature")
        .map_err(&m)?;
    reader.u32("SpecID.platformClass").map_err(&m)?;
    reader.take(4, "SpecID.specVersion").map_err(&m)?;
    let count =
        usize::try_from(reader.u32("SpecID.numberOfAlgorithms").map_err(&m)?).unwrap_or(usize::MAX);
    if count == 0 {
        return Err(EventLogError::NoAlgorithms);
    }
    if count > MAX_ALGORITHMS {
        return Err(m(ParseError::TooLarge {
            field: "SpecID.numberOfAlgorithms",
            size: count,
            max: MAX_ALGORITHMS,
        }));
    }
    let mut algorithms: Vec<(u16, u16)> = Vec::with_capacity(count);
    for _ in 0..count {
        let alg_id = reader.u16("SpecID.digestSizes.algorithmId").map_err(&m)?;
        let size = reader.u16("SpecID.digestSizes.digestSize").map_err(&m)?;
        if algorithms.iter().any(|(id, _)| *id == alg_id) {
            return Err(EventLogError::DuplicateAlgorithm { alg: alg_id });
        }
        if size == 0 || usize::from(size) > HashAlg::MAX_DIGEST_LEN {
            return Err(EventLogError::BadDigestSize {
                alg: alg_id,
                size,
                max: HashAlg::MAX_DIGEST_LEN,
            });
        }
        // A known algorithm with a wrong size would shift every later digest.
        if let Some(known) = HashAlg::from_tpm(alg_id) {
            if usize::from(size) != known.digest_len() {
                return Err(EventLogError::DigestSizeMismatch {
                    alg: known,
                    declared: size,
                    expected: known.digest_len(),
                });
            }
        }
        algorithms.push((alg_id, size));
    }
    let vendor_len = usize::from(reader.u8("SpecID.vendorInfoSize").map_err(&m)?);
    reader.take(vendor_len, "SpecID.vendorInfo").map_err(&m)?;
    if !reader.is_empty() {
        return Err(m(ParseError::TrailingBytes {
            structure: "TCG_EfiSpecIDEventStruct",
            count: reader.remaining().len(),
        }));
    }
    Ok(algorithms)
}

/// TCG_PCR_EVENT2.
fn read_event2(
    reader: &mut LeReader<'_>,
    algorithms: &[(u16, u16)],
    index: usize,
) -> Result<Event, EventLogError> {
    let m = malformed(index);
    let pcr = reader.u32("TCG_PCR_EVENT2.pcrIndex").map_err(&m)?;
    if pcr > MAX_PCR_INDEX {
        return Err(EventLogError::PcrIndexOutOfRange {
            event: index,
            pcr,
            max: MAX_PCR_INDEX,
        });
    }
    let event_type = reader.u32("TCG_PCR_EVENT2.eventType").map_err(&m)?;
    let count =
        usize::try_from(reader.u32("TPML_DIGEST_VALUES.count").map_err(&m)?).unwrap_or(usize::MAX);
    if count > MAX_ALGORITHMS {
        return Err(m(ParseError::TooLarge {
            field: "TPML_DIGEST_VALUES.count",
            size: count,
            max: MAX_ALGORITHMS,
        }));
    }
    let mut digests: Vec<(u16, Vec<u8>)> = Vec::with_capacity(count);
    for _ in 0..count {
        let alg_id = reader.u16("TPMT_HA.hashAlg").map_err(&m)?;
        let size = algorithms
            .iter()
            .find(|(id, _)| *id == alg_id)
            .map(|(_, size)| usize::from(*size))
            .ok_or(EventLogError::UndeclaredAlgorithm {
                event: index,
                alg: alg_id,
            })?;
        if digests.iter().any(|(id, _)| *id == alg_id) {
            return Err(EventLogError::DuplicateDigest {
                event: index,
                alg: alg_id,
            });
        }
        let digest = reader.take(size, "TPMT_HA.digest").map_err(&m)?;
        digests.push((alg_id, digest.to_vec()));
    }
    let data = reader
        .u32_prefixed(MAX_EVENT_DATA_LEN, "TCG_PCR_EVENT2.event")
        .map_err(&m)?;
    Ok(Event {
        pcr,
        event_type,
        digests,
        data: data.to_vec(),
    })
}

/// Whether the next bytes are the zero padding some firmware leaves after
/// the last event (a short all-zero tail counts too).
fn is_padding(rest: &[u8]) -> bool {
    let head = rest.get(..EVENT2_HEADER_LEN).unwrap_or(rest);
    head.iter().all(|&byte| byte == 0)
}

fn check_padding(reader: &LeReader<'_>) -> Result<(), EventLogError> {
    match reader.remaining().iter().position(|&byte| byte != 0) {
        None => Ok(()),
        Some(at) => Err(EventLogError::DataAfterPadding {
            offset: reader.offset() + at,
        }),
    }
}

#[cfg(test)]
#[path = "parse_test.rs"]
mod tests;
