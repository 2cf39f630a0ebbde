//! The TPM operations themselves, run on the owner thread against one ESAPI context.
//!
//! Every transient object and session created here is flushed before the operation
//! returns, on success and on error: swtpm has three object slots and no resource
//! manager, so one leak per request would stop the TPM after three requests.

use std::convert::TryFrom;

use tracing::{debug, warn};
use tss_esapi::abstraction::{ak, ek, AsymmetricAlgorithmSelection};
use tss_esapi::constants::{CapabilityType, SessionType};
use tss_esapi::handles::{AuthHandle, KeyHandle, ObjectHandle, SessionHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, SignatureSchemeAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    AttestInfo, CapabilityData, Data, Digest, DigestList, EncryptedSecret, IdObject, Private,
    Public, SignatureScheme, SymmetricDefinition,
};
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::utils::TpmsContext;
use tss_esapi::Context;

use super::ak_store::StoredAk;
use super::error::TpmError;
use super::nv::{
    defined_nv_indices, read_nv, split_der_certificates, EK_CHAIN_FIRST_INDEX, EK_CHAIN_LAST_INDEX,
};
use super::pcr::{composite_digest, from_selection_list, read_pcrs, selection_list};
use super::tcti::Tcti;
use super::types::{AkAlgorithm, EkAlgorithm, EkInfo, PcrBank, PcrSelection, PcrValues, Quote};

/// The most qualifying data a quote can carry (TPM2B_DATA holds one SHA-512 digest).
pub const MAX_QUALIFYING_DATA: usize = 64;

/// A PCR changing between the quote and the read makes us quote again, a few times.
const QUOTE_ATTEMPTS: u32 = 3;

// TCG EK Credential Profile 2.5, B.6: policy digests that the high-range (SHA-384)
// EK templates OR together. PolicyA is PolicySecret(TPM_RH_ENDORSEMENT).
const POLICY_A_SHA384: [u8; 48] = [
    0x8b, 0xbf, 0x22, 0x66, 0x53, 0x7c, 0x17, 0x1c, 0xb5, 0x6e, 0x40, 0x3c, 0x4d, 0xc1, 0xd4, 0xb6,
    0x4f, 0x43, 0x26, 0x11, 0xdc, 0x38, 0x6e, 0x6f, 0x53, 0x20, 0x50, 0xc3, 0x27, 0x8c, 0x93, 0x0e,
    0x14, 0x3e, 0x8b, 0xb1, 0x13, 0x38, 0x24, 0xcc, 0xb4, 0x31, 0x05, 0x38, 0x71, 0xc6, 0xdb, 0x53,
];
const POLICY_C_SHA384: [u8; 48] = [
    0xd6, 0x03, 0x2c, 0xe6, 0x1f, 0x2f, 0xb3, 0xc2, 0x40, 0xeb, 0x3c, 0xf6, 0xa3, 0x32, 0x37, 0xef,
    0x2b, 0x6a, 0x16, 0xf4, 0x29, 0x3c, 0x22, 0xb4, 0x55, 0xe2, 0x61, 0xcf, 0xfd, 0x21, 0x7a, 0xd5,
    0xb4, 0x94, 0x7c, 0x2d, 0x73, 0xe6, 0x30, 0x05, 0xee, 0xd2, 0xdc, 0x2b, 0x35, 0x93, 0xd1, 0x65,
];

/// State owned by the TPM thread: the ESAPI context (opened lazily, dropped after a
/// connection failure so the next request reconnects) and the AK blobs.
pub(crate) struct TpmSession {
    tcti: Tcti,
    context: Option<Context>,
    ek_algorithm: EkAlgorithm,
    ak: Option<StoredAk>,
    /// The loaded AK's saved context: reloading it is one command instead of three.
    saved_ak_context: Option<TpmsContext>,
    active_banks: Option<Vec<PcrBank>>,
}

impl TpmSession {
    pub(crate) fn new(tcti: Tcti, ek_algorithm: EkAlgorithm) -> Self {
        TpmSession {
            tcti,
            context: None,
            ek_algorithm,
            ak: None,
            saved_ak_context: None,
            active_banks: None,
        }
    }

    pub(crate) fn ek_algorithm(&self) -> EkAlgorithm {
        self.ek_algorithm
    }

    /// Drops the context; the next operation opens a new connection.
    pub(crate) fn reset(&mut self) {
        if self.context.take().is_some() {
            warn!(tcti = %self.tcti, "dropping TPM connection after a connection failure");
        }
        self.active_banks = None;
    }

    pub(crate) fn context(&mut self) -> Result<&mut Context, TpmError> {
        if self.context.is_none() {
            let conf = self.tcti.to_name_conf()?;
            let context = Context::new(conf).map_err(TpmError::esapi("connecting to the TPM"))?;
            debug!(tcti = %self.tcti, "connected to the TPM");
            self.context = Some(context);
        }
        self.context.as_mut().ok_or(TpmError::OwnerGone)
    }

