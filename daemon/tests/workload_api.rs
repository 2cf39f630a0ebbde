//! The workload API end to end: real client processes (the attestd CLI, and a
//! Python grpcio client built from our .proto) on the daemon's real Unix socket,
//! evidence checked by pycose, processes placed in real cgroups.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;

const NONCE: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn python_stubs(dir: &Path) -> PathBuf {
    let stubs = dir.join("stubs");
    let mut command = Command::new(venv_python());
    command
        .arg(repo_root().join("tests/python/workload_client.py"))
        .arg("gen")
        .arg(repo_root().join("proto"))
        .arg(&stubs);
    let output = run(command, Duration::from_secs(120));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    for entry in walk(&stubs) {
        let mode = if entry.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    stubs
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_owned()];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn python_call(daemon: &TestDaemon, stubs: &Path, uid: u32) -> serde_json::Value {
    let mut command = Command::new(venv_python());
    command
        .arg(repo_root().join("tests/python/workload_client.py"))
        .arg("call")
        .arg(stubs)
        .arg(&daemon.socket)
        .arg(NONCE)
        .arg("spiffe://example.org/relying-party")
        // Python must not try to write bytecode next to the stubs as another user.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // The client drops to `uid` itself after its imports: the interpreter may
        // live under /root, where another user cannot even start it.
        .env("ATTESTD_TEST_AS_UID", uid.to_string());
    let output = run(command, Duration::from_secs(60));
    assert!(
        output.status.success(),
        "python client as uid {uid}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("client prints JSON")
}

#[test]
fn python_grpc_client_gets_each_uids_own_selectors_and_pycose_verifies_the_evidence() {
    let daemon = TestDaemon::start_with(Options {
        swtpm: true,
        ..Options::default()
    });
    let stubs = python_stubs(daemon.dir.path());
    for uid in [0u32, 65534] {
        let answer = python_call(&daemon, &stubs, uid);
        assert_eq!(answer["uid"], uid);
        let selectors: Vec<String> = answer["selectors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        assert!(
            selectors.contains(&format!("unix:uid:{uid}")),
            "uid {uid} got {selectors:?}"
        );
        let other = if uid == 0 { 65534 } else { 0 };
        assert!(!selectors.contains(&format!("unix:uid:{other}")));
        assert!(find(&selectors, "unix:sha256:").is_some(), "{selectors:?}");

        // pycose checks the COSE signature; the script checks claims against the schema.
        let evidence = daemon.dir.path().join(format!("evidence-{uid}.cbor"));
        std::fs::write(
            &evidence,
            hex::decode(answer["evidence_hex"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let verify = |nonce: &str| {
            let mut command = Command::new(venv_python());
            command
                .arg(repo_root().join("tests/python/verify_evidence.py"))
                .arg(&evidence)
                .arg(nonce)
                .args(["--audience", "spiffe://example.org/relying-party"]);
            run(command, Duration::from_secs(60))
        };
        let accepted = verify(NONCE);
        assert!(
            accepted.status.success(),
            "pycose rejected our evidence: {}{}",
            String::from_utf8_lossy(&accepted.stdout),
            String::from_utf8_lossy(&accepted.stderr)
        );
        let claims: serde_json::Value = serde_json::from_slice(&accepted.stdout).unwrap();
        let claimed = claims.to_string();
        assert!(claimed.contains(&format!("unix:uid:{uid}")), "{claimed}");
        let rejected = verify("00000000000000000000000000000000");
        assert_eq!(
            rejected.status.code(),
            Some(1),
            "a wrong nonce was accepted"
        );
    }
}

#[test]
fn evidence_command_writes_evidence_our_verifier_accepts() {
    let daemon = TestDaemon::start_with(Options {
        swtpm: true,
        ..Options::default()
    });
    let out = daemon.dir.path().join("evidence.cbor");
    let mut command = Command::new(ATTESTD);
    command
        .args(["evidence", "--nonce", NONCE, "--audience", "aud", "--out"])
        .arg(&out)
        .arg("--socket")
        .arg(&daemon.socket);
    let output = run(command, Duration::from_secs(60));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&out).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let policy = attestd_verifier::evidence::EvidencePolicy {
        expected_nonce: hex::decode(NONCE).unwrap(),
        now_unix_secs: now,
        max_age_secs: 300,
        max_future_skew_secs: 60,
        audience: Some("aud".into()),
        trusted_keys: None,
        node_trust: None,
        required_selectors: vec!["unix:uid:0".into()],
        hardware_fresh: None,
    };
    let verified = attestd_verifier::evidence::verify_evidence(&bytes, &policy).unwrap();
    // With a TPM, the UEID names the EK.
    let ueid = verified.claims.ueid.expect("ueid with a TPM");
    assert_eq!(ueid.len(), 33);
    assert_eq!(ueid[0], 0x01);
}

#[test]
fn fifty_processes_of_one_binary_cause_one_hash() {
    // The binary may have been built a moment ago, and a file changed within the
    // racy window is re-hashed on purpose (docs/binary-cache.md); that rule has its
    // own tests in attestors/, so switch it off here.
    let daemon = TestDaemon::start_with(Options {
        tune: Box::new(|config| config.binary.racy_window_ms = 0),
        ..Options::default()
    });
    let children: Vec<_> = (0..50)
        .map(|_| {
            std::process::Command::new(ATTESTD)
                .arg("describe")
                .arg("--socket")
                .arg(&daemon.socket)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut digests = std::collections::BTreeSet::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let selectors = selectors(&output);
        digests.insert(find(&selectors, "unix:sha256:").unwrap().to_owned());
    }
    assert_eq!(digests.len(), 1);
    assert_eq!(
        digests.first().unwrap(),
        &sha256_hex(&std::fs::read(ATTESTD).unwrap())
    );
    assert_eq!(daemon.binaries.stats().hashes_completed, 1);
}

#[test]
fn rewriting_a_binary_in_place_changes_the_digest_on_the_next_call() {
    let daemon = TestDaemon::start();
    let bin = daemon.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let client = copy_of_attestd(&bin, "client");
    let first = daemon.describe_as(&client, None);
    assert!(first.status.success());
    let before = find(&selectors(&first), "unix:sha256:").unwrap().to_owned();

    // Same inode, new content: ELF ignores bytes appended after its sections.
    let inode_before = std::fs::metadata(&client).unwrap();
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&client)
            .unwrap();
        file.write_all(b"rewritten in place").unwrap();
    }
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&client).unwrap().ino(),
        inode_before.ino()
    );
    let second = daemon.describe_as(&client, None);
    assert!(second.status.success());
    let after = find(&selectors(&second), "unix:sha256:")
        .unwrap()
        .to_owned();
    assert_ne!(before, after);
    assert_eq!(after, sha256_hex(&std::fs::read(&client).unwrap()));

    // Replaced and renamed over the old path: a new inode, again a new digest.
    let replacement = copy_of_attestd(&bin, "replacement");
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&replacement)
            .unwrap();
        file.write_all(b"a different build").unwrap();
    }
    std::fs::rename(&replacement, &client).unwrap();
    let third = daemon.describe_as(&client, None);
    let renamed = find(&selectors(&third), "unix:sha256:").unwrap().to_owned();
    assert_eq!(renamed, sha256_hex(&std::fs::read(&client).unwrap()));
    assert_ne!(renamed, after);
}

