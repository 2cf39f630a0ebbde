//! attestd-verifier: pure verification of TPM attestation evidence (quotes,
//! AK attributes, EK certificate chains, TCG boot event logs and IMA logs),
//! of attestd's COSE/EAT workload evidence, and software MakeCredential.
//! Bytes in, verdict out: no I/O, no TSS libraries, no panics on input.

pub mod ak;
pub mod constant_time;
pub mod credential;
mod der;
pub mod ek_cert;
pub mod eventlog;
pub mod evidence;
pub mod ima;
pub mod merkle;
pub mod quote;
pub mod tpm2;

pub use ak::{check_ak_attributes, AkError};
pub use credential::{make_credential, CredentialError, MadeCredential};
pub use ek_cert::{parse_pem_bundle, verify_ek_certificate, EkCertError, EkCertificate};
pub use eventlog::{
    parse_event_log, verify_event_log, BootApplication, BootClaims, Event, EventLog, EventLogError,
};
pub use ima::{parse_ima_log, verify_ima_log, ImaClaims, ImaEntry, ImaError, ImaFile, ImaLog};
pub use quote::{pcr_composite_digest, verify_quote, QuoteError, VerifiedQuote};
pub use tpm2::{
    Attest, HashAlg, ObjectAttributes, ParseError, PcrSelection, PcrValues, PublicKey, TpmPublic,
    TpmSignature,
};