    pub(crate) fn set_ak(&mut self, ak: StoredAk) {
        self.ak = Some(ak);
        self.saved_ak_context = None;
    }

    /// Creates a fresh AK under the EK and returns its blobs; nothing stays loaded.
    pub(crate) fn create_ak(&mut self, algorithm: AkAlgorithm) -> Result<StoredAk, TpmError> {
        let ek_algorithm = self.ek_algorithm;
        let ctx = self.context()?;
        let (key, sign) = match algorithm {
            AkAlgorithm::EccP256 => (
                AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
                SignatureSchemeAlgorithm::EcDsa,
            ),
            AkAlgorithm::Rsa2048 => (
                AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
                SignatureSchemeAlgorithm::RsaSsa,
            ),
            AkAlgorithm::Rsa2048Pss => (
                AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
                SignatureSchemeAlgorithm::RsaPss,
            ),
        };
        let created = with_ek(ctx, ek_algorithm, |ctx, ek| {
            ak::create_ak_2(ctx, ek, HashingAlgorithm::Sha256, key, sign, None, None)
                .map_err(TpmError::esapi("creating the AK"))
        })?;
        StoredAk::new(algorithm, created.out_public, created.out_private)
    }

    /// Loads and flushes the AK once: proves the stored blob belongs to this TPM.
    pub(crate) fn prove_ak_loads(&mut self) -> Result<(), TpmError> {
        self.with_ak(|_, _| Ok(()))
    }

    /// Loads the AK, runs `f` with it, and flushes it.
    ///
    /// The first load goes through the EK (CreatePrimary, a policy session, Load:
    /// about 25 ms with an RSA EK on swtpm). The loaded AK's context is then saved,
    /// and later loads are a single ContextLoad. If the TPM refuses the saved
    /// context (after a TPM reset, say), fall back to the full load.
    fn with_ak<T>(
        &mut self,
        f: impl FnOnce(&mut Context, KeyHandle) -> Result<T, TpmError>,
    ) -> Result<T, TpmError> {
        let stored = self.ak.as_ref().ok_or(TpmError::OwnerGone)?;
        let (public, private) = (stored.public.clone(), stored.private.clone());
        let saved = self.saved_ak_context.clone();
        let ek_algorithm = self.ek_algorithm;
        let ctx = self.context()?;
        let from_saved = match saved.map(|saved| ctx.context_load(saved)) {
            Some(Ok(handle)) => Some(KeyHandle::from(handle)),
            Some(Err(error)) => {
                let error = TpmError::esapi("reloading the AK")(error);
                // A dead connection is reported as such, not papered over by a
                // second attempt on a context ESYS now considers out of sequence.
                if error.is_connection_failure() {
                    return Err(error);
                }
                debug!(%error, "saved AK context refused; loading the AK under the EK");
                None
            }
            None => None,
        };
        let (ak_handle, fresh_context) = match from_saved {
            Some(handle) => (handle, None),
            None => {
                let handle = with_ek(ctx, ek_algorithm, |ctx, ek| {
                    ak::load_ak(ctx, ek, None, private, public)
                        .map_err(TpmError::esapi("loading the AK"))
                })?;
                (handle, ctx.context_save(handle.into()).ok())
            }
        };
        let result = f(ctx, ak_handle);
        flush(ctx, ak_handle.into(), "AK");
        if fresh_context.is_some() {
            self.saved_ak_context = fresh_context;
        }
        result
    }

    /// Reads the EK's public area and its certificate and chain from NV.
    pub(crate) fn ek_info(&mut self, algorithm: EkAlgorithm) -> Result<EkInfo, TpmError> {
        let ctx = self.context()?;
        let public = with_ek(ctx, algorithm, |ctx, ek| {
            let (public, _, _) = ctx
                .read_public(ek)
                .map_err(TpmError::esapi("reading the EK public area"))?;
            public
                .marshall()
                .map_err(TpmError::esapi("marshalling the EK public area"))
        })?;
        let defined = defined_nv_indices(ctx)?;
        let cert_index = algorithm.certificate_nv_index();
        let certificate = if defined.contains(&cert_index) {
            let raw = read_nv(ctx, cert_index)?;
            let mut certs = split_der_certificates(&raw).map_err(|reason| {
                TpmError::MalformedEkCertificate {
                    index: cert_index,
                    reason,
                }
            })?;
            if certs.is_empty() {
                None
            } else {
                Some(certs.swap_remove(0))
            }
        } else {
            None
        };
        let mut chain = Vec::new();
        for index in defined
            .iter()
            .copied()
            .filter(|i| (EK_CHAIN_FIRST_INDEX..=EK_CHAIN_LAST_INDEX).contains(i))
        {
            let raw = read_nv(ctx, index)?;
            let certs = split_der_certificates(&raw)
                .map_err(|reason| TpmError::MalformedEkCertificate { index, reason })?;
            chain.extend(certs);
        }
        Ok(EkInfo {
            algorithm,
            public,
            certificate,
            chain,
        })
    }

