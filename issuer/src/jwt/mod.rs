//! The JWT-SVID authority: a set of ES256 keys on disk (store), the schedule
//! that says which one signs and which are published (schedule), and the
//! live set the issuer signs with and serves as JWK Sets, re-read on its own
//! timer and on SIGHUP. docs/oidc.md has the design.

mod key;
mod schedule;
mod store;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use jsonwebtoken::jwk::JwkSet;
use tokio::sync::watch;
use tracing::info;

pub use key::{Claims, JwkFlavour, JwtKey, JWT_SVID_USE};
pub use schedule::{signer, KeyState, Schedule, MAX_CACHE_SECS, MAX_POLL_SECS};
pub use store::{parse_key_name, KeyFiles, StoredKey, MAX_KEY_FILES};

use crate::ca::CaError;
use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error(transparent)]
    File(#[from] CaError),
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("generating a JWT signing key: {0}")]
    Generate(String),
    #[error("signing a JWT-SVID: {0}")]
    Sign(String),
    #[error("no JWT signing key is active at {now} (Unix seconds): the key files hold only keys that activate later")]
    NoActiveKey { now: i64 },
    #[error("every activation time from {0} on is taken by another key; try again")]
    NoFreeActivation(i64),
    #[error("rendering the JWK Set: {0}")]
    Render(String),
}

/// The keys in the JWK Sets now, in both forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKeys {
    /// Key ids, by activation time.
    pub kids: Vec<String>,
    /// For SPIFFE (the Bundles API): `use: "jwt-svid"`.
    pub spiffe_jwks: Vec<u8>,
    /// For OIDC clients: `use: "sig"`, `alg: "ES256"`.
    pub oidc_jwks: Vec<u8>,
    /// Hex SHA-256 of `oidc_jwks`, for its ETag.
    pub oidc_jwks_digest: String,
}

/// What a refresh found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    /// Whether the published keys changed.
    pub changed: bool,
    pub published: Vec<String>,
    pub signing: String,
    /// A key automatic rotation made.
    pub made: Option<MadeKey>,
}

/// A key the issuer made by automatic rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadeKey {
    pub kid: String,
    pub activation: i64,
}

/// A key and where it stands, for `attestd-issuer jwt list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    pub activation: i64,
    pub kid: String,
    pub path: PathBuf,
    pub state: KeyState,
}

/// A key `rotate` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub kid: String,
    pub activation: i64,
    pub path: PathBuf,
}

/// The live key set.
pub struct JwtKeys {
    files: KeyFiles,
    schedule: Schedule,
    keys: RwLock<Arc<Vec<StoredKey>>>,
    published: watch::Sender<Arc<PublishedKeys>>,
    /// One refresh at a time, so an older one cannot overwrite a newer one.
    refreshing: Mutex<()>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("files", &self.files)
            .field("published", &self.published.borrow().kids)
            .finish_non_exhaustive()
    }
}

pub fn key_files(config: &Config) -> KeyFiles {
    KeyFiles {
        first: config.jwt_key_path(),
        dir: config.jwt_keys_dir(),
    }
}

impl JwtKeys {
    /// Loads the keys; makes the first one if none is active at `now`, and
    /// the next one if automatic rotation is due.
    pub fn open(config: &Config, now: i64) -> Result<JwtKeys, JwtError> {
        let files = key_files(config);
        let schedule = Schedule::from_config(&config.jwt);
        let mut keys = files.load()?;
        if signer(&activations(&keys), now).is_none() {
            if files.create_first()? {
                info!(key = %files.first.display(), "generated the first JWT signing key");
            }
            keys = files.load()?;
        }
        let (keys, _) = rotate_if_due(&files, &schedule, keys, now)?;
        let published = publish(&schedule, &keys, now)?;
        Ok(JwtKeys {
            files,
            schedule,
            keys: RwLock::new(Arc::new(keys)),
            published: watch::channel(Arc::new(published)).0,
            refreshing: Mutex::new(()),
        })
    }

    /// Re-reads the key files, makes the next key if automatic rotation is
    /// due, and re-computes the published keys for `now`. On error the keys
    /// in force stay.
    pub fn refresh(&self, now: i64) -> Result<Refreshed, JwtError> {
        let _one_at_a_time = self.refreshing.lock().unwrap_or_else(|p| p.into_inner());
        let keys = self.files.load()?;
        let (keys, made) = rotate_if_due(&self.files, &self.schedule, keys, now)?;
        let published = publish(&self.schedule, &keys, now)?;
        let signing = signing_kid(&keys, now).ok_or(JwtError::NoActiveKey { now })?;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        let kids = published.kids.clone();
        let changed = self.published.send_if_modified(|current| {
            if **current == published {
                false
            } else {
                *current = Arc::new(published);
                true
            }
        });
        Ok(Refreshed {
            changed,
            published: kids,
            signing,
            made,
        })
    }

