//! Bad input to the daemon: none of it may crash the daemon or stall other callers.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use attestd_proto::v1::attestation_client::AttestationClient;
use attestd_proto::v1::AttestRequest;
use common::*;

const NOBODY: u32 = 65534;

/// A hang here is the bug under test: fail it instead of stalling the run.
fn block_on_with_deadline(
    runtime: &tokio::runtime::Runtime,
    test: impl std::future::Future<Output = ()>,
) {
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), test).await })
        .expect("the daemon stalled: the test did not finish within 60 s");
}

async fn client(daemon: &TestDaemon) -> AttestationClient<tonic::transport::Channel> {
    let channel = attestd::api::client::connect(&daemon.socket).await.unwrap();
    AttestationClient::new(channel).max_encoding_message_size(8 << 20)
}

fn attest_request(nonce_len: usize) -> AttestRequest {
    AttestRequest {
        nonce: vec![7; nonce_len],
        audience: String::new(),
        hardware_fresh: false,
    }
}

#[test]
fn nonces_outside_8_to_64_bytes_are_invalid_arguments() {
    let daemon = TestDaemon::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    block_on_with_deadline(&runtime, async {
        let mut client = client(&daemon).await;
        for len in [0, 7, 65, 1000] {
            let status = client.attest(attest_request(len)).await.unwrap_err();
            assert_eq!(
                status.code(),
                tonic::Code::InvalidArgument,
                "{len}: {status:?}"
            );
            assert!(status.message().contains("8 to 64"), "{status:?}");
        }
        for len in [8, 64] {
            client.attest(attest_request(len)).await.unwrap();
        }
    });
}

#[test]
fn hardware_fresh_evidence_without_a_tpm_is_a_failed_precondition() {
    let daemon = TestDaemon::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    block_on_with_deadline(&runtime, async {
        let mut client = client(&daemon).await;
        let status = client
            .attest(AttestRequest {
                hardware_fresh: true,
                ..attest_request(16)
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
        assert!(status.message().contains("tpm.enabled"), "{status:?}");
        // Plain evidence is still served.
        client.attest(attest_request(16)).await.unwrap();
    });
}

#[test]
fn an_oversized_message_is_refused_and_the_daemon_keeps_serving() {
    let daemon = TestDaemon::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    block_on_with_deadline(&runtime, async {
        let mut big = client(&daemon).await;
        let status = big.attest(attest_request(1 << 20)).await.unwrap_err();
        assert_ne!(status.code(), tonic::Code::Ok);
        assert_ne!(
            status.code(),
            tonic::Code::InvalidArgument,
            "refused by size, not by content"
        );
        let mut next = client(&daemon).await;
        next.attest(attest_request(32)).await.unwrap();
    });
}

/// A process, as `nobody`, that opens `count` connections and holds them until
/// its stdin closes.
fn flood(daemon: &TestDaemon, count: usize) -> std::process::Child {
    let script = format!(
        "import os, socket, sys\n\
         os.setgroups([])\n\
         os.setresgid({NOBODY}, {NOBODY}, {NOBODY})\n\
         os.setresuid({NOBODY}, {NOBODY}, {NOBODY})\n\
         held = []\n\
         for _ in range({count}):\n\
         \x20   s = socket.socket(socket.AF_UNIX)\n\
         \x20   s.connect({:?})\n\
         \x20   held.append(s)\n\
         print('holding', len(held), flush=True)\n\
         sys.stdin.read()\n",
        daemon.socket.display().to_string()
    );
    // The script drops to nobody itself: the interpreter may live under /root.
    let mut child = Command::new(venv_python())
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), format!("holding {count}"));
    child
}

#[test]
fn a_flood_of_1000_connections_from_one_user_does_not_lock_out_others() {
    let daemon = TestDaemon::start();
    let mut flooder = flood(&daemon, 1000);
    // Root's calls go through while nobody holds 1000 connections.
    for _ in 0..3 {
        let selectors = daemon.describe();
        assert!(
            selectors.contains(&"unix:uid:0".to_owned()),
            "{selectors:?}"
        );
    }
    drop(flooder.stdin.take());
    flooder.wait().unwrap();
    // Once the flood is gone, nobody is served again.
    let output = daemon.describe_as(std::path::Path::new(ATTESTD), Some(NOBODY));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(selectors(&output).contains(&format!("unix:uid:{NOBODY}")));
}

