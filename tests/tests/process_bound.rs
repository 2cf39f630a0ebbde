//! Credentials live no longer than the process they were made for: when the
//! last process that fetched a selector set's SVIDs exits, the daemon drops
//! them and asks the issuer for nothing more on their behalf. Real parts: a
//! swtpm, the issuer over TLS, the daemon's Unix socket, and workloads built on
//! the Rust `spiffe` crate running as another uid.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use attestd_tests::swtpm::Swtpm;

use common::{
    daemon_config, issuer_config, serve_bound_until_attested, TestIssuer, DEADLINE, TRUST_DOMAIN,
};

/// A uid no other test runs workloads as.
const UID: u32 = 4242;
/// Short enough that a renewal comes every 3 s (at half the lifetime).
const X509_TTL_SECS: u64 = 6;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn spiffe_fetch_as(socket: &std::path::Path, args: &[&str]) -> Command {
    let uid = UID.to_string();
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid", &uid, "--regid", &uid, "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_spiffe_fetch"))
        .arg(socket)
        .args(args);
    command
}

/// Lines a child prints, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The issuer's own log, captured in memory: its count of X.509 mints is the
/// issuer's side of the story, independent of the daemon's counters.
#[derive(Clone, Default)]
struct IssuerLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for IssuerLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl IssuerLog {
    fn install() -> IssuerLog {
        let log = IssuerLog::default();
        let writer = log.clone();
        tracing_subscriber::fmt()
            .with_env_filter("attestd_issuer=info")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        log
    }

    fn x509_mints(&self) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .matches("X.509-SVIDs minted")
            .count()
    }
}

/// The attestd binary, built beside this test (cargo puts every workspace
/// binary in the parent of the test executables' directory).
fn attestd_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(std::path::Path::parent).unwrap();
    dir.join("attestd")
}

