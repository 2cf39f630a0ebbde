//! TPMS_ATTEST, the structure a TPM signs for quotes and other attestations.
//! Only the quote body is decoded; other kinds keep their body opaque.

use super::constants::st;
use super::pcr::read_pcr_selection_list;
use super::reader::Reader;
use super::{HashAlg, ParseError, PcrSelection};

/// Bounds the whole structure; a quote over four full banks is under 300 bytes.
pub(crate) const MAX_ATTEST_LEN: usize = 4096;
/// TPM2B_NAME holds a TPMU_NAME: a handle (4) or a hash alg and digest (2 + 64).
const MAX_NAME_LEN: usize = 2 + HashAlg::MAX_DIGEST_LEN;
/// TPM2B_DATA holds up to sizeof(TPMT_HA).
const MAX_EXTRA_DATA_LEN: usize = 2 + HashAlg::MAX_DIGEST_LEN;

/// TPMS_CLOCK_INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockInfo {
    pub clock: u64,
    pub reset_count: u32,
    pub restart_count: u32,
    pub safe: bool,
}

/// TPMS_QUOTE_INFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteInfo {
    pub pcr_select: Vec<PcrSelection>,
    pub pcr_digest: Vec<u8>,
}

/// A parsed TPMS_ATTEST. Parsing does not judge it: magic and type are
/// checked by the verifier that knows what it expects.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attest {
    pub magic: u32,
    /// TPM_ST_ATTEST_* tag (`type` in the spec).
    pub attest_type: u16,
    pub qualified_signer: Vec<u8>,
    pub extra_data: Vec<u8>,
    pub clock_info: ClockInfo,
    pub firmware_version: u64,
    /// Present exactly when `attest_type` is TPM_ST_ATTEST_QUOTE.
    pub quote: Option<QuoteInfo>,
    /// The undecoded TPMU_ATTEST of non-quote attestations; empty for quotes.
    pub other_attested: Vec<u8>,
}

impl Attest {
    /// Parses a marshalled TPMS_ATTEST (the `-m` output of `tpm2_quote`).
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        if bytes.len() > MAX_ATTEST_LEN {
            return Err(ParseError::TooLarge {
                field: "TPMS_ATTEST",
                size: bytes.len(),
                max: MAX_ATTEST_LEN,
            });
        }
        let mut reader = Reader::new(bytes);
        let magic = reader.u32("TPMS_ATTEST.magic")?;
        let attest_type = reader.u16("TPMS_ATTEST.type")?;
        let qualified_signer = reader
            .tpm2b(MAX_NAME_LEN, "TPMS_ATTEST.qualifiedSigner")?
            .to_vec();
        let extra_data = reader
            .tpm2b(MAX_EXTRA_DATA_LEN, "TPMS_ATTEST.extraData")?
            .to_vec();
        let clock_info = read_clock_info(&mut reader)?;
        let firmware_version = reader.u64("TPMS_ATTEST.firmwareVersion")?;
        let (quote, other_attested) = if attest_type == st::ATTEST_QUOTE {
            let pcr_select = read_pcr_selection_list(&mut reader)?;
            let pcr_digest = reader
                .tpm2b(HashAlg::MAX_DIGEST_LEN, "TPMS_QUOTE_INFO.pcrDigest")?
                .to_vec();
            reader.finish("TPMS_ATTEST")?;
            (
                Some(QuoteInfo {
                    pcr_select,
                    pcr_digest,
                }),
                Vec::new(),
            )
        } else {
            (None, reader.rest().to_vec())
        };
        Ok(Self {
            magic,
            attest_type,
            qualified_signer,
            extra_data,
            clock_info,
            firmware_version,
            quote,
            other_attested,
        })
    }
}

fn read_clock_info(reader: &mut Reader<'_>) -> Result<ClockInfo, ParseError> {
    let clock = reader.u64("TPMS_CLOCK_INFO.clock")?;
    let reset_count = reader.u32("TPMS_CLOCK_INFO.resetCount")?;
    let restart_count = reader.u32("TPMS_CLOCK_INFO.restartCount")?;
    // TPMI_YES_NO admits only 0 and 1.
    let safe = match reader.u8("TPMS_CLOCK_INFO.safe")? {
        0 => false,
        1 => true,
        other => {
            return Err(ParseError::InvalidValue {
                field: "TPMS_CLOCK_INFO.safe",
                value: other.into(),
            })
        }
    };
    Ok(ClockInfo {
        clock,
        reset_count,
        restart_count,
        safe,
    })
}

#[cfg(test)]
#[path = "attest_test.rs"]
mod tests;
