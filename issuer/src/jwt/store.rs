//! The JWT signing key files: the first key (`[jwt] key`, active since the
//! epoch, as before rotation existed) and a directory of rotated keys named
//! `<activation, Unix seconds>.key`. Names carry the schedule, so replicas
//! sharing the files agree on it without talking. Keys are written whole or
//! not at all (a private temporary file, then a hard link that fails if the
//! name is taken), so two replicas making the same key cannot both win and a
//! reader never sees half a key.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ring::rand::SecureRandom;

use super::key::JwtKey;
use super::JwtError;
use crate::ca::CaError;

/// Most key files in the directory: the JWK Set stays small, and a
/// directory filling up is a mistake to report.
pub const MAX_KEY_FILES: usize = 64;
/// The suffix of key files in the directory.
const KEY_SUFFIX: &str = ".key";

/// A key and when it starts signing.
#[derive(Debug)]
pub struct StoredKey {
    /// Unix seconds; 0 for the first key.
    pub activation: i64,
    pub key: JwtKey,
    pub path: PathBuf,
}

/// Where the keys live.
#[derive(Debug, Clone)]
pub struct KeyFiles {
    /// The first key, active since the epoch.
    pub first: PathBuf,
    /// The rotated keys.
    pub dir: PathBuf,
}

impl KeyFiles {
    /// Every key, by activation time. A missing first key or directory is
    /// no error; a file that is not a valid private key is.
    pub fn load(&self) -> Result<Vec<StoredKey>, JwtError> {
        let mut keys = Vec::new();
        if self.first.exists() {
            keys.push(StoredKey {
                activation: 0,
                key: JwtKey::load(&self.first)?,
                path: self.first.clone(),
            });
        }
        for (activation, path) in self.list_dir()? {
            keys.push(StoredKey {
                activation,
                key: JwtKey::load(&path)?,
                path,
            });
        }
        keys.sort_by_key(|stored| stored.activation);
        for pair in keys.windows(2) {
            if pair[0].activation == pair[1].activation {
                return Err(JwtError::Invalid {
                    path: pair[1].path.clone(),
                    reason: format!(
                        "{} activates at the same time ({})",
                        pair[0].path.display(),
                        pair[0].activation
                    ),
                });
            }
        }
        let mut kids: Vec<(&str, &Path)> = keys
            .iter()
            .map(|stored| (stored.key.kid(), stored.path.as_path()))
            .collect();
        kids.sort();
        for pair in kids.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(JwtError::Invalid {
                    path: pair[1].1.to_owned(),
                    reason: format!("the same key as {}", pair[0].1.display()),
                });
            }
        }
        Ok(keys)
    }

    /// The directory's key files and their activation times. Names starting
    /// with '.' (temporary files) are skipped; any other name that is not
    /// `<Unix seconds>.key` is an error, so a misnamed key is not silently
    /// ignored.
    fn list_dir(&self) -> Result<Vec<(i64, PathBuf)>, JwtError> {
        let io = |source| {
            JwtError::File(CaError::Io {
                path: self.dir.clone(),
                source,
            })
        };
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io(error)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            let path = entry.path();
            let invalid = |reason: &str| JwtError::Invalid {
                path: path.clone(),
                reason: reason.to_owned(),
            };
            let Some(name) = name.to_str() else {
                return Err(invalid("not a key file name (<Unix seconds>.key)"));
            };
            if name.starts_with('.') {
                continue;
            }
            let activation = parse_key_name(name)
                .ok_or_else(|| invalid("not a key file name (<Unix seconds>.key)"))?;
            if !entry.file_type().map_err(io)?.is_file() {
                return Err(invalid("not a regular file"));
            }
            found.push((activation, path));
            if found.len() > MAX_KEY_FILES {
                return Err(JwtError::Invalid {
                    path: self.dir.clone(),
                    reason: format!(
                        "more than {MAX_KEY_FILES} keys; delete the expired ones (`attestd-issuer jwt list`)"
                    ),
                });
            }
        }
        Ok(found)
    }

    /// The path of the key activating at `activation`.
    pub fn key_path(&self, activation: i64) -> PathBuf {
        self.dir.join(format!("{activation}{KEY_SUFFIX}"))
    }

    /// Makes a key activating at `activation` in the directory. Returns
    /// `Ok(None)` when that name is taken (another replica or command made
    /// it first).
    pub fn create(&self, activation: i64) -> Result<Option<StoredKey>, JwtError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|source| CaError::Io {
                path: self.dir.clone(),
                source,
            })?;
        let path = self.key_path(activation);
        create_key_file(&path).map(|made| {
            made.map(|key| StoredKey {
                activation,
                key,
                path,
            })
        })
    }

    /// Makes the first key if it does not exist; `Ok(false)` when it exists
    /// (or another replica made it at the same time).
    pub fn create_first(&self) -> Result<bool, JwtError> {
        if let Some(parent) = self.first.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|source| CaError::Io {
                    path: parent.to_owned(),
                    source,
                })?;
        }
        Ok(create_key_file(&self.first)?.is_some())
    }
}

