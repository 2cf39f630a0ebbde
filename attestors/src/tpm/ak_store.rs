//! The attestation key's persistence: its public area and its TPM-wrapped private
//! blob live in the state directory, so every restart reloads the same AK (same
//! name) under the EK instead of minting a new identity.
//!
//! The private blob is encrypted by the TPM under the EK's seed and useless on any
//! other TPM, but it is still key material: the file is written 0600, atomically,
//! and never replaced once it exists.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tracing::info;
use tss_esapi::structures::{Private, Public};
use tss_esapi::traits::Marshall;

use super::error::TpmError;
use super::session::{private_from_bytes, unmarshall_public, TpmSession};
use super::types::{AkAlgorithm, AkInfo, EkAlgorithm};

const MAGIC: &[u8; 11] = b"attestd-ak\x01";
/// A TPM2B_PUBLIC and a TPM2B_PRIVATE together stay far below this.
const MAX_FILE_BYTES: u64 = 8 * 1024;
/// TPM_ALG_SHA256: every AK we create uses it as its name algorithm.
const NAME_ALG_SHA256: [u8; 2] = [0x00, 0x0b];

/// An AK as stored: the TPM objects needed to load it, and what verifiers see.
#[derive(Clone)]
pub(crate) struct StoredAk {
    pub algorithm: AkAlgorithm,
    pub public: Public,
    pub private: Private,
    public_bytes: Vec<u8>,
    name: Vec<u8>,
}

impl StoredAk {
    pub(crate) fn new(
        algorithm: AkAlgorithm,
        public: Public,
        private: Private,
    ) -> Result<Self, TpmError> {
        let public_bytes = public
            .marshall()
            .map_err(TpmError::esapi("marshalling the AK public area"))?;
        let mut name = NAME_ALG_SHA256.to_vec();
        name.extend_from_slice(ring::digest::digest(&ring::digest::SHA256, &public_bytes).as_ref());
        Ok(StoredAk {
            algorithm,
            public,
            private,
            public_bytes,
            name,
        })
    }

    pub(crate) fn info(&self) -> AkInfo {
        AkInfo {
            algorithm: self.algorithm,
            public: self.public_bytes.clone(),
            name: self.name.clone(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let private = self.private.value();
        let mut out = Vec::with_capacity(MAGIC.len() + 4 + self.public_bytes.len() + private.len());
        out.extend_from_slice(MAGIC);
        for part in [self.public_bytes.as_slice(), private] {
            // Both parts are TPM2B-sized, so they always fit a u16 length.
            out.extend_from_slice(&(part.len() as u16).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    fn decode(bytes: &[u8], algorithm: AkAlgorithm) -> Result<Self, String> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or("not an attestd AK file (bad magic)")?;
        let (public_bytes, rest) = take_u16_prefixed(rest).ok_or("public area is truncated")?;
        let (private_bytes, rest) = take_u16_prefixed(rest).ok_or("private blob is truncated")?;
        if !rest.is_empty() {
            return Err(format!("{} unexpected trailing bytes", rest.len()));
        }
        let public = unmarshall_public(public_bytes)
            .map_err(|e| format!("public area does not parse: {e}"))?;
        let private = private_from_bytes(private_bytes)
            .map_err(|e| format!("private blob does not parse: {e}"))?;
        StoredAk::new(algorithm, public, private).map_err(|e| e.to_string())
    }
}

fn take_u16_prefixed(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// Where the AK for this (AK type, EK type) pair lives. Pairs are kept apart so that
/// switching the configured algorithms never overwrites an existing identity.
pub(crate) fn ak_path(state_dir: &Path, algorithm: AkAlgorithm, ek: EkAlgorithm) -> PathBuf {
    state_dir.join(format!("ak-{algorithm}-ek-{ek}.bin"))
}

/// Loads the AK from `state_dir`, or creates and stores one; proves it loads on this TPM.
pub(crate) fn load_or_create(
    session: &mut TpmSession,
    state_dir: &Path,
    algorithm: AkAlgorithm,
) -> Result<StoredAk, TpmError> {
    let ek_algorithm = session.ek_algorithm();
    let path = ak_path(state_dir, algorithm, ek_algorithm);
    let stored = match read_ak_file(&path)? {
        Some(bytes) => {
            let ak =
                StoredAk::decode(&bytes, algorithm).map_err(|reason| TpmError::CorruptAkState {
                    path: path.clone(),
                    reason: format!("{reason}; move the file away to create a new AK"),
                })?;
            info!(path = %path.display(), name = %hex::encode(&ak.name), "reloaded AK");
            ak
        }
        None => {
            ensure_state_dir(state_dir)?;
            let ak = session.create_ak(algorithm)?;
            match write_new_file(&path, &ak.encode())? {
                true => {
                    info!(path = %path.display(), name = %hex::encode(&ak.name), "created AK");
                    ak
                }
                // Another process stored an AK first: use that one, so both agree.
                false => return load_or_create(session, state_dir, algorithm),
            }
        }
    };
    session.set_ak(stored.clone());
    session
        .prove_ak_loads()
        .map_err(|error| match error.response_code() {
            Some(code) if code & 0xbf == 0x9f || code & 0xbf == 0x98 => TpmError::CorruptAkState {
                path: path.clone(),
                reason: format!(
                    "this TPM refuses the stored AK ({error}); it was made by another TPM \
                 or the TPM was cleared. Move the file away to create a new AK"
                ),
            },
            _ => error,
        })?;
    Ok(stored)
}

fn read_ak_file(path: &Path) -> Result<Option<Vec<u8>>, TpmError> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(TpmError::State {
                action: "opening",
                path: path.to_owned(),
                source,
            })
        }
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| TpmError::State {
            action: "reading",
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(TpmError::CorruptAkState {
            path: path.to_owned(),
            reason: format!("larger than {MAX_FILE_BYTES} bytes"),
        });
    }
    Ok(Some(bytes))
}

fn ensure_state_dir(dir: &Path) -> Result<(), TpmError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| TpmError::State {
            action: "creating state directory",
            path: dir.to_owned(),
            source,
        })
}

/// Writes `bytes` to `path` with mode 0600, atomically, only if `path` does not exist.
/// Returns false when another writer got there first.
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<bool, TpmError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let state_error = |action: &'static str, p: &Path| {
        let p = p.to_owned();
        move |source| TpmError::State {
            action,
            path: p,
            source,
        }
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(state_error("creating", &temp))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(state_error("writing", &temp));
    drop(file);
    // A hard link never replaces an existing file: first writer wins.
    let linked = written.and_then(|()| match fs::hard_link(&temp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(TpmError::State {
            action: "storing",
            path: path.to_owned(),
            source,
        }),
    });
    let _ = fs::remove_file(&temp);
    if let Ok(true) = linked {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(state_error("syncing", dir))?;
    }
    linked
}

#[cfg(test)]
#[path = "ak_store_test.rs"]
mod tests;
