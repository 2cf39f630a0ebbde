//! The registration entries in force, the JWK Set published with them, and
//! the revision they make with the CA. Held in a watch channel: minting
//! reads the current snapshot, WatchRevision streams each new one, and a
//! reload (SIGHUP) or a change of the published JWT keys replaces it whole,
//! or not at all when the new entries file is invalid.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::entries::{Entries, EntriesError};

/// Domain separation for the revision hash.
const REVISION_CONTEXT: &[u8] = b"attestd-revision-v1";

/// Entries, the JWK Set, and the revision they make.
#[derive(Debug)]
pub struct Snapshot {
    /// Shared: a new JWK Set does not copy them.
    pub entries: Arc<Entries>,
    /// The JWT keys as a SPIFFE JWK Set (JSON).
    pub jwks: Arc<[u8]>,
    /// Hex SHA-256 of the entries file, the CA certificate and the JWK Set
    /// (see [`revision`]).
    pub revision: String,
    /// The entries file's bytes, to re-compute the revision with a new JWK Set.
    entries_file: Arc<[u8]>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    pub entries: usize,
    pub revision: String,
    /// False when the file's bytes did not change.
    pub changed: bool,
}

/// The entries in force; clones share them.
#[derive(Debug, Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: Option<PathBuf>,
    trust_domain: String,
    ca_der: Vec<u8>,
    sender: watch::Sender<Arc<Snapshot>>,
    /// One update at a time: a reload and a JWK Set change must not undo
    /// each other.
    updating: Mutex<()>,
}

impl Registry {
    /// Loads the entries file (`None`: no entries) for `trust_domain`; the
    /// revision also covers `ca_der` and `jwks`.
    pub fn load(
        path: Option<&Path>,
        trust_domain: &str,
        ca_der: &[u8],
        jwks: &[u8],
    ) -> Result<Registry, EntriesError> {
        let snapshot = read_snapshot(path, trust_domain, ca_der, jwks.into())?;
        let (sender, _) = watch::channel(Arc::new(snapshot));
        Ok(Registry {
            inner: Arc::new(Inner {
                path: path.map(Path::to_owned),
                trust_domain: trust_domain.to_owned(),
                ca_der: ca_der.to_vec(),
                sender,
                updating: Mutex::new(()),
            }),
        })
    }

    /// The entries and revision in force now.
    pub fn current(&self) -> Arc<Snapshot> {
        self.inner.sender.borrow().clone()
    }

    /// A receiver that sees every new snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.inner.sender.subscribe()
    }

    /// Re-reads the entries file. On error the entries in force stay.
    pub fn reload(&self) -> Result<Reloaded, EntriesError> {
        let inner = &self.inner;
        let _one_at_a_time = inner.updating.lock().unwrap_or_else(|p| p.into_inner());
        let jwks = self.current().jwks.clone();
        let fresh = read_snapshot(
            inner.path.as_deref(),
            &inner.trust_domain,
            &inner.ca_der,
            jwks,
        )?;
        let reloaded = Reloaded {
            entries: fresh.entries.len(),
            revision: fresh.revision.clone(),
            changed: false,
        };
        let changed = self.replace(fresh);
        Ok(Reloaded {
            changed,
            ..reloaded
        })
    }

    /// Publishes a new JWK Set with the entries in force; returns the new
    /// revision if it changed.
    pub fn set_jwks(&self, jwks: &[u8]) -> Option<String> {
        let _one_at_a_time = self
            .inner
            .updating
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let current = self.current();
        if *current.jwks == *jwks {
            return None;
        }
        let fresh = Snapshot {
            entries: current.entries.clone(),
            jwks: jwks.into(),
            revision: revision(&current.entries_file, &self.inner.ca_der, jwks),
            entries_file: current.entries_file.clone(),
        };
        let revision = fresh.revision.clone();
        self.replace(fresh).then_some(revision)
    }

    fn replace(&self, fresh: Snapshot) -> bool {
        let fresh = Arc::new(fresh);
        self.inner.sender.send_if_modified(|current| {
            if current.revision == fresh.revision {
                false
            } else {
                *current = fresh.clone();
                true
            }
        })
    }
}