    /// TPM2_ActivateCredential with the AK and the EK: returns the issuer's secret.
    pub(crate) fn activate_credential(
        &mut self,
        credential_blob: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Vec<u8>, TpmError> {
        let id_object = IdObject::try_from(credential_blob.to_vec()).map_err(|_| {
            TpmError::InvalidRequest(format!(
                "credential blob of {} bytes does not fit a TPM2B_ID_OBJECT",
                credential_blob.len()
            ))
        })?;
        let secret = EncryptedSecret::try_from(encrypted_secret.to_vec()).map_err(|_| {
            TpmError::InvalidRequest(format!(
                "encrypted secret of {} bytes does not fit a TPM2B_ENCRYPTED_SECRET",
                encrypted_secret.len()
            ))
        })?;
        let stored = self.ak.as_ref().ok_or(TpmError::OwnerGone)?;
        let (public, private) = (stored.public.clone(), stored.private.clone());
        let ek_algorithm = self.ek_algorithm;
        let ctx = self.context()?;
        with_ek(ctx, ek_algorithm, |ctx, ek| {
            let ak_handle = ak::load_ak(ctx, ek, None, private, public)
                .map_err(TpmError::esapi("loading the AK"))?;
            let result = with_ek_policy_session(ctx, ek_algorithm, |ctx, policy| {
                ctx.execute_with_sessions(
                    (Some(AuthSession::Password), Some(policy), None),
                    |ctx| ctx.activate_credential(ak_handle, ek, id_object, secret),
                )
                .map_err(TpmError::esapi("activating the credential"))
            });
            flush(ctx, ak_handle.into(), "AK");
            result.map(|digest| digest.value().to_vec())
        })
    }

    /// Quotes `selection` with the AK over `qualifying_data`, and reads the quoted PCRs.
    pub(crate) fn quote(
        &mut self,
        qualifying_data: &[u8],
        selection: &PcrSelection,
    ) -> Result<Quote, TpmError> {
        if qualifying_data.len() > MAX_QUALIFYING_DATA {
            return Err(TpmError::InvalidRequest(format!(
                "qualifying data is {} bytes; a quote carries at most {MAX_QUALIFYING_DATA}",
                qualifying_data.len()
            )));
        }
        self.check_banks(selection)?;
        let data = Data::try_from(qualifying_data.to_vec())
            .map_err(TpmError::esapi("preparing qualifying data"))?;
        for attempt in 1..=QUOTE_ATTEMPTS {
            let list = selection_list(selection)?;
            let data = data.clone();
            let quote = self.with_ak(|ctx, ak_handle| {
                let (attest, signature) = ctx
                    .execute_with_nullauth_session(|ctx| {
                        ctx.quote(ak_handle, data, SignatureScheme::Null, list)
                    })
                    .map_err(TpmError::esapi("quoting"))?;
                let AttestInfo::Quote { info } = attest.attested() else {
                    return Err(TpmError::InvalidRequest(
                        "the TPM returned an attestation that is not a quote".into(),
                    ));
                };
                let quoted = from_selection_list(info.pcr_selection())?;
                let pcrs = read_pcrs(ctx, &quoted)?;
                let digest_matches = composite_digest(&quoted, &pcrs)? == info.pcr_digest().value();
                Ok((
                    Quote {
                        attest: attest.marshall().map_err(TpmError::esapi("marshalling"))?,
                        signature: signature
                            .marshall()
                            .map_err(TpmError::esapi("marshalling"))?,
                        selection: quoted,
                        pcrs,
                    },
                    digest_matches,
                ))
            })?;
            match quote {
                (quote, true) => return Ok(quote),
                (_, false) => debug!(
                    attempt,
                    "PCRs changed between quote and read; quoting again"
                ),
            }
        }
        Err(TpmError::PcrsUnstable {
            attempts: QUOTE_ATTEMPTS,
        })
    }

    pub(crate) fn read_pcrs(&mut self, selection: &PcrSelection) -> Result<PcrValues, TpmError> {
        self.check_banks(selection)?;
        read_pcrs(self.context()?, selection)
    }

    /// The PCR banks the TPM has allocated, cached per connection.
    pub(crate) fn active_banks(&mut self) -> Result<Vec<PcrBank>, TpmError> {
        if let Some(banks) = &self.active_banks {
            return Ok(banks.clone());
        }
        let ctx = self.context()?;
        let (data, _) = ctx
            .get_capability(CapabilityType::AssignedPcr, 0, 1)
            .map_err(TpmError::esapi("reading the active PCR banks"))?;
        let CapabilityData::AssignedPcr(list) = data else {
            return Err(TpmError::InvalidRequest(
                "the TPM answered the PCR capability query with other data".into(),
            ));
        };
        let banks: Vec<PcrBank> = list
            .get_selections()
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| PcrBank::from_hashing_algorithm(s.hashing_algorithm()))
            .collect();
        self.active_banks = Some(banks.clone());
        Ok(banks)
    }