#[test]
fn a_caller_that_never_reads_does_not_stall_others() {
    let daemon = TestDaemon::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    block_on_with_deadline(&runtime, async {
        // An HTTP/2 client that grants the server no window: responses can never be
        // sent, and this client never reads anyway.
        let stream = tokio::net::UnixStream::connect(&daemon.socket)
            .await
            .unwrap();
        let (mut send, connection) = h2::client::Builder::new()
            .initial_window_size(0)
            .handshake::<_, bytes::Bytes>(stream)
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let body = {
            use prost::Message;
            let message = attest_request(32).encode_to_vec();
            let mut framed = vec![0u8];
            framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
            framed.extend_from_slice(&message);
            bytes::Bytes::from(framed)
        };
        let mut stalled = Vec::new();
        for _ in 0..16 {
            let request = http::Request::builder()
                .method("POST")
                .uri("http://attestd.invalid/attestd.v1.Attestation/Attest")
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(())
                .unwrap();
            let Ok((response, mut stream)) = send.send_request(request, false) else {
                break;
            };
            let _ = stream.send_data(body.clone(), true);
            stalled.push(response);
        }
        // Meanwhile a well-behaved caller is served, repeatedly.
        for _ in 0..5 {
            let mut ok = client(&daemon).await;
            ok.attest(attest_request(32)).await.unwrap();
        }
        drop(stalled);
    });
}

#[test]
fn a_one_gib_binary_is_hashed_once_and_cached() {
    let daemon = TestDaemon::start_with(Options {
        tune: Box::new(|config| {
            config.attestors.deadline_ms = 60_000;
            // The file is made a moment before it runs; see docs/binary-cache.md.
            config.binary.racy_window_ms = 0;
        }),
        ..Options::default()
    });
    let bin = daemon.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let big = copy_of_attestd(&bin, "big");
    // Sparse zeros after the ELF image: 1 GiB on paper, quick to make.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let first = daemon.describe_as(&big, None);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let digest = find(&selectors(&first), "unix:sha256:").map(str::to_owned);
    // Another caller is served normally.
    assert!(daemon.describe().contains(&"unix:uid:0".to_owned()));
    let second = daemon.describe_as(&big, None);
    assert!(second.status.success());
    let again = find(&selectors(&second), "unix:sha256:").map(str::to_owned);
    let expected = {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        let mut file = std::fs::File::open(&big).unwrap();
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            use std::io::Read;
            let n = file.read(&mut buffer).unwrap();
            if n == 0 {
                break;
            }
            context.update(&buffer[..n]);
        }
        hex::encode(context.finish())
    };
    assert_eq!(again.as_deref(), Some(expected.as_str()));
    if let Some(digest) = digest {
        assert_eq!(digest, expected);
    }
    assert!(
        daemon.binaries.stats().hits >= 1,
        "the second call is a cache hit"
    );
}

#[test]
fn a_process_name_with_newlines_and_odd_bytes_is_described_safely() {
    let daemon = TestDaemon::start();
    let bin = daemon.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let odd = copy_of_attestd(&bin, "odd\nname) (\u{1}\u{7f}é");
    let output = daemon.describe_as(&odd, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let selectors = selectors(&output);
    assert!(
        selectors.contains(&"unix:uid:0".to_owned()),
        "{selectors:?}"
    );
    // Every selector is one printable line: the newline did not split one in two.
    for selector in &selectors {
        assert!(!selector.chars().any(|c| c.is_control()), "{selector:?}");
        assert!(selector.splitn(3, ':').count() == 3, "{selector:?}");
    }
    assert!(find(&selectors, "unix:sha256:").is_some(), "{selectors:?}");
}
