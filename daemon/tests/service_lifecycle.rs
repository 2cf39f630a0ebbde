//! `attestd run` as systemd runs it (Type=notify): the real binary, a real
//! NOTIFY_SOCKET datagram socket, real signals. The test plays the service manager.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{run, ATTESTD};

/// How long any one notification may take to arrive; a bound, not a pause.
const DEADLINE: Duration = Duration::from_secs(60);

struct Service {
    child: Child,
    notify: UnixDatagram,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Service {
    fn start(config: &str) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let notify_path = dir.path().join("notify.sock");
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        notify.set_read_timeout(Some(DEADLINE)).unwrap();
        let config_path = dir.path().join("attestd.toml");
        std::fs::write(&config_path, fill(config, dir.path())).unwrap();
        std::fs::create_dir(dir.path().join("attestd.d")).unwrap();
        let child = Command::new(ATTESTD)
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .arg("--config-dir")
            .arg(dir.path().join("attestd.d"))
            .env("NOTIFY_SOCKET", &notify_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Service {
            child,
            notify,
            dir,
            config: config_path,
        }
    }

    /// The next notification, as its KEY=VALUE lines.
    fn next(&self) -> Vec<String> {
        let mut buf = vec![0u8; 4096];
        let n = self
            .notify
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no notification within {DEADLINE:?}: {e}"));
        String::from_utf8(buf[..n].to_vec())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn rewrite_config(&self, config: &str) {
        std::fs::write(&self.config, fill(config, self.dir.path())).unwrap();
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config with DIR replaced by the test's directory; no TPM, no issuer.
fn fill(template: &str, dir: &Path) -> String {
    template.replace("DIR", &dir.display().to_string())
}

fn config_on(socket: &str) -> String {
    format!(
        "[api]\nsocket = \"DIR/{socket}\"\n\n[tpm]\nenabled = false\nstate_dir = \"DIR/state\"\n"
    )
}

fn value<'a>(message: &'a [String], key: &str) -> Option<&'a str> {
    message
        .iter()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
}

/// `attestd describe` against a socket: proves it is served, not just present.
fn answers(socket: &Path) -> bool {
    let mut command = Command::new(ATTESTD);
    command.arg("describe").arg("--socket").arg(socket);
    run(command, DEADLINE).status.success()
}

#[test]
fn notifies_ready_reload_and_stop_and_applies_a_reloaded_config() {
    let mut service = Service::start(&config_on("a.sock"));
    let ready = service.next();
    assert_eq!(value(&ready, "READY"), Some("1"), "{ready:?}");
    let status = value(&ready, "STATUS").unwrap();
    assert!(status.contains("a.sock"), "{status}");
    assert!(answers(&service.path("a.sock")));

    // A valid new config takes effect: the socket moves.
    service.rewrite_config(&config_on("b.sock"));
    service.signal(libc::SIGHUP);
    let reloading = service.next();
    assert_eq!(value(&reloading, "RELOADING"), Some("1"), "{reloading:?}");
    let usec: u64 = value(&reloading, "MONOTONIC_USEC")
        .expect("MONOTONIC_USEC for Type=notify-reload")
        .parse()
        .unwrap();
    assert!(usec > 0);
    let ready = service.next();
    assert_eq!(value(&ready, "READY"), Some("1"), "{ready:?}");
    assert!(value(&ready, "STATUS").unwrap().contains("b.sock"));
    assert!(answers(&service.path("b.sock")));
    assert!(
        !service.path("a.sock").exists(),
        "the old socket is removed"
    );

    service.signal(libc::SIGTERM);
    let stopping = service.next();
    assert_eq!(value(&stopping, "STOPPING"), Some("1"), "{stopping:?}");
    let status = service.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!service.path("b.sock").exists());
}

#[test]
fn an_invalid_reload_keeps_the_running_config_and_says_why() {
    let service = Service::start(&config_on("a.sock"));
    assert_eq!(value(&service.next(), "READY"), Some("1"));

    service.rewrite_config(&format!("{}\n[api]\nsokcet = 1\n", config_on("b.sock")));
    service.signal(libc::SIGHUP);
    assert_eq!(value(&service.next(), "RELOADING"), Some("1"));
    let ready = service.next();
    assert_eq!(value(&ready, "READY"), Some("1"), "{ready:?}");
    let status = value(&ready, "STATUS").unwrap();
    assert!(status.contains("the last reload failed"), "{status}");
    assert!(status.contains("attestd.toml"), "names the file: {status}");
    assert!(!status.contains('\n'));
    assert!(
        answers(&service.path("a.sock")),
        "still serving the old config"
    );
    assert!(!service.path("b.sock").exists());
}

#[test]
fn a_reload_that_cannot_start_goes_back_to_the_previous_config() {
    let service = Service::start(&config_on("a.sock"));
    assert_eq!(value(&service.next(), "READY"), Some("1"));

    // Valid as configuration, but the socket's directory is a regular file.
    std::fs::write(service.path("not-a-dir"), b"").unwrap();
    service.rewrite_config(&config_on("not-a-dir/b.sock"));
    service.signal(libc::SIGHUP);
    assert_eq!(value(&service.next(), "RELOADING"), Some("1"));
    let ready = service.next();
    assert_eq!(value(&ready, "READY"), Some("1"), "{ready:?}");
    assert!(value(&ready, "STATUS").unwrap().contains("a.sock"));
    assert!(answers(&service.path("a.sock")));
}
