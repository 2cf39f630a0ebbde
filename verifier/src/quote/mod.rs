//! Quote verification: proves that a TPM holding the AK reported these PCR
//! values for this nonce. Signature first, then structure, nonce and PCRs.

mod signature;

use crate::tpm2::constants::{st, TPM_GENERATED_VALUE};
use crate::tpm2::{
    Attest, HashAlg, ParseError, PcrSelection, PcrValues, TpmPublic, TpmSignature, MAX_ATTEST_LEN,
};

use signature::verify_signature;

/// Largest qualifying data a verifier may ask for (a SHA-512-sized nonce).
pub const MAX_QUALIFYING_DATA_LEN: usize = 64;

/// Why a quote was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    #[error("the AK is not a restricted signing key, so its quotes prove nothing")]
    AkNotRestrictedSigningKey,
    #[error("expected qualifying data is {len} bytes; at most {max} are allowed")]
    QualifyingDataTooLong { len: usize, max: usize },
    #[error("malformed quote evidence: {0}")]
    Malformed(#[from] ParseError),
    #[error("{signature} cannot be checked with {key}")]
    UnsupportedScheme { key: String, signature: String },
    #[error("signature scheme {signature} differs from the AK's declared scheme {key}")]
    SchemeMismatch { key: String, signature: String },
    #[error("the quote signature does not verify with the AK")]
    SignatureInvalid,
    #[error("attestation magic is 0x{0:08x}, not TPM_GENERATED_VALUE")]
    BadMagic(u32),
    #[error("attestation type is 0x{0:04x}, not TPM_ST_ATTEST_QUOTE")]
    NotAQuote(u16),
    #[error("the quote's qualifying data does not match the expected nonce")]
    NonceMismatch,
    #[error("PCR {bank}:{index} is selected by the quote but no value was supplied")]
    MissingPcr { bank: HashAlg, index: u8 },
    #[error("PCR {bank}:{index} value is {actual} bytes, expected {expected}")]
    PcrValueLength {
        bank: HashAlg,
        index: u8,
        expected: usize,
        actual: usize,
    },
    #[error("the supplied PCR values do not hash to the quote's PCR digest")]
    PcrDigestMismatch,
}

/// A quote that passed every check. `pcr_values` holds only the quoted PCRs,
/// so values the attester sent but the TPM did not sign cannot leak through.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedQuote {
    pub attest: Attest,
    pub pcr_selection: Vec<PcrSelection>,
    pub pcr_values: PcrValues,
    /// The signing hash, which is also the PCR digest's hash.
    pub hash: HashAlg,
}

/// Verifies a TPM2_Quote: `attest` is the marshalled TPMS_ATTEST, `signature`
/// the marshalled TPMT_SIGNATURE, `pcrs` the values the attester claims.
pub fn verify_quote(
    ak: &TpmPublic,
    attest: &[u8],
    signature: &[u8],
    expected_qualifying_data: &[u8],
    pcrs: &PcrValues,
) -> Result<VerifiedQuote, QuoteError> {
    // A key that can sign arbitrary data could sign a fake TPMS_ATTEST; only a
    // restricted key refuses data that starts with TPM_GENERATED_VALUE.
    if !(ak.attributes.restricted() && ak.attributes.sign()) {
        return Err(QuoteError::AkNotRestrictedSigningKey);
    }
    if expected_qualifying_data.len() > MAX_QUALIFYING_DATA_LEN {
        return Err(QuoteError::QualifyingDataTooLong {
            len: expected_qualifying_data.len(),
            max: MAX_QUALIFYING_DATA_LEN,
        });
    }
    // Bounded before hashing, so a huge blob costs nothing to refuse.
    if attest.len() > MAX_ATTEST_LEN {
        return Err(QuoteError::Malformed(ParseError::TooLarge {
            field: "TPMS_ATTEST",
            size: attest.len(),
            max: MAX_ATTEST_LEN,
        }));
    }
    let signature = TpmSignature::parse(signature)?;
    // Nothing in `attest` is believed before the signature over it checks out.
    verify_signature(ak, attest, &signature)?;

    let parsed = Attest::parse(attest)?;
    if parsed.magic != TPM_GENERATED_VALUE {
        return Err(QuoteError::BadMagic(parsed.magic));
    }
    let quote = match (&parsed.quote, parsed.attest_type) {
        (Some(quote), st::ATTEST_QUOTE) => quote,
        _ => return Err(QuoteError::NotAQuote(parsed.attest_type)),
    };
    if !crate::constant_time::eq(&parsed.extra_data, expected_qualifying_data) {
        return Err(QuoteError::NonceMismatch);
    }
    let hash = signature.hash();
    let digest = pcr_composite_digest(hash, &quote.pcr_select, pcrs)?;
    if !crate::constant_time::eq(&digest, &quote.pcr_digest) {
        return Err(QuoteError::PcrDigestMismatch);
    }
    let pcr_values = quoted_values(&quote.pcr_select, pcrs);
    let pcr_selection = quote.pcr_select.clone();
    Ok(VerifiedQuote {
        attest: parsed,
        pcr_selection,
        pcr_values,
        hash,
    })
}

/// H_hash(value of each selected PCR, banks in selection order, indices
/// ascending): the pcrDigest a TPM puts in TPMS_QUOTE_INFO.
pub fn pcr_composite_digest(
    hash: HashAlg,
    selection: &[PcrSelection],
    values: &PcrValues,
) -> Result<Vec<u8>, QuoteError> {
    let mut context = ring::digest::Context::new(hash.ring_algorithm());
    for bank in selection {
        for &index in &bank.pcrs {
            let value = values.get(bank.hash, index).ok_or(QuoteError::MissingPcr {
                bank: bank.hash,
                index,
            })?;
            if value.len() != bank.hash.digest_len() {
                return Err(QuoteError::PcrValueLength {
                    bank: bank.hash,
                    index,
                    expected: bank.hash.digest_len(),
                    actual: value.len(),
                });
            }
            context.update(value);
        }
    }
    Ok(context.finish().as_ref().to_vec())
}

fn quoted_values(selection: &[PcrSelection], values: &PcrValues) -> PcrValues {
    selection
        .iter()
        .flat_map(|bank| bank.pcrs.iter().map(move |index| (bank.hash, *index)))
        .filter_map(|(bank, index)| {
            values
                .get(bank, index)
                .map(|value| (bank, index, value.to_vec()))
        })
        .collect()
}
