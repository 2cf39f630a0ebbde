//! `BinaryDigestCache`: single-flight hashing of executables with a bounded number
//! of hashes at once and a bounded number of remembered digests.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::runtime::Handle;
use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

use super::error::{BinaryError, HashFailure, IoOperation};
use super::hash::sha256_of_open_file;
use super::key::{settled_before, FileKey};
use super::lru::LruMap;
use super::{BinaryDigest, BinaryDigestConfig, CacheStats};

/// The default racy window: more than the coarsest timestamp granularity of any
/// filesystem an executable is likely to live on (2 s on FAT, 1 s on ext4 with
/// small inodes, one jiffy elsewhere).
pub const DEFAULT_RACY_WINDOW: Duration = Duration::from_secs(2);

/// What every caller waiting on one hash receives; `None` until it is done.
type FlightOutcome = Result<BinaryDigest, HashFailure>;
type OutcomeReceiver = watch::Receiver<Option<FlightOutcome>>;

/// Digests of executables, computed once per version of the file. Cheap to share
/// behind an `Arc`; every method takes `&self`.
pub struct BinaryDigestCache {
    inner: Arc<Inner>,
}

struct Inner {
    config: BinaryDigestConfig,
    racy_window: Duration,
    /// Owned permits so a permit can move into the blocking read and bound the
    /// threads actually reading, even if the task that started it is cancelled.
    hash_permits: Arc<Semaphore>,
    /// A std mutex: it is never held across an `.await`, and every critical section
    /// is a few map operations.
    state: Mutex<State>,
    #[cfg(test)]
    hash_pause: Option<Arc<HashPause>>,
}

struct State {
    digests: LruMap<FileKey, BinaryDigest>,
    /// At most one shareable hash per key.
    flights: HashMap<FileKey, Flight>,
    next_flight_id: u64,
    running_hashes: usize,
    hashes_started: u64,
    hashes_completed: u64,
    hits: u64,
    misses: u64,
}

/// A hash in progress that later callers may join.
struct Flight {
    id: u64,
    /// When the read began; `None` while the hash waits for a permit.
    reading_since: Option<SystemTime>,
    outcome: OutcomeReceiver,
}

/// A flight registered by `lookup`, still to be spawned.
struct NewFlight {
    id: u64,
    file: File,
    publish: watch::Sender<Option<FlightOutcome>>,
}

enum Lookup {
    Hit(BinaryDigest),
    Wait(OutcomeReceiver),
    Start(NewFlight, OutcomeReceiver),
}

impl BinaryDigestCache {
    pub fn new(config: BinaryDigestConfig) -> Self {
        Self::with_racy_window(config, DEFAULT_RACY_WINDOW)
    }

    /// Like `new`, with a different racy window: a digest is cached only if the
    /// file's last change (max of ctime and mtime) is more than `racy_window` older
    /// than the moment its read began. It must exceed the timestamp granularity of
    /// the filesystems executables live on; `Duration::ZERO` is only for tests and
    /// benchmarks on files nobody writes.
    pub fn with_racy_window(config: BinaryDigestConfig, racy_window: Duration) -> Self {
        Self::build(config, racy_window, |_| {})
    }

    fn build(
        config: BinaryDigestConfig,
        racy_window: Duration,
        finish: impl FnOnce(&mut Inner),
    ) -> Self {
        let permits = config
            .max_concurrent_hashes
            .clamp(1, Semaphore::MAX_PERMITS);
        let mut inner = Inner {
            racy_window,
            hash_permits: Arc::new(Semaphore::new(permits)),
            state: Mutex::new(State {
                digests: LruMap::new(config.max_entries),
                flights: HashMap::new(),
                next_flight_id: 0,
                running_hashes: 0,
                hashes_started: 0,
                hashes_completed: 0,
                hits: 0,
                misses: 0,
            }),
            config,
            #[cfg(test)]
            hash_pause: None,
        };
        finish(&mut inner);
        BinaryDigestCache {
            inner: Arc::new(inner),
        }
    }