    /// Signs a JWT-SVID with the key that signs at `claims.iat`.
    pub fn sign(&self, claims: &Claims<'_>) -> Result<String, JwtError> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
        let index = signer(&activations(&keys), claims.iat)
            .ok_or(JwtError::NoActiveKey { now: claims.iat })?;
        keys[index].key.sign(claims)
    }

    /// The kid of the key that signs at `now`.
    pub fn signing_kid(&self, now: i64) -> Option<String> {
        signing_kid(&self.keys.read().unwrap_or_else(|p| p.into_inner()), now)
    }

    /// The keys published now.
    pub fn published(&self) -> Arc<PublishedKeys> {
        self.published.borrow().clone()
    }

    /// Sees every change of the published keys.
    pub fn subscribe(&self) -> watch::Receiver<Arc<PublishedKeys>> {
        self.published.subscribe()
    }

    pub fn schedule(&self) -> Schedule {
        self.schedule
    }
}

/// Adds a key that activates one pre-publication window from `now` (the
/// next free second from then), and returns it. Checks the keys already
/// there first, so a broken set is reported rather than added to.
pub fn rotate(config: &Config, now: i64) -> Result<Rotated, JwtError> {
    let files = key_files(config);
    let schedule = Schedule::from_config(&config.jwt);
    files.load()?;
    let first = schedule.manual_activation(now);
    for activation in first..first.saturating_add(16) {
        if let Some(stored) = files.create(activation)? {
            return Ok(Rotated {
                kid: stored.key.kid().to_owned(),
                activation,
                path: stored.path,
            });
        }
    }
    Err(JwtError::NoFreeActivation(first))
}

/// Every key and its state at `now`.
pub fn list(config: &Config, now: i64) -> Result<Vec<KeyStatus>, JwtError> {
    let keys = key_files(config).load()?;
    let states = Schedule::from_config(&config.jwt).states(&activations(&keys), now);
    Ok(keys
        .into_iter()
        .zip(states)
        .map(|(stored, state)| KeyStatus {
            activation: stored.activation,
            kid: stored.key.kid().to_owned(),
            path: stored.path,
            state,
        })
        .collect())
}

fn activations(keys: &[StoredKey]) -> Vec<i64> {
    keys.iter().map(|stored| stored.activation).collect()
}

fn signing_kid(keys: &[StoredKey], now: i64) -> Option<String> {
    signer(&activations(keys), now).map(|index| keys[index].key.kid().to_owned())
}

/// Makes the next key when automatic rotation says so; returns the keys,
/// with it, and what was made.
fn rotate_if_due(
    files: &KeyFiles,
    schedule: &Schedule,
    mut keys: Vec<StoredKey>,
    now: i64,
) -> Result<(Vec<StoredKey>, Option<MadeKey>), JwtError> {
    let Some(activation) = schedule.due_rotation(&activations(&keys), now) else {
        return Ok((keys, None));
    };
    let made = match files.create(activation)? {
        Some(stored) => {
            let made = MadeKey {
                kid: stored.key.kid().to_owned(),
                activation,
            };
            info!(kid = %made.kid, activation, "automatic rotation: made the next JWT signing key");
            keys.push(stored);
            Some(made)
        }
        // Another replica made it first: read theirs.
        None => {
            keys.push(StoredKey {
                activation,
                key: JwtKey::load(&files.key_path(activation))?,
                path: files.key_path(activation),
            });
            None
        }
    };
    keys.sort_by_key(|stored| stored.activation);
    Ok((keys, made))
}

fn publish(schedule: &Schedule, keys: &[StoredKey], now: i64) -> Result<PublishedKeys, JwtError> {
    let states = schedule.states(&activations(keys), now);
    let published: Vec<&StoredKey> = keys
        .iter()
        .zip(states)
        .filter(|(_, state)| state.is_published())
        .map(|(stored, _)| stored)
        .collect();
    let render = |flavour: JwkFlavour| {
        let set = JwkSet {
            keys: published
                .iter()
                .map(|stored| stored.key.jwk(flavour))
                .collect(),
        };
        serde_json::to_vec(&set).map_err(|e| JwtError::Render(e.to_string()))
    };
    let oidc_jwks = render(JwkFlavour::Oidc)?;
    Ok(PublishedKeys {
        kids: published
            .iter()
            .map(|stored| stored.key.kid().to_owned())
            .collect(),
        spiffe_jwks: render(JwkFlavour::Spiffe)?,
        oidc_jwks_digest: hex::encode(ring::digest::digest(&ring::digest::SHA256, &oidc_jwks)),
        oidc_jwks,
    })
}

#[cfg(test)]
mod tests;