/// Where to make test cgroups: the cgroup v2 mount where there is one, else the
/// v1 `pids` hierarchy.
fn cgroup_root() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mounts: Vec<(String, PathBuf)> = mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = PathBuf::from(left.split_whitespace().nth(4)?);
            let mut fields = right.split_whitespace();
            let fstype = fields.next()?;
            let options = fields.nth(1).unwrap_or("");
            Some((format!("{fstype} {options}"), point))
        })
        .collect();
    let v2 = mounts.iter().find(|(kind, _)| kind.starts_with("cgroup2 "));
    let v1 = mounts.iter().find(|(kind, _)| {
        kind.starts_with("cgroup ") && kind.split([' ', ',']).any(|o| o == "pids")
    });
    v2.or(v1).map(|(_, point)| point.clone())
}

/// A cgroup directory tree made for one test and removed afterwards.
struct TestCgroup {
    base: PathBuf,
    leaf: PathBuf,
}

impl TestCgroup {
    fn create(root: &Path, relative: &str) -> TestCgroup {
        let base = root.join(format!("attestd-test-{}", std::process::id()));
        let leaf = base.join(relative.trim_start_matches('/'));
        std::fs::create_dir_all(&leaf).unwrap_or_else(|e| panic!("mkdir {}: {e}", leaf.display()));
        TestCgroup { base, leaf }
    }

