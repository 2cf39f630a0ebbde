//! Shared pieces of the daemon's end-to-end tests: an in-process daemon on a real
//! Unix socket, and real client processes (the attestd CLI, Python) talking to it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use attestd::config::Config;
use attestd::daemon::Daemon;
use attestd_attestors::binary::BinaryDigestCache;
use attestd_attestors::selector::Attestor;
use attestd_tests::swtpm::Swtpm;

pub const ATTESTD: &str = env!("CARGO_BIN_EXE_attestd");

/// A daemon serving on a socket in its own temp dir, in its own runtime thread.
pub struct TestDaemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub binaries: Arc<BinaryDigestCache>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
    pub swtpm: Option<Swtpm>,
}

pub struct Options {
    pub swtpm: bool,
    pub extra_attestors: Vec<Arc<dyn Attestor>>,
    pub tune: Box<dyn FnOnce(&mut Config) + Send>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            swtpm: false,
            extra_attestors: Vec::new(),
            tune: Box::new(|_| {}),
        }
    }
}

impl TestDaemon {
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // Other uids must reach the socket inside.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.path().join("api.sock");
        let mut config = Config::default();
        config.api.socket = socket.clone();
        config.api.socket_mode = 0o666;
        config.tpm.state_dir = dir.path().join("state");
        let swtpm = if options.swtpm {
            let swtpm = Swtpm::start().expect("swtpm");
            config.tpm.tcti = swtpm.tcti();
            Some(swtpm)
        } else {
            config.tpm.enabled = false;
            None
        };
        (options.tune)(&mut config);
        let (ready_tx, ready_rx) = mpsc::channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let extra = options.extra_attestors;
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let mut daemon = Daemon::new(config);
                for attestor in extra {
                    daemon = daemon.with_attestor(attestor);
                }
                match daemon.bind().await {
                    Ok(bound) => {
                        let _ = ready_tx.send(Ok(bound.binaries()));
                        let _ = bound
                            .serve(async {
                                let _ = shutdown_rx.await;
                            })
                            .await;
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error.to_string()));
                    }
                }
            });
        });
        let binaries = ready_rx
            .recv()
            .expect("daemon thread died")
            .unwrap_or_else(|e| panic!("daemon failed to start: {e}"));
        TestDaemon {
            dir,
            socket,
            binaries,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
            swtpm,
        }
    }

    /// `attestd describe` run as a separate process, as `uid` when given.
    pub fn describe_as(&self, program: &Path, uid: Option<u32>) -> Output {
        let mut command = Command::new(program);
        command.arg("describe").arg("--socket").arg(&self.socket);
        if let Some(uid) = uid {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(uid);
        }
        run(command, Duration::from_secs(60))
    }

    pub fn describe(&self) -> Vec<String> {
        let output = self.describe_as(Path::new(ATTESTD), None);
        assert!(
            output.status.success(),
            "describe failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        selectors(&output)
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn selectors(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs a command to completion; a hang fails the test instead of the CI run.
pub fn run(mut command: Command, deadline: Duration) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let pid = child.id();
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    match done_rx.recv_timeout(deadline) {
        Ok(output) => output.expect("wait"),
        Err(_) => {
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("{command:?} did not finish within {deadline:?}");
        }
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("daemon/ has a parent")
        .to_owned()
}

pub fn venv_python() -> PathBuf {
    let python = repo_root().join("target/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/ensure-deps.sh (make test does)",
        python.display()
    );
    python
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// A private copy of the attestd binary, so a test can rewrite or rename it.
pub fn copy_of_attestd(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(ATTESTD, &path).expect("copy attestd");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

pub fn find<'a>(selectors: &'a [String], prefix: &str) -> Option<&'a str> {
    selectors.iter().find_map(|s| s.strip_prefix(prefix))
}
