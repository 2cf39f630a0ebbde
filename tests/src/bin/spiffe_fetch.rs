//! A SPIFFE workload built on the Rust `spiffe` crate, a Workload API client
//! that is not ours. The end-to-end tests run it as other uids, so that the
//! daemon attests real, separate processes.
//!
//!   spiffe_fetch SOCKET x509 OUT_DIR   writes svid.pem, key.pem (0600), bundle.pem; prints the SPIFFE ID
//!   spiffe_fetch SOCKET jwt AUDIENCE OUT_DIR   writes token.jwt; prints the SPIFFE ID
//!   spiffe_fetch SOCKET x509-watch   prints `update <SPIFFE ID> <leaf SHA-256>` per
//!       X.509-SVID update, flushed, until the stream ends (then `ended`) or it is killed
//!   spiffe_fetch SOCKET x509-fork-watch   the same, but after the first update the
//!       process forks and the parent exits: the child reads on over the connection
//!       it inherited, and prints `ended` when the daemon ends the stream
//!
//! Exit status 0 on success; 1 with the Workload API's error on stderr.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;

fn pem_all<'a>(tag: &str, ders: impl IntoIterator<Item = &'a [u8]>) -> String {
    ders.into_iter()
        .map(|der| pem::encode(&pem::Pem::new(tag, der.to_vec())))
        .collect()
}

async fn run(args: &[String]) -> Result<String, String> {
    let (socket, command, rest) = match args {
        [socket, command, rest @ ..] => (socket, command.as_str(), rest),
        _ => return Err("usage: spiffe_fetch SOCKET x509 OUT_DIR | jwt AUDIENCE OUT_DIR".into()),
    };
    let client = spiffe::WorkloadApiClient::connect_to(format!("unix:{socket}"))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    match (command, rest) {
        ("x509", [out]) => {
            let out = Path::new(out);
            let svid = client
                .fetch_x509_svid()
                .await
                .map_err(|e| format!("FetchX509SVID: {e}"))?;
            let bundles = client
                .fetch_x509_bundles()
                .await
                .map_err(|e| format!("FetchX509Bundles: {e}"))?;
            let bundle = bundles
                .get(svid.spiffe_id().trust_domain())
                .ok_or("no bundle for the SVID's trust domain")?;
            let write = |name: &str, text: String| {
                std::fs::write(out.join(name), text).map_err(|e| format!("{name}: {e}"))
            };
            write(
                "svid.pem",
                pem_all("CERTIFICATE", svid.cert_chain().iter().map(AsRef::as_ref)),
            )?;
            write(
                "bundle.pem",
                pem_all(
                    "CERTIFICATE",
                    bundle.authorities().iter().map(AsRef::as_ref),
                ),
            )?;
            let mut key = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(out.join("key.pem"))
                .map_err(|e| format!("key.pem: {e}"))?;
            key.write_all(pem_all("PRIVATE KEY", [svid.private_key().as_ref()]).as_bytes())
                .map_err(|e| format!("key.pem: {e}"))?;
            Ok(svid.spiffe_id().to_string())
        }
        ("jwt", [audience, out]) => {
            let svid = client
                .fetch_jwt_svid([audience.as_str()], None)
                .await
                .map_err(|e| format!("FetchJWTSVID: {e}"))?;
            std::fs::write(Path::new(out).join("token.jwt"), svid.token())
                .map_err(|e| format!("token.jwt: {e}"))?;
            Ok(svid.spiffe_id().to_string())
        }
        ("x509-watch", []) | ("x509-fork-watch", []) => {
            let mut fork_after_first = command == "x509-fork-watch";
            use tokio_stream::StreamExt;
            let mut updates = client
                .stream_x509_svids()
                .await
                .map_err(|e| format!("FetchX509SVID: {e}"))?;
            let mut stdout = std::io::stdout();
            while let Some(update) = updates.next().await {
                let svid = update.map_err(|e| format!("FetchX509SVID stream: {e}"))?;
                let leaf = svid.leaf().as_ref();
                let digest = sha256_hex(leaf);
                writeln!(stdout, "update {} {digest}", svid.spiffe_id())
                    .and_then(|()| stdout.flush())
                    .map_err(|e| format!("stdout: {e}"))?;
                if fork_after_first {
                    // SAFETY: a current-thread runtime: this process has one
                    // thread, so the child is a full copy; the parent leaves
                    // at once through _exit, running no destructors.
                    match unsafe { libc::fork() } {
                        -1 => return Err("fork failed".into()),
                        0 => fork_after_first = false,
                        _ => unsafe { libc::_exit(0) },
                    }
                }
            }
            Ok("ended".into())
        }
        _ => Err(
            "usage: spiffe_fetch SOCKET x509 OUT_DIR | jwt AUDIENCE OUT_DIR | x509-watch | x509-fork-watch".into(),
        ),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(spiffe_id) => {
            println!("{spiffe_id}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("spiffe_fetch: {error}");
            ExitCode::FAILURE
        }
    }
}