fn read_snapshot(
    path: Option<&Path>,
    trust_domain: &str,
    ca_der: &[u8],
    jwks: Arc<[u8]>,
) -> Result<Snapshot, EntriesError> {
    let (entries, bytes) = match path {
        Some(path) => Entries::load(path, Some(trust_domain))?,
        None => (Entries::default(), Vec::new()),
    };
    Ok(Snapshot {
        entries: Arc::new(entries),
        revision: revision(&bytes, ca_der, &jwks),
        jwks,
        entries_file: bytes.into(),
    })
}

/// Hex SHA-256 over a context string, then the entries file's bytes, the CA
/// certificate (DER) and the JWK Set (JSON), each preceded by its length as
/// 8 bytes big-endian. Replicas serving the same files agree on it.
pub fn revision(entries_file: &[u8], ca_der: &[u8], jwks: &[u8]) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(REVISION_CONTEXT);
    for part in [entries_file, ca_der, jwks] {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    hex::encode(context.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str =
        "[[entry]]\nspiffe_id = \"spiffe://example.org/a\"\nselectors = [\"unix:uid:1\"]\n";

    #[test]
    fn the_revision_changes_with_each_part_and_not_otherwise() {
        let base = revision(b"entries", b"ca", b"jwks");
        assert_eq!(base, revision(b"entries", b"ca", b"jwks"));
        assert_ne!(base, revision(b"entries2", b"ca", b"jwks"));
        assert_ne!(base, revision(b"entries", b"ca2", b"jwks"));
        assert_ne!(base, revision(b"entries", b"ca", b"jwks2"));
        // Lengths keep the parts apart: moving a byte across a boundary counts.
        assert_ne!(base, revision(b"entriesc", b"a", b"jwks"));
    }

    #[test]
    fn a_reload_replaces_entries_only_when_the_file_is_valid_and_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entries.toml");
        std::fs::write(&path, ENTRY).unwrap();
        let registry = Registry::load(Some(&path), "example.org", b"ca", b"jwks").unwrap();
        let mut watcher = registry.subscribe();
        let first = registry.current().revision.clone();
        assert_eq!(registry.current().entries.len(), 1);

        let same = registry.reload().unwrap();
        assert!(!same.changed);
        assert_eq!(same.revision, first);
        assert!(!watcher.has_changed().unwrap());

        std::fs::write(&path, format!("{ENTRY}{}", ENTRY.replace("/a", "/b"))).unwrap();
        let changed = registry.reload().unwrap();
        assert!(changed.changed);
        assert_eq!(changed.entries, 2);
        assert!(watcher.has_changed().unwrap());
        assert_eq!(watcher.borrow_and_update().revision, changed.revision);

        std::fs::write(&path, "[[entry]]\nspiffe_id = \"nope\"\n").unwrap();
        assert!(registry.reload().is_err());
        assert_eq!(registry.current().entries.len(), 2);
        assert_eq!(registry.current().revision, changed.revision);
        assert!(!watcher.has_changed().unwrap());
    }

    #[test]
    fn a_new_jwk_set_changes_the_revision_and_keeps_the_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entries.toml");
        std::fs::write(&path, ENTRY).unwrap();
        let registry = Registry::load(Some(&path), "example.org", b"ca", b"jwks").unwrap();
        let watcher = registry.subscribe();
        assert_eq!(
            registry.set_jwks(b"jwks"),
            None,
            "the same set is no change"
        );
        assert!(!watcher.has_changed().unwrap());

        let changed = registry.set_jwks(b"jwks2").expect("a new revision");
        assert_eq!(changed, revision(ENTRY.as_bytes(), b"ca", b"jwks2"));
        assert!(watcher.has_changed().unwrap());
        let current = registry.current();
        assert_eq!(&*current.jwks, b"jwks2");
        assert_eq!(current.entries.len(), 1);
        // A reload afterwards keeps the new set.
        std::fs::write(&path, format!("{ENTRY}{}", ENTRY.replace("/a", "/b"))).unwrap();
        let reloaded = registry.reload().unwrap();
        assert_eq!(
            reloaded.revision,
            revision(
                format!("{ENTRY}{}", ENTRY.replace("/a", "/b")).as_bytes(),
                b"ca",
                b"jwks2"
            )
        );
        assert_eq!(&*registry.current().jwks, b"jwks2");
    }

    #[test]
    fn no_entries_file_means_no_entries() {
        let registry = Registry::load(None, "example.org", b"ca", b"jwks").unwrap();
        assert!(registry.current().entries.is_empty());
        assert_eq!(registry.current().revision, revision(b"", b"ca", b"jwks"));
        assert!(!registry.reload().unwrap().changed);
    }
}