    /// Digest of what `pid` is executing, read through /proc/<pid>/exe (an fd to the
    /// mapped file, even if the path was replaced or deleted). Must be called inside
    /// a tokio runtime.
    ///
    /// Cancel-safe: a caller that stops waiting (a request deadline) does not stop
    /// the hash; it finishes in the background, fills the cache, and answers
    /// whoever joined it.
    pub async fn digest_of_pid(&self, pid: i32) -> Result<BinaryDigest, BinaryError> {
        if pid <= 0 {
            return Err(BinaryError::ProcessGone { pid });
        }
        let runtime = Handle::try_current().map_err(|_| BinaryError::NoRuntime)?;
        let exe = self
            .inner
            .config
            .proc_root
            .join(pid.to_string())
            .join("exe");
        let limit = self.inner.config.max_file_bytes;
        // Opening can block (a network or FUSE filesystem), so not on a runtime worker.
        let (file, key) = runtime
            .spawn_blocking(move || open_executable(&exe, pid, limit))
            .await
            .map_err(|join| BinaryError::HashTaskLost {
                reason: join.to_string(),
            })??;

        let outcome = match self.inner.lookup(key, file) {
            Lookup::Hit(digest) => return Ok(digest),
            Lookup::Wait(outcome) => outcome,
            Lookup::Start(flight, outcome) => {
                // Armed before the task exists: even a task dropped unpolled (a
                // runtime shutting down) unregisters its flight rather than leaving
                // a flight nobody will ever finish.
                let guard = FlightGuard {
                    inner: Arc::clone(&self.inner),
                    key,
                    id: flight.id,
                    armed: true,
                };
                let span = tracing::debug_span!(
                    "binary_hash",
                    pid,
                    dev = key.dev,
                    ino = key.ino,
                    size = key.size
                );
                runtime.spawn(run_flight(guard, flight).instrument(span));
                outcome
            }
        };
        wait_for(outcome)
            .await
            .map_err(|failure| failure.into_error(pid))
    }

    pub fn stats(&self) -> CacheStats {
        let state = self.inner.lock();
        CacheStats {
            hashes_started: state.hashes_started,
            hashes_completed: state.hashes_completed,
            hits: state.hits,
            misses: state.misses,
            entries: state.digests.len(),
            in_flight: state.running_hashes,
        }
    }
}

impl fmt::Debug for BinaryDigestCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BinaryDigestCache")
            .field("config", &self.inner.config)
            .field("racy_window", &self.inner.racy_window)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock, and every section leaves the maps
        // consistent, so a poisoned lock still holds a usable state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers from the cache, joins a hash in flight, or registers a new one, all
    /// under one lock so a finishing hash cannot slip between the checks.
    fn lookup(&self, key: FileKey, file: File) -> Lookup {
        let mut state = self.lock();
        if let Some(digest) = state.digests.get(&key) {
            state.hits += 1;
            return Lookup::Hit(digest);
        }
        state.misses += 1;
        if let Some(flight) = state.flights.get(&key) {
            if self.may_join(flight, &key) {
                return Lookup::Wait(flight.outcome.clone());
            }
        }
        // No flight, or one that may not answer us: start ours. It replaces the old
        // one in `flights`, which keeps running for its own callers.
        let id = state.next_flight_id;
        state.next_flight_id += 1;
        state.running_hashes += 1;
        state.hashes_started += 1;
        let (publish, outcome) = watch::channel(None);
        state.flights.insert(
            key,
            Flight {
                id,
                reading_since: None,
                outcome: outcome.clone(),
            },
        );
        Lookup::Start(NewFlight { id, file, publish }, outcome)
    }

    /// Whether a caller whose fstat saw `key` may take the answer of `flight`.
    ///
    /// A flight that has not started reading will read after our fstat: as good as
    /// our own hash. One that started reading while the file was settled would have
    /// seen the key move had anything been written since, and it did not. One that
    /// started reading while the file was racy may have read bytes that a write in
    /// the same clock tick has since replaced without moving the key, so a caller
    /// arriving now must not get its answer: it hashes again.
    fn may_join(&self, flight: &Flight, key: &FileKey) -> bool {
        // A flight whose task is gone will never answer.
        if flight.outcome.has_changed().is_err() {
            return false;
        }
        match flight.reading_since {
            None => true,
            Some(read_started) => settled_before(key, read_started, self.racy_window),
        }
    }

    async fn hash(&self, id: u64, key: FileKey, file: File) -> (FlightOutcome, Option<SystemTime>) {
        let permit = match Arc::clone(&self.hash_permits).acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => return (Err(HashFailure::Lost("hash permits closed".into())), None),
        };
        let read_started = SystemTime::now();
        if let Some(flight) = self.lock().flights.get_mut(&key).filter(|f| f.id == id) {
            flight.reading_since = Some(read_started);
        }
        #[cfg(test)]
        let pause = self.hash_pause.clone();
        let read = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            #[cfg(test)]
            if let Some(pause) = pause {
                pause.wait_if_large(key.size);
            }
            sha256_of_open_file(&file, &key)
        })
        .await;
        let outcome = match read {
            Ok(Ok(sha256)) => Ok(BinaryDigest {
                sha256,
                size: key.size,
                key,
            }),
            Ok(Err(failure)) => Err(failure),
            Err(join) => Err(HashFailure::Lost(join.to_string())),
        };
        (outcome, Some(read_started))
    }

    /// Records a finished hash. The digest is cached only if the read began while
    /// the file was settled (see `key::settled_before`); otherwise it answered the
    /// callers that shared it and is forgotten.
    fn finish(
        &self,
        id: u64,
        key: FileKey,
        read_started: Option<SystemTime>,
        outcome: &FlightOutcome,
    ) {
        let mut state = self.lock();
        state.running_hashes = state.running_hashes.saturating_sub(1);
        if let Ok(digest) = outcome {
            state.hashes_completed += 1;
            if read_started.is_some_and(|started| settled_before(&key, started, self.racy_window)) {
                state.digests.insert(key, *digest);
            }
        }
        if state.flights.get(&key).is_some_and(|f| f.id == id) {
            state.flights.remove(&key);
        }
    }
}

