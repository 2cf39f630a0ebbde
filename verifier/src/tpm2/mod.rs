//! Parsers for the TPM 2.0 wire structures a verifier receives (TPMT_PUBLIC,
//! TPMS_ATTEST, TPMT_SIGNATURE, PCR selections), treating every byte as hostile.

mod attest;
pub mod constants;
mod error;
mod hash;
mod pcr;
mod public;
mod reader;
mod signature;

pub use attest::{Attest, ClockInfo, QuoteInfo};
pub use error::ParseError;
pub use hash::HashAlg;
pub use pcr::{parse_pcr_selection_list, PcrSelection, PcrValues};
pub use public::{
    AsymScheme, EccCurve, EccParams, KdfScheme, ObjectAttributes, ObjectType, PublicKey,
    PublicParameters, RsaParams, SymmetricDef, TpmPublic,
};
pub use signature::TpmSignature;

pub(crate) use attest::MAX_ATTEST_LEN;
pub(crate) use public::uncompressed_point;