    /// Runs `attestd describe` from inside this cgroup.
    fn describe(&self, daemon: &TestDaemon) -> Vec<String> {
        let mut command = Command::new("sh");
        command.arg("-c").arg(format!(
            "echo $$ > '{}/cgroup.procs' && exec '{}' describe --socket '{}'",
            self.leaf.display(),
            ATTESTD,
            daemon.socket.display()
        ));
        let output = run(command, Duration::from_secs(60));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        selectors(&output)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Leaf first; each directory is empty once its process has exited.
        let mut dir = self.leaf.clone();
        while dir.starts_with(&self.base) {
            let _ = std::fs::remove_dir(&dir);
            if !dir.pop() {
                break;
            }
        }
    }
}

#[test]
fn processes_in_container_cgroups_get_container_and_pod_selectors() {
    let root = cgroup_root().expect("cgroup v2, or the v1 pids hierarchy, is mounted");
    let daemon = TestDaemon::start();
    let container = "3f4e1b9c0d2a8e7f6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a";
    let pod = "8f2d6c1e-3b4a-4f5e-9d8c-7b6a5e4d3c2b";

    let docker = TestCgroup::create(&root, &format!("system.slice/docker-{container}.scope"));
    let selectors = docker.describe(&daemon);
    assert!(
        selectors.contains(&format!("container:id:{container}")),
        "{selectors:?}"
    );
    drop(docker);

    let kubepods = TestCgroup::create(
        &root,
        &format!(
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{container}.scope",
            pod.replace('-', "_")
        ),
    );
    let selectors = kubepods.describe(&daemon);
    assert!(
        selectors.contains(&format!("container:id:{container}")),
        "{selectors:?}"
    );
    assert!(
        selectors.contains(&format!("k8s:pod-uid:{pod}")),
        "{selectors:?}"
    );
    assert!(
        selectors.contains(&"k8s:qos:burstable".to_owned()),
        "{selectors:?}"
    );
    drop(kubepods);

    // kind: a pod's container inside a kind node, itself a docker container. The
    // pod's container is the innermost id, not the node's.
    let node = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let kind = TestCgroup::create(
        &root,
        &format!(
            "system.slice/docker-{node}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{}.slice/cri-containerd-{container}.scope",
            pod.replace('-', "_")
        ),
    );
    let selectors = kind.describe(&daemon);
    assert!(
        selectors.contains(&format!("container:id:{container}")),
        "{selectors:?}"
    );
    assert!(
        !selectors.contains(&format!("container:id:{node}")),
        "{selectors:?}"
    );
    assert!(
        selectors.contains(&"k8s:qos:besteffort".to_owned()),
        "{selectors:?}"
    );
}

/// Holds attestation at a known point until the test lets it go.
struct BarrierAttestor {
    entered: std::sync::Mutex<std::sync::mpsc::Sender<()>>,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl attestd_attestors::selector::Attestor for BarrierAttestor {
    fn name(&self) -> &'static str {
        "barrier"
    }
    fn attest(
        &self,
        _pid: i32,
    ) -> Result<
        Vec<attestd_attestors::selector::Selector>,
        attestd_attestors::selector::AttestorError,
    > {
        let _ = self.entered.lock().unwrap().send(());
        let _ = self.release.lock().unwrap().recv();
        Ok(Vec::new())
    }
}

