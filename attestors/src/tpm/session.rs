//! The TPM operations themselves, run on the owner thread against one ESAPI context.
//!
//! Every transient object and session created here is flushed before the operation
//! returns, on success and on error: swtpm has three object slots and no resource
//! manager, so one leak per request would stop the TPM after three requests.
//!
//! What is kept between operations is the EK's and the AK's saved contexts
//! (TPM-encrypted blobs, in memory only): reloading either is one ContextLoad,
//! where re-creating an RSA-2048 EK from its template takes tens of milliseconds.

use std::convert::TryFrom;
use std::time::Instant;

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
    /// The EKs' saved contexts, by algorithm: reloading one is a ContextLoad
    /// instead of a CreatePrimary.
    saved_ek_contexts: Vec<(EkAlgorithm, TpmsContext)>,
    active_banks: Option<Vec<PcrBank>>,
    /// The PCR values of the last quote, with the selection and digest they
    /// were checked against. A quote whose digest matches needs no PCR_Read:
    /// between measurements, PCRs do not change, and a quote is then one
    /// TPM command plus the AK's load and flush.
    last_pcrs: Option<(PcrSelection, Vec<u8>, PcrValues)>,
}

impl TpmSession {
    pub(crate) fn new(tcti: Tcti, ek_algorithm: EkAlgorithm) -> Self {
        TpmSession {
            tcti,
            context: None,
            ek_algorithm,
            ak: None,
            saved_ak_context: None,
            saved_ek_contexts: Vec::new(),
            active_banks: None,
            last_pcrs: None,
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
        self.last_pcrs = None;
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
        let created = self.with_ek(ek_algorithm, |ctx, ek| {
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
    fn with_ak<T>(
        &mut self,
        f: impl FnOnce(&mut Context, KeyHandle) -> Result<T, TpmError>,
    ) -> Result<T, TpmError> {
        let ak_handle = self.load_ak(None)?;
        let ctx = self.context()?;
        let result = f(ctx, ak_handle);
        flush(ctx, ak_handle.into(), "AK");
        result
    }

    /// Loads the AK; the caller flushes it.
    ///
    /// The first load goes through the EK (the EK, a policy session, Load) under
    /// `loaded_ek` if the caller has the EK loaded already, else under an EK
    /// loaded and flushed here. The loaded AK's context is then saved, and later
    /// loads are a single ContextLoad. If the TPM refuses the saved context
    /// (after a TPM reset, say), fall back to the full load.
    fn load_ak(&mut self, loaded_ek: Option<KeyHandle>) -> Result<KeyHandle, TpmError> {
        let stored = self.ak.as_ref().ok_or(TpmError::OwnerGone)?;
        let (public, private) = (stored.public.clone(), stored.private.clone());
        if let Some(saved) = self.saved_ak_context.clone() {
            match self.context()?.context_load(saved) {
                Ok(handle) => return Ok(KeyHandle::from(handle)),
                Err(error) => {
                    let error = TpmError::esapi("reloading the AK")(error);
                    // A dead connection is reported as such, not papered over by a
                    // second attempt on a context ESYS now considers out of sequence.
                    if error.is_connection_failure() {
                        return Err(error);
                    }
                    debug!(%error, "saved AK context refused; loading the AK under the EK");
                    self.saved_ak_context = None;
                }
            }
        }
        let load = |ctx: &mut Context, ek: KeyHandle| {
            ak::load_ak(ctx, ek, None, private, public).map_err(TpmError::esapi("loading the AK"))
        };
        let handle = match loaded_ek {
            Some(ek) => load(self.context()?, ek)?,
            None => {
                let ek_algorithm = self.ek_algorithm;
                self.with_ek(ek_algorithm, load)?
            }
        };
        self.saved_ak_context = self.context()?.context_save(handle.into()).ok();
        Ok(handle)
    }

    /// Loads the EK, runs `f` with it, and flushes it.
    fn with_ek<T>(
        &mut self,
        algorithm: EkAlgorithm,
        f: impl FnOnce(&mut Context, KeyHandle) -> Result<T, TpmError>,
    ) -> Result<T, TpmError> {
        let ek_handle = self.load_ek(algorithm)?;
        let ctx = self.context()?;
        let result = f(ctx, ek_handle);
        flush(ctx, ek_handle.into(), "EK");
        result
    }

    /// Loads the EK; the caller flushes it.
    ///
    /// The first time, the EK is created from its TCG template (CreatePrimary:
    /// 20-50 ms for RSA-2048 on swtpm) and its context saved; later loads are
    /// a single ContextLoad of the same key. The TPM refuses that context once the
    /// endorsement hierarchy changed (its proof keys the context's integrity) or
    /// after a TPM reset; then the EK is created again.
    fn load_ek(&mut self, algorithm: EkAlgorithm) -> Result<KeyHandle, TpmError> {
        let saved = self
            .saved_ek_contexts
            .iter()
            .find(|(known, _)| *known == algorithm)
            .map(|(_, saved)| saved.clone());
        if let Some(saved) = saved {
            match self.context()?.context_load(saved) {
                Ok(handle) => return Ok(KeyHandle::from(handle)),
                Err(error) => {
                    let error = TpmError::esapi("reloading the EK")(error);
                    if error.is_connection_failure() {
                        return Err(error);
                    }
                    debug!(%error, ek = %algorithm, "saved EK context refused; creating the EK");
                    self.forget_ek(algorithm);
                }
            }
        }
        let started = Instant::now();
        let ctx = self.context()?;
        let handle = ek::create_ek_object_2(ctx, ek_selection(algorithm), None)
            .map_err(TpmError::esapi("creating the EK"))?;
        debug!(
            ek = %algorithm,
            took_ms = started.elapsed().as_millis() as u64,
            "created the EK from its template"
        );
        if let Ok(saved) = ctx.context_save(handle.into()) {
            self.forget_ek(algorithm);
            self.saved_ek_contexts.push((algorithm, saved));
        }
        Ok(handle)
    }

    fn forget_ek(&mut self, algorithm: EkAlgorithm) {
        self.saved_ek_contexts
            .retain(|(known, _)| *known != algorithm);
    }

    /// Reads the EK's public area and its certificate and chain from NV.
    pub(crate) fn ek_info(&mut self, algorithm: EkAlgorithm) -> Result<EkInfo, TpmError> {
        let public = self.with_ek(algorithm, |ctx, ek| {
            let (public, _, _) = ctx
                .read_public(ek)
                .map_err(TpmError::esapi("reading the EK public area"))?;
            public
                .marshall()
                .map_err(TpmError::esapi("marshalling the EK public area"))
        })?;
        let ctx = self.context()?;
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
        let ek_algorithm = self.ek_algorithm;
        // Both keys loaded at once: the AK from its saved context when it can
        // be, else under this same EK, so the EK is loaded only once.
        let ek = self.load_ek(ek_algorithm)?;
        let result = self.load_ak(Some(ek)).and_then(|ak_handle| {
            let ctx = self.context()?;
            let result = with_ek_policy_session(ctx, ek_algorithm, |ctx, policy| {
                ctx.execute_with_sessions(
                    (Some(AuthSession::Password), Some(policy), None),
                    |ctx| ctx.activate_credential(ak_handle, ek, id_object, secret),
                )
                .map_err(TpmError::esapi("activating the credential"))
            });
            flush(ctx, ak_handle.into(), "AK");
            result
        });
        if let Ok(ctx) = self.context() {
            flush(ctx, ek.into(), "EK");
        }
        if result.is_err() {
            // Perhaps the EK changed (TPM2_ChangeEPS): create it afresh next time.
            self.forget_ek(ek_algorithm);
        }
        result.map(|digest| digest.value().to_vec())
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
            let last_pcrs = self.last_pcrs.take();
            let quote = self.with_ak(|ctx, ak_handle| {
                // The AK's auth value is empty: a password session carries it
                // in one command, where an HMAC session costs a
                // StartAuthSession, a flush and ESYS's per-command hashing
                // through OpenSSL (5 ms of CPU per quote, measured).
                let (attest, signature) = ctx
                    .execute_with_session(Some(AuthSession::Password), |ctx| {
                        ctx.quote(ak_handle, data, SignatureScheme::Null, list)
                    })
                    .map_err(TpmError::esapi("quoting"))?;
                let AttestInfo::Quote { info } = attest.attested() else {
                    return Err(TpmError::InvalidRequest(
                        "the TPM returned an attestation that is not a quote".into(),
                    ));
                };
                let quoted = from_selection_list(info.pcr_selection())?;
                let digest = info.pcr_digest().value().to_vec();
                // The last values still hash to this quote's digest: the PCRs
                // have not changed since, and reading them again would only
                // return the same bytes.
                let pcrs = match last_pcrs {
                    Some((selection, known, values)) if selection == quoted && known == digest => {
                        values
                    }
                    _ => read_pcrs(ctx, &quoted)?,
                };
                let digest_matches = composite_digest(&quoted, &pcrs)? == digest;
                Ok((
                    Quote {
                        attest: attest.marshall().map_err(TpmError::esapi("marshalling"))?,
                        signature: signature
                            .marshall()
                            .map_err(TpmError::esapi("marshalling"))?,
                        selection: quoted,
                        pcrs,
                    },
                    digest,
                    digest_matches,
                ))
            })?;
            match quote {
                (quote, digest, true) => {
                    self.last_pcrs = Some((quote.selection.clone(), digest, quote.pcrs.clone()));
                    return Ok(quote);
                }
                (_, _, false) => debug!(
                    attempt,
                    "PCRs changed between quote and read; quoting again"
                ),
            }
        }
        Err(TpmError::PcrsUnstable {
            attempts: QUOTE_ATTEMPTS,
        })
    }

    /// Quotes `count` times with the AK loaded once, and returns how long
    /// each TPM2_Quote took: the TPM's own quote rate, with nothing of
    /// attestd's around it. For benchmarks.
    pub(crate) fn time_quotes(
        &mut self,
        selection: &PcrSelection,
        count: usize,
    ) -> Result<Vec<std::time::Duration>, TpmError> {
        self.check_banks(selection)?;
        let list = selection_list(selection)?;
        self.with_ak(|ctx, ak_handle| {
            let mut times = Vec::with_capacity(count);
            for round in 0..count {
                let data = Data::try_from((round as u64).to_be_bytes().to_vec())
                    .map_err(TpmError::esapi("preparing qualifying data"))?;
                let started = Instant::now();
                ctx.execute_with_session(Some(AuthSession::Password), |ctx| {
                    ctx.quote(ak_handle, data, SignatureScheme::Null, list.clone())
                })
                .map_err(TpmError::esapi("quoting"))?;
                times.push(started.elapsed());
            }
            Ok(times)
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
