//! Why an event log was refused. Events are numbered from 0 (the Spec ID
//! header), the numbering `tpm2_eventlog` prints as `EventNum`, so a message
//! can be checked against that tool's dump of the same log.

use crate::tpm2::{HashAlg, ParseError};

/// Why an event log could not be parsed, replayed or matched to a quote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventLogError {
    #[error("the event log is {size} bytes; at most {max} are accepted")]
    LogTooLarge { size: usize, max: usize },
    #[error("the event log is empty")]
    Empty,
    #[error("event {event} is malformed: {source}")]
    Malformed {
        event: usize,
        #[source]
        source: ParseError,
    },
    #[error("the log has more than {max} events")]
    TooManyEvents { max: usize },
    #[error(
        "the first event is {event_type} in PCR {pcr}, not the EV_NO_ACTION Spec ID event in PCR 0"
    )]
    HeaderNotSpecId { pcr: u32, event_type: String },
    #[error("the Spec ID event's signature is {signature:?}, not \"Spec ID Event03\" (only crypto-agile TPM 2.0 logs are supported)")]
    NotCryptoAgile { signature: String },
    #[error("the Spec ID event's SHA-1 digest field is not all zeros")]
    HeaderDigestNotZero,
    #[error("the Spec ID event declares no digest algorithms")]
    NoAlgorithms,
    #[error("the Spec ID event declares algorithm 0x{alg:04x} twice")]
    DuplicateAlgorithm { alg: u16 },
    #[error("the Spec ID event declares {alg} digests as {declared} bytes; they are {expected}")]
    DigestSizeMismatch {
        alg: HashAlg,
        declared: u16,
        expected: usize,
    },
    #[error("the Spec ID event declares algorithm 0x{alg:04x} with digest size {size}; 1..={max} is accepted")]
    BadDigestSize { alg: u16, size: u16, max: usize },
    #[error("event {event} carries a digest for algorithm 0x{alg:04x}, which the Spec ID event does not declare")]
    UndeclaredAlgorithm { event: usize, alg: u16 },
    #[error("event {event} carries two digests for algorithm 0x{alg:04x}")]
    DuplicateDigest { event: usize, alg: u16 },
    #[error("event {event} extends PCR {pcr}; PCR indices stop at {max}")]
    PcrIndexOutOfRange { event: usize, pcr: u32, max: u32 },
    #[error("non-zero bytes at offset {offset} follow the zero padding that ends the log")]
    DataAfterPadding { offset: usize },
    #[error("the quote covers the {bank} bank but the event log has no {bank} digests")]
    BankNotInLog { bank: HashAlg },
    #[error("event {event} ({event_type}, PCR {pcr}) has no {bank} digest although the Spec ID event declares {bank}")]
    MissingDigest {
        event: usize,
        pcr: u32,
        event_type: String,
        bank: HashAlg,
    },
    #[error("event {event}: StartupLocality (once) and H-CRTM events must come before every PCR 0 measurement")]
    MisplacedStartupLocality { event: usize },
    #[error(
        "event {event}: the StartupLocality event is {len} bytes, too short to hold the locality"
    )]
    ShortStartupLocality { event: usize, len: usize },
    #[error("PCR {bank}:{pcr} was quoted as {quoted} but the event log replays to {replayed}")]
    PcrMismatch {
        bank: HashAlg,
        pcr: u8,
        quoted: String,
        replayed: String,
    },
    #[error("event {event} ({event_type}, PCR {pcr}): its data does not hash to its {bank} digest, so its {claim} cannot be believed")]
    EventDataMismatch {
        event: usize,
        pcr: u32,
        event_type: String,
        bank: HashAlg,
        claim: &'static str,
    },
    #[error("event {event} ({event_type}, PCR {pcr}): malformed {structure}: {source}")]
    MalformedEventData {
        event: usize,
        pcr: u32,
        event_type: String,
        structure: &'static str,
        #[source]
        source: ParseError,
    },
}