    fn check_banks(&mut self, selection: &PcrSelection) -> Result<(), TpmError> {
        let active = self.active_banks()?;
        for (bank, _) in selection.banks() {
            if !active.contains(bank) {
                return Err(TpmError::BankNotActive {
                    bank: bank.to_string(),
                    active: active
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(())
    }
}

fn ek_selection(algorithm: EkAlgorithm) -> AsymmetricAlgorithmSelection {
    match algorithm {
        EkAlgorithm::Rsa2048 => AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
        EkAlgorithm::EccP256 => AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
        EkAlgorithm::EccP384 => AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP384),
    }
}

/// Creates the EK from its TCG template, runs `f`, and flushes the EK whatever happens.
fn with_ek<T>(
    ctx: &mut Context,
    algorithm: EkAlgorithm,
    f: impl FnOnce(&mut Context, KeyHandle) -> Result<T, TpmError>,
) -> Result<T, TpmError> {
    let ek_handle = ek::create_ek_object_2(ctx, ek_selection(algorithm), None)
        .map_err(TpmError::esapi("creating the EK"))?;
    let result = f(ctx, ek_handle);
    flush(ctx, ek_handle.into(), "EK");
    result
}

/// A policy session satisfying the EK's authPolicy, flushed after `f`.
fn with_ek_policy_session<T>(
    ctx: &mut Context,
    algorithm: EkAlgorithm,
    f: impl FnOnce(&mut Context, AuthSession) -> Result<T, TpmError>,
) -> Result<T, TpmError> {
    let (hash, symmetric) = match algorithm {
        EkAlgorithm::Rsa2048 | EkAlgorithm::EccP256 => {
            (HashingAlgorithm::Sha256, SymmetricDefinition::AES_128_CFB)
        }
        EkAlgorithm::EccP384 => (HashingAlgorithm::Sha384, SymmetricDefinition::AES_256_CFB),
    };
    let session = ctx
        .start_auth_session(None, None, None, SessionType::Policy, symmetric, hash)
        .map_err(TpmError::esapi("starting the EK policy session"))?
        .ok_or_else(|| TpmError::InvalidRequest("the TPM returned no policy session".into()))?;
    let result = satisfy_ek_policy(ctx, algorithm, session).and_then(|()| f(ctx, session));
    flush(
        ctx,
        SessionHandle::from(session).into(),
        "EK policy session",
    );
    result
}

fn satisfy_ek_policy(
    ctx: &mut Context,
    algorithm: EkAlgorithm,
    session: AuthSession,
) -> Result<(), TpmError> {
    let policy =
        PolicySession::try_from(session).map_err(TpmError::esapi("using the EK policy session"))?;
    ctx.execute_with_nullauth_session(|ctx| {
        ctx.policy_secret(
            policy,
            AuthHandle::Endorsement,
            Default::default(),
            Default::default(),
            Default::default(),
            None,
        )
    })
    .map_err(TpmError::esapi("PolicySecret(endorsement) for the EK"))?;
    if algorithm == EkAlgorithm::EccP384 {
        let mut digests = DigestList::new();
        for digest in [&POLICY_A_SHA384[..], &POLICY_C_SHA384[..]] {
            digests
                .add(Digest::try_from(digest).map_err(TpmError::esapi("building PolicyOR"))?)
                .map_err(TpmError::esapi("building PolicyOR"))?;
        }
        ctx.policy_or(policy, digests)
            .map_err(TpmError::esapi("PolicyOR for the high-range EK"))?;
    }
    Ok(())
}

fn flush(ctx: &mut Context, handle: ObjectHandle, what: &'static str) {
    if let Err(error) = ctx.flush_context(handle) {
        warn!(%error, object = what, "could not flush a transient TPM object");
    }
}

/// Unmarshals a stored public area (used when reloading the AK from the state dir).
pub(crate) fn unmarshall_public(bytes: &[u8]) -> Result<Public, tss_esapi::Error> {
    Public::unmarshall(bytes)
}

pub(crate) fn private_from_bytes(bytes: &[u8]) -> Result<Private, tss_esapi::Error> {
    Private::try_from(bytes.to_vec())
}