/// The spawned task behind a flight. If the runtime drops it part-way, `guard`
/// still unregisters the flight, and dropping `publish` tells the waiters.
async fn run_flight(mut guard: FlightGuard, flight: NewFlight) {
    let NewFlight { id, file, publish } = flight;
    let inner = Arc::clone(&guard.inner);
    let key = guard.key;
    let (outcome, read_started) = inner.hash(id, key, file).await;
    guard.armed = false;
    inner.finish(id, key, read_started, &outcome);
    match &outcome {
        Ok(_) => tracing::debug!("hashed executable"),
        Err(failure) => tracing::debug!(?failure, "hashing executable failed"),
    }
    publish.send_replace(Some(outcome));
}

/// Unregisters a flight whose task was dropped before `finish` ran.
struct FlightGuard {
    inner: Arc<Inner>,
    key: FileKey,
    id: u64,
    armed: bool,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        if self.armed {
            let failed = Err(HashFailure::Lost("the hashing task was cancelled".into()));
            self.inner.finish(self.id, self.key, None, &failed);
        }
    }
}

async fn wait_for(mut outcome: OutcomeReceiver) -> FlightOutcome {
    match outcome.wait_for(Option::is_some).await {
        Ok(done) => done
            .clone()
            .unwrap_or_else(|| Err(HashFailure::Lost("empty hash outcome".into()))),
        Err(_) => Err(HashFailure::Lost(
            "the hashing task ended without an answer".into(),
        )),
    }
}

/// Opens the executable through the magic link and checks it is worth hashing.
/// The returned fd is the only way the file is read from then on.
fn open_executable(exe: &Path, pid: i32, limit: u64) -> Result<(File, FileKey), BinaryError> {
    let file = File::open(exe).map_err(|error| open_error(pid, error))?;
    let metadata = file.metadata().map_err(|source| BinaryError::Io {
        pid,
        operation: IoOperation::Stat,
        source: Arc::new(source),
    })?;
    if !metadata.is_file() {
        return Err(BinaryError::NotARegularFile);
    }
    if metadata.len() > limit {
        return Err(BinaryError::TooLarge {
            size: metadata.len(),
            limit,
        });
    }
    Ok((file, FileKey::from_metadata(&metadata)))
}

fn open_error(pid: i32, error: io::Error) -> BinaryError {
    // ENOENT: no such pid, or a zombie or kernel thread with no executable.
    // ESRCH (3 on every Linux architecture): it exited during the lookup.
    const ESRCH: i32 = 3;
    if error.kind() == io::ErrorKind::NotFound || error.raw_os_error() == Some(ESRCH) {
        BinaryError::ProcessGone { pid }
    } else {
        BinaryError::Io {
            pid,
            operation: IoOperation::Open,
            source: Arc::new(error),
        }
    }
}

/// Test hook: holds hashes of files of at least `min_size` bytes inside the
/// blocking read until the test releases them, so tests can act while a hash is
/// provably in flight without sleeping.
#[cfg(test)]
pub(crate) struct HashPause {
    pub(crate) min_size: u64,
    pub(crate) reached: tokio::sync::mpsc::UnboundedSender<()>,
    pub(crate) release: Mutex<std::sync::mpsc::Receiver<()>>,
}

#[cfg(test)]
impl HashPause {
    fn wait_if_large(&self, size: u64) {
        if size >= self.min_size {
            let _ = self.reached.send(());
            if let Ok(release) = self.release.lock() {
                let _ = release.recv();
            }
        }
    }
}

#[cfg(test)]
impl BinaryDigestCache {
    pub(crate) fn with_hash_pause(
        config: BinaryDigestConfig,
        racy_window: Duration,
        pause: Arc<HashPause>,
    ) -> Self {
        Self::build(config, racy_window, |inner| inner.hash_pause = Some(pause))
    }
}

#[cfg(test)]
#[path = "cache_test.rs"]
mod tests;