/// Polls `done` until it holds; fails the test after DEADLINE.
async fn until(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A node attested on swtpm, serving one entry: `spiffe://…/bound` for uid
/// [`UID`], X.509-SVIDs of [`X509_TTL_SECS`].
struct Node {
    dir: tempfile::TempDir,
    socket: std::path::PathBuf,
    identities: std::sync::Arc<attestd::identity::Identities>,
    stop: tokio::sync::oneshot::Sender<()>,
    daemon: tokio::task::JoinHandle<Result<(), attestd::daemon::RunError>>,
    _issuer: TestIssuer,
    _swtpm: Swtpm,
}

impl Node {
    async fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        // The workloads, running as UID, must reach the socket inside.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let swtpm = Swtpm::start().unwrap();
        let entries = dir.path().join("entries.toml");
        std::fs::write(
            &entries,
            format!(
                "[[entry]]\nspiffe_id = \"spiffe://{TRUST_DOMAIN}/bound\"\n\
                 selectors = [\"unix:uid:{UID}\"]\nx509_ttl_secs = {X509_TTL_SECS}\n"
            ),
        )
        .unwrap();
        let config = issuer_config(
            dir.path(),
            Some(swtpm.ca()),
            None,
            &format!("entries = {:?}\n", entries.display().to_string()),
        );
        let issuer = TestIssuer::start(config, dir.path()).await;
        let bound = attestd::daemon::Daemon::new(daemon_config(dir.path(), &swtpm, &issuer))
            .bind()
            .await
            .unwrap();
        let identities = bound.identities().expect("an issuer is configured");
        let (stop, daemon) = serve_bound_until_attested(bound).await;
        Node {
            socket: dir.path().join("api.sock"),
            dir,
            identities,
            stop,
            daemon,
            _issuer: issuer,
            _swtpm: swtpm,
        }
    }

    /// A long-lived `spiffe_fetch` (`x509-watch` or `x509-fork-watch`) as UID,
    /// and the lines it prints.
    fn watch(&self, mode: &str) -> (Child, mpsc::Receiver<String>) {
        let mut child = spiffe_fetch_as(&self.socket, &[mode])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = lines_of(&mut child);
        (child, lines)
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.daemon.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svids_are_dropped_and_never_renewed_once_the_last_process_holding_them_exits() {
    if !is_root() {
        eprintln!("skipped: running workloads as another uid needs root (CI runs as root)");
        return;
    }
    let issuer_log = IssuerLog::install();
    let node = Node::start().await;
    let (socket, identities) = (&node.socket, &node.identities);
    let out = node.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(UID), Some(UID)).unwrap();

    // A long-lived workload watching its X.509-SVID. The control: at this
    // lifetime, a live holder's SVID IS renewed (a second, different update).
    let (mut watcher, updates) = node.watch("x509-watch");
    let first = updates.recv_timeout(DEADLINE).expect("a first X.509-SVID");
    assert!(
        first.starts_with(&format!("update spiffe://{TRUST_DOMAIN}/bound ")),
        "{first}"
    );
    let renewed = updates
        .recv_timeout(DEADLINE)
        .expect("a renewal while the holder lives");
    assert_ne!(first, renewed, "the renewal is a new certificate");
    assert_eq!(identities.cached(), (1, 1));

    // A short-lived process with the same selectors fetches a JWT-SVID and
    // exits: the watcher still holds the selector set, so nothing is dropped.
    let output = spiffe_fetch_as(socket, &["jwt", "aud-1", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    until("the JWT fetcher's exit to be noticed", || {
        identities.stats().processes_exited.load(Ordering::Relaxed) == 1
    })
    .await;
    assert_eq!(
        identities.stats().entries_dropped.load(Ordering::Relaxed),
        0
    );
    assert_eq!(identities.jwt_cached_and_held(), (1, 1));
    assert_eq!(identities.cached(), (1, 1));

    // The last holder goes: both its X.509 set and the JWT set are dropped.
    watcher.kill().unwrap();
    watcher.wait().unwrap();
    until("the watcher's exit to drop the cache entries", || {
        identities.stats().entries_dropped.load(Ordering::Relaxed) == 2
    })
    .await;
    assert_eq!(
        identities.stats().processes_exited.load(Ordering::Relaxed),
        2
    );
    assert_eq!(identities.cached(), (0, 0));
    assert_eq!(identities.jwt_cached_and_held(), (0, 0));

    // Operators see the same through `attestd stats`.
    let stats = Command::new(attestd_binary())
        .args(["stats", "--socket"])
        .arg(socket)
        .output()
        .unwrap();
    let stats = String::from_utf8_lossy(&stats.stdout).into_owned();
    for line in [
        "attestd_svid_processes_exited_total 2",
        "attestd_svid_entries_dropped_total 2",
        "attestd_svid_x509_sets_cached 0",
        "attestd_svid_selector_sets_held 0",
    ] {
        assert!(stats.lines().any(|l| l == line), "no `{line}` in:\n{stats}");
    }

    // No renewal afterwards, counted on both sides. Absence can only be
    // observed over a window: two renewal periods, during which the live
    // watcher above was renewed.
    // A renewal already on its way when the watcher died may still land;
    // wait until the issuer has logged every mint the daemon sent.
    let mints = identities.stats().x509_mints.load(Ordering::Relaxed);
    assert!(mints >= 2);
    until("the issuer to log every mint the daemon sent", || {
        issuer_log.x509_mints() as u64 == mints
    })
    .await;
    let issuer_mints = issuer_log.x509_mints();
    tokio::time::sleep(Duration::from_secs(X509_TTL_SECS)).await;
    assert_eq!(
        identities.stats().x509_mints.load(Ordering::Relaxed),
        mints,
        "no X.509 mint for a process that is gone"
    );
    assert_eq!(
        issuer_log.x509_mints(),
        issuer_mints,
        "the issuer minted nothing more"
    );

    node.stop().await;
}

/// A stream ends with the process that opened it, even when its connection
/// lives on in a child that inherited the socket: the child must not go on
/// receiving renewed SVIDs (and their keys) minted for its parent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_when_its_opener_exits_though_a_child_keeps_the_connection() {
    if !is_root() {
        eprintln!("skipped: running workloads as another uid needs root (CI runs as root)");
        return;
    }
    let node = Node::start().await;
    let identities = &node.identities;

    // Another process with the same selectors keeps the cached set alive, so
    // only the stream's own tie to its opener can end the child's stream.
    let (mut holder, held) = node.watch("x509-watch");
    let first_held = held
        .recv_timeout(DEADLINE)
        .expect("the holder's first X.509-SVID");

    let (mut opener, lines) = node.watch("x509-fork-watch");
    let first = lines.recv_timeout(DEADLINE).expect("a first X.509-SVID");
    assert!(first.starts_with("update "), "{first}");
    // The opener forks and exits; the orphaned child keeps the connection
    // and the pipe. Without the daemon ending the stream it would print each
    // renewal (every 3 s) for ever; with it, the stream ends.
    assert!(opener.wait().unwrap().success());
    let next = lines
        .recv_timeout(DEADLINE)
        .expect("the child reports the stream's end");
    assert_eq!(
        next, "ended",
        "the child received an update after its parent exited"
    );
    // The holder's stream goes on: it is renewed, from the same cached set.
    let renewed = held.recv_timeout(DEADLINE).expect("the holder's renewal");
    assert_ne!(renewed, first_held);
    assert_eq!(
        identities.stats().entries_dropped.load(Ordering::Relaxed),
        0
    );
    assert_eq!(identities.cached(), (1, 1));

    holder.kill().unwrap();
    holder.wait().unwrap();
    until("the holder's exit to drop the set", || {
        identities.stats().entries_dropped.load(Ordering::Relaxed) == 1
    })
    .await;
    assert_eq!(identities.cached(), (0, 0));

    node.stop().await;
}