/// A real child process connected to a listener of ours: (child, our end).
fn child_connection(dir: &Path) -> (std::process::Child, std::os::unix::net::UnixStream) {
    let path = dir.join("peer.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let child = Command::new(ATTESTD)
        .arg("describe")
        .arg("--socket")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (stream, _) = listener.accept().unwrap();
    (child, stream)
}

#[test]
fn the_pidfd_open_fallback_pins_the_caller_and_rejects_a_process_younger_than_the_accept() {
    use attestd::api::peer::{boot_time_ticks, Peer, PeerError, PidfdMethod};
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let procfs = attestd_attestors::procfs::ProcFs::new();
    let (mut child, stream) = child_connection(dir.path());
    let peer = Peer::identify_using(
        stream.as_raw_fd(),
        &procfs,
        boot_time_ticks(),
        PidfdMethod::PidfdOpen,
    )
    .unwrap();
    assert_eq!(peer.pidfd_source, "pidfd_open");
    assert_eq!(peer.pid as u32, child.id());
    assert!(peer.is_alive());
    // Pretend the connection was accepted before this process started: on an old
    // kernel that is exactly what a reused PID looks like.
    let reused = Peer::identify_using(stream.as_raw_fd(), &procfs, 0, PidfdMethod::PidfdOpen);
    assert!(
        matches!(reused, Err(PeerError::PidReused { .. })),
        "{reused:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!peer.is_alive(), "the pidfd reports the exit");
}

/// Accepts one connection from a real child process and identifies it as the
/// daemon would; returns the child and its peer.
fn connected_child(dir: &Path) -> (std::process::Child, attestd::api::peer::Peer) {
    let (child, stream) = child_connection(dir);
    use std::os::fd::AsRawFd;
    let peer = attestd::api::peer::Peer::identify(
        stream.as_raw_fd(),
        &attestd_attestors::procfs::ProcFs::new(),
        attestd::api::peer::boot_time_ticks(),
    )
    .unwrap();
    assert_eq!(peer.pid as u32, child.id());
    // Keep the connection open for as long as the child lives.
    std::mem::forget(stream);
    (child, peer)
}

fn barrier_attestor() -> (
    Arc<BarrierAttestor>,
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::Sender<()>,
) {
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    (
        Arc::new(BarrierAttestor {
            entered: std::sync::Mutex::new(entered_tx),
            release: std::sync::Mutex::new(release_rx),
        }),
        entered_rx,
        release_tx,
    )
}

fn workload_attestor(extra: Arc<BarrierAttestor>) -> attestd::workload::WorkloadAttestor {
    use attestd_attestors::binary::{BinaryDigestCache, BinaryDigestConfig};
    use attestd_attestors::procfs::ProcFs;
    let procfs = ProcFs::new();
    attestd::workload::WorkloadAttestor::new(
        vec![
            Arc::new(attestd_attestors::unix::UnixAttestor::new(procfs.clone())),
            extra,
        ],
        Arc::new(BinaryDigestCache::new(BinaryDigestConfig::default())),
        procfs,
        attestd_attestors::host::HostInfo::collect().unwrap(),
        Duration::from_secs(60),
    )
}

#[test]
fn a_caller_that_exits_during_attestation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (barrier, entered, release) = barrier_attestor();
    let workload = Arc::new(workload_attestor(barrier));
    let (mut child, peer) = connected_child(dir.path());
    let pending = {
        let workload = workload.clone();
        runtime.spawn(async move { workload.attest(&peer).await })
    };
    entered.recv().unwrap();
    // The attestors have read the caller's /proc entries; now the caller dies.
    child.kill().unwrap();
    child.wait().unwrap();
    release.send(()).unwrap();
    let result = runtime.block_on(pending).unwrap();
    assert!(
        matches!(result, Err(attestd::workload::WorkloadError::CallerGone)),
        "{result:?}"
    );
}

#[test]
fn a_caller_that_stays_is_attested_through_the_same_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (barrier, entered, release) = barrier_attestor();
    let workload = Arc::new(workload_attestor(barrier));
    let (mut child, peer) = connected_child(dir.path());
    let pending = {
        let workload = workload.clone();
        runtime.spawn(async move { workload.attest(&peer).await })
    };
    entered.recv().unwrap();
    release.send(()).unwrap();
    let attestation = runtime.block_on(pending).unwrap().unwrap();
    let selectors: Vec<String> = attestation
        .selectors
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        selectors.contains(&"unix:uid:0".to_owned()),
        "{selectors:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A caller that changes itself on command (tests/python/changing_peer.py),
/// connected to a listener of ours and identified as the daemon would.
struct ChangingPeer {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    peer: attestd::api::peer::Peer,
    _connection: std::os::unix::net::UnixStream,
}

impl ChangingPeer {
    fn start(dir: &Path) -> ChangingPeer {
        use std::os::fd::AsRawFd;
        let path = dir.join("changing.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut child = Command::new(venv_python())
            .arg(repo_root().join("tests/python/changing_peer.py"))
            .arg(&path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (connection, _) = listener.accept().unwrap();
        let peer = attestd::api::peer::Peer::identify(
            connection.as_raw_fd(),
            &attestd_attestors::procfs::ProcFs::new(),
            attestd::api::peer::boot_time_ticks(),
        )
        .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        assert_eq!(read_line(&mut stdout), "connected");
        ChangingPeer {
            child,
            stdin,
            stdout,
            peer,
            _connection: connection,
        }
    }

    /// Sends one line and waits for the reply line.
    fn command(&mut self, line: &str) -> String {
        self.send(line);
        read_line(&mut self.stdout)
    }

    fn send(&mut self, line: &str) {
        use std::io::Write;
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }
}

impl Drop for ChangingPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_line(reader: &mut impl std::io::BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

/// The daemon's attestors, with nothing added.
fn standard_workload_attestor() -> attestd::workload::WorkloadAttestor {
    use attestd_attestors::binary::{BinaryDigestCache, BinaryDigestConfig};
    use attestd_attestors::procfs::ProcFs;
    let procfs = ProcFs::new();
    attestd::workload::WorkloadAttestor::new(
        vec![
            Arc::new(attestd_attestors::unix::UnixAttestor::new(procfs.clone())),
            Arc::new(attestd_attestors::cgroup::CgroupAttestor::new(
                procfs.clone(),
            )),
        ],
        Arc::new(BinaryDigestCache::new(BinaryDigestConfig::default())),
        procfs,
        attestd_attestors::host::HostInfo::collect().unwrap(),
        Duration::from_secs(60),
    )
}

fn selector_strings(attestation: &attestd::workload::WorkloadAttestation) -> Vec<String> {
    attestation
        .selectors
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn an_unchanged_caller_gets_its_remembered_answer_without_attesting_again() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let workload = standard_workload_attestor();
    let caller = ChangingPeer::start(dir.path());
    let first = runtime.block_on(workload.attest(&caller.peer)).unwrap();
    let lookups = workload.binaries().stats();
    let second = runtime.block_on(workload.attest(&caller.peer)).unwrap();
    assert!(Arc::ptr_eq(&first, &second), "the answer was made again");
    assert_eq!(
        workload.binaries().stats(),
        lookups,
        "the digest cache was asked again"
    );
    assert!(first.outcomes.iter().all(|outcome| outcome.error.is_none()));
}

#[test]
fn a_caller_that_changes_its_groups_or_gid_is_attested_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let workload = standard_workload_attestor();
    let mut caller = ChangingPeer::start(dir.path());
    let before = runtime.block_on(workload.attest(&caller.peer)).unwrap();
    assert!(!selector_strings(&before).contains(&"unix:supplementary-gid:4242".to_owned()));

    assert_eq!(caller.command("groups 4242"), "ok");
    let after = runtime.block_on(workload.attest(&caller.peer)).unwrap();
    let selectors = selector_strings(&after);
    assert!(
        selectors.contains(&"unix:supplementary-gid:4242".to_owned()),
        "{selectors:?}"
    );

    assert_eq!(caller.command("gid 4343"), "ok");
    let selectors = selector_strings(&runtime.block_on(workload.attest(&caller.peer)).unwrap());
    assert!(
        selectors.contains(&"unix:gid:4343".to_owned()),
        "{selectors:?}"
    );
}

#[test]
fn a_caller_moved_to_another_cgroup_is_attested_afresh() {
    let root = cgroup_root().expect("cgroup v2, or the v1 pids hierarchy, is mounted");
    let container = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let workload = standard_workload_attestor();
    let caller = ChangingPeer::start(dir.path());
    let before = selector_strings(&runtime.block_on(workload.attest(&caller.peer)).unwrap());
    let selector = format!("container:id:{container}");
    assert!(!before.contains(&selector), "{before:?}");

    let cgroup = TestCgroup::create(&root, &format!("system.slice/docker-{container}.scope"));
    std::fs::write(
        cgroup.leaf.join("cgroup.procs"),
        caller.child.id().to_string(),
    )
    .unwrap();
    let after = selector_strings(&runtime.block_on(workload.attest(&caller.peer)).unwrap());
    assert!(after.contains(&selector), "{after:?}");
    // Out again before the cgroup is removed.
    drop(caller);
}

#[test]
fn a_caller_that_execs_another_binary_is_attested_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let workload = standard_workload_attestor();
    let mut caller = ChangingPeer::start(dir.path());
    let before = selector_strings(&runtime.block_on(workload.attest(&caller.peer)).unwrap());

    let cat = std::fs::canonicalize("/bin/cat").unwrap();
    caller.send(&format!("exec {}", cat.display()));
    // cat now holds the connection; an echoed line proves the exec happened.
    assert_eq!(caller.command("ping"), "ping");
    let after = selector_strings(&runtime.block_on(workload.attest(&caller.peer)).unwrap());
    let path = format!("unix:path:{}", cat.display());
    assert!(after.contains(&path), "{after:?}");
    let digest = format!("unix:sha256:{}", sha256_hex(&std::fs::read(&cat).unwrap()));
    assert!(after.contains(&digest), "{after:?}");
    assert!(!before.contains(&digest), "{before:?}");
}

#[test]
fn healthcheck_reports_serving_when_no_issuer_is_configured() {
    let daemon = TestDaemon::start();
    let mut command = Command::new(ATTESTD);
    command
        .arg("healthcheck")
        .arg("--socket")
        .arg(&daemon.socket);
    let output = run(command, Duration::from_secs(60));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "SERVING");
}