/// "<digits>.key" with no sign and no leading zero (so one time has one
/// name): the activation time.
pub fn parse_key_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(KEY_SUFFIX)?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return None;
    }
    digits.parse().ok()
}

/// Writes a new key to `path` atomically, mode 0600; `Ok(None)` if `path`
/// exists.
fn create_key_file(path: &Path) -> Result<Option<JwtKey>, JwtError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| JwtError::File(CaError::Io { path, source })
    };
    let (key, pem) = JwtKey::generate()?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("key");
    let mut random = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| JwtError::Generate("the system random generator failed".into()))?;
    let temporary = dir.join(format!(".{name}.{}.tmp", hex::encode(random)));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temporary)?;
        file.write_all(pem.as_bytes())?;
        file.sync_all()
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(io(&temporary)(error));
    }
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            // The name is durable once the directory is.
            if let Ok(dir) = std::fs::File::open(dir) {
                let _ = dir.sync_all();
            }
            Ok(Some(key))
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
        Err(error) => Err(io(path)(error)),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn files(dir: &Path) -> KeyFiles {
        KeyFiles {
            first: dir.join("jwt.key"),
            dir: dir.join("jwt-keys"),
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn key_names_are_canonical_unix_seconds() {
        assert_eq!(parse_key_name("0.key"), Some(0));
        assert_eq!(parse_key_name("1700000000.key"), Some(1_700_000_000));
        for bad in [
            ".key",
            "07.key",
            "-5.key",
            "+5.key",
            "5.pem",
            "5",
            "5.key.bak",
            "99999999999999999999.key",
            " 5.key",
        ] {
            assert_eq!(parse_key_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn keys_are_written_0600_in_a_0700_directory_and_load_in_activation_order() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        assert!(files.load().unwrap().is_empty(), "nothing yet, no error");
        assert!(files.create_first().unwrap());
        assert!(!files.create_first().unwrap(), "made once");
        let later = files.create(2_000).unwrap().expect("a new name");
        let earlier = files.create(1_000).unwrap().expect("a new name");
        assert!(files.create(1_000).unwrap().is_none(), "a taken name");
        assert_eq!(mode(&files.first), 0o600);
        assert_eq!(mode(&files.dir), 0o700);
        assert_eq!(mode(&files.key_path(1_000)), 0o600);
        let loaded = files.load().unwrap();
        let order: Vec<(i64, &str)> = loaded
            .iter()
            .map(|stored| (stored.activation, stored.key.kid()))
            .collect();
        assert_eq!(
            order[1..],
            [(1_000, earlier.key.kid()), (2_000, later.key.kid())]
        );
        assert_eq!(order[0].0, 0);
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(&files.dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        files.create(1_000).unwrap().unwrap();
        let path = files.key_path(1_000);
        for loose in [0o640, 0o604, 0o660, 0o644] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose)).unwrap();
            let error = files.load().unwrap_err().to_string();
            assert!(error.contains("readable by others"), "{loose:o}: {error}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(files.load().unwrap().len(), 1);
        // The first key too.
        files.create_first().unwrap();
        std::fs::set_permissions(&files.first, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(files.load().is_err());
    }

    #[test]
    fn a_misnamed_file_a_copied_key_or_a_shared_second_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        files.create(1_000).unwrap().unwrap();
        std::fs::write(files.dir.join(".1000.key.abc.tmp"), "half").unwrap();
        assert_eq!(files.load().unwrap().len(), 1, "dot files are skipped");

        std::fs::write(files.dir.join("notes.txt"), "x").unwrap();
        let error = files.load().unwrap_err().to_string();
        assert!(error.contains("notes.txt"), "{error}");
        std::fs::remove_file(files.dir.join("notes.txt")).unwrap();

        std::fs::copy(files.key_path(1_000), files.key_path(3_000)).unwrap();
        let error = files.load().unwrap_err().to_string();
        assert!(error.contains("the same key"), "{error}");
        std::fs::remove_file(files.key_path(3_000)).unwrap();

        std::fs::create_dir(files.dir.join("5.key")).unwrap();
        let error = files.load().unwrap_err().to_string();
        assert!(error.contains("not a regular file"), "{error}");
        std::fs::remove_dir(files.dir.join("5.key")).unwrap();

        // The first key is activation 0; so would be 0.key.
        files.create_first().unwrap();
        files.create(0).unwrap().unwrap();
        let error = files.load().unwrap_err().to_string();
        assert!(error.contains("same time"), "{error}");
    }

    #[test]
    fn a_file_that_is_not_a_p256_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&files.dir)
            .unwrap();
        let path = files.key_path(1_000);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap()
            .write_all(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .unwrap();
        let error = files.load().unwrap_err().to_string();
        assert!(error.contains("not a PKCS#8 PEM private key"), "{error}");
    }
}
