//! `attestd quote` against a real swtpm, checked by verifiers we did not write:
//! tpm2-tools' `tpm2_checkquote` and keylime's `checkquote`.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use attestd_tests::swtpm::Swtpm;
use common::{repo_root, run, venv_python};

const NONCE: &str = "0badc0ffee0ddf00d0123456789abcdef0";
const PCRS: &str = "sha256:0,1,2,3,4,5,6,7";

fn attestd(swtpm: &Swtpm, state_dir: &Path, out: &Path, nonce: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_attestd"));
    command
        .arg("quote")
        .arg("--tcti")
        .arg(swtpm.tcti())
        .arg("--state-dir")
        .arg(state_dir)
        .arg("--nonce")
        .arg(nonce)
        .arg("--pcrs")
        .arg(PCRS)
        .arg("--out")
        .arg(out);
    run(command, Duration::from_secs(60))
}

fn quote_ok(swtpm: &Swtpm, state_dir: &Path, out: &Path, nonce: &str) {
    let output = attestd(swtpm, state_dir, out, nonce);
    assert!(
        output.status.success(),
        "attestd quote failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("verified    attestd-verifier"), "{stdout}");
}

fn checkquote(dir: &Path, nonce: &str) -> Output {
    run(
        attestd_tests::tpm2_checkquote(dir, nonce),
        Duration::from_secs(30),
    )
}

fn keylime_checkquote(dir: &Path, nonce: &str) -> Output {
    let mut command = Command::new(venv_python());
    command
        .arg(repo_root().join("tests/python/keylime_checkquote.py"))
        .arg(dir)
        .arg(nonce);
    run(command, Duration::from_secs(60))
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = offset.min(bytes.len() - 1);
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn tpm2_checkquote_accepts_our_quote_and_rejects_tampering() {
    let swtpm = Swtpm::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("quote");
    quote_ok(&swtpm, &work.path().join("state"), &out, NONCE);

    let good = checkquote(&out, NONCE);
    assert!(
        good.status.success(),
        "tpm2_checkquote rejected our quote: {}",
        String::from_utf8_lossy(&good.stderr)
    );

    let wrong_nonce = checkquote(&out, "0badc0ffee0ddf00d0123456789abcdef1");
    assert!(
        !wrong_nonce.status.success(),
        "a different nonce was accepted"
    );

    let tampered = work.path().join("tampered");
    copy_dir(&out, &tampered);
    // Byte 40 sits in the clock info, well past the magic and type.
    flip_byte(&tampered.join("quote.msg"), 40);
    let bad = checkquote(&tampered, NONCE);
    assert!(!bad.status.success(), "a tampered quote.msg was accepted");
}

#[test]
fn keylime_checkquote_accepts_our_quote_and_rejects_tampering() {
    let swtpm = Swtpm::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("quote");
    quote_ok(&swtpm, &work.path().join("state"), &out, NONCE);

    let good = keylime_checkquote(&out, NONCE);
    assert!(
        good.status.success(),
        "keylime rejected our quote: {}{}",
        String::from_utf8_lossy(&good.stdout),
        String::from_utf8_lossy(&good.stderr)
    );
    let wrong_nonce = keylime_checkquote(&out, "0badc0ffee0ddf00d0123456789abcdef1");
    assert_eq!(
        wrong_nonce.status.code(),
        Some(1),
        "keylime accepted a wrong nonce"
    );

    flip_byte(&out.join("quote.msg"), 40);
    let bad = keylime_checkquote(&out, NONCE);
    assert_eq!(
        bad.status.code(),
        Some(1),
        "keylime accepted a tampered quote"
    );
}

fn quote_with_ak(swtpm: &Swtpm, state: &Path, out: &Path, ak: &str) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_attestd"));
    command
        .args(["quote", "--tcti", &swtpm.tcti(), "--ak-algorithm", ak])
        .arg("--state-dir")
        .arg(state)
        .args(["--nonce", NONCE, "--pcrs", PCRS, "--out"])
        .arg(out);
    let output = run(command, Duration::from_secs(60));
    assert!(
        output.status.success(),
        "{ak}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn rsassa_ak_quotes_verify_with_tpm2_checkquote() {
    let swtpm = Swtpm::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("rsa");
    quote_with_ak(&swtpm, &work.path().join("state"), &out, "rsa2048");
    let checked = checkquote(&out, NONCE);
    assert!(
        checked.status.success(),
        "tpm2_checkquote: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// tpm2_checkquote 5.4 rejects RSA-PSS quotes even from tpm2_quote itself, and
/// keylime refuses PSS, so the PSS signature is checked with OpenSSL directly.
#[test]
fn rsapss_ak_quote_signature_verifies_with_openssl() {
    let swtpm = Swtpm::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("pss");
    quote_with_ak(&swtpm, &work.path().join("state"), &out, "rsa2048-pss");
    // TPMT_SIGNATURE for RSAPSS: sigAlg (2), hash (2), TPM2B size (2), signature.
    let signature = std::fs::read(out.join("quote.sig")).unwrap();
    assert_eq!(
        &signature[..4],
        &[0x00, 0x16, 0x00, 0x0b],
        "RSAPSS with SHA-256"
    );
    std::fs::write(out.join("raw.sig"), &signature[6..]).unwrap();
    let openssl = |message: &Path| {
        let mut command = Command::new("openssl");
        command
            .args(["dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss"])
            .args(["-sigopt", "rsa_pss_saltlen:auto", "-verify"])
            .arg(out.join("ak.pem"))
            .arg("-signature")
            .arg(out.join("raw.sig"))
            .arg(message);
        run(command, Duration::from_secs(30))
    };
    let good = openssl(&out.join("quote.msg"));
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stdout)
    );
    flip_byte(&out.join("quote.msg"), 40);
    assert!(!openssl(&out.join("quote.msg")).status.success());
}

#[test]
fn ak_name_is_unchanged_across_process_restarts() {
    let swtpm = Swtpm::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    quote_ok(&swtpm, &state, &work.path().join("first"), NONCE);
    quote_ok(&swtpm, &state, &work.path().join("second"), NONCE);
    let first = std::fs::read(work.path().join("first/ak.name")).unwrap();
    let second = std::fs::read(work.path().join("second/ak.name")).unwrap();
    assert_eq!(first.len(), 34, "sha256 name: 2-byte alg + 32-byte digest");
    assert_eq!(first, second, "a restart must reload the same AK");

    // A fresh state directory really does mint a new AK, so the equality above
    // is not an accident of the TPM handing out one key.
    quote_ok(
        &swtpm,
        &work.path().join("other-state"),
        &work.path().join("third"),
        NONCE,
    );
    let third = std::fs::read(work.path().join("third/ak.name")).unwrap();
    assert_ne!(first, third);

    // The stored blob is key material: 0600, in a 0700 directory.
    use std::os::unix::fs::PermissionsExt;
    let stored = std::fs::read_dir(&state).unwrap().next().unwrap().unwrap();
    assert_eq!(
        stored.metadata().unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

fn tpm2_tool(swtpm: &Swtpm, args: &[&str], dir: &Path) {
    let mut command = Command::new(args[0]);
    command
        .env("TPM2TOOLS_TCTI", swtpm.tcti())
        .current_dir(dir)
        .args(&args[1..]);
    let output = run(command, Duration::from_secs(30));
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // tpm2-tools leave objects loaded; swtpm has three slots and no resource manager.
    let mut flush = Command::new("tpm2_flushcontext");
    flush.env("TPM2TOOLS_TCTI", swtpm.tcti()).arg("-t");
    run(flush, Duration::from_secs(30));
}

#[test]
fn exported_pcr_file_matches_tpm2_quote_byte_for_byte() {
    let swtpm = Swtpm::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    // Non-zero values in two PCRs, so a shuffled or misplaced digest shows.
    for (pcr, byte) in [(0, "11"), (7, "77")] {
        let extend = format!("{pcr}:sha256={}", byte.repeat(32));
        tpm2_tool(&swtpm, &["tpm2_pcrextend", &extend], dir);
    }
    tpm2_tool(
        &swtpm,
        &["tpm2_createek", "-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub"],
        dir,
    );
    tpm2_tool(
        &swtpm,
        &[
            "tpm2_createak",
            "-C",
            "ek.ctx",
            "-c",
            "ak.ctx",
            "-G",
            "ecc",
            "-u",
            "ak.pub",
        ],
        dir,
    );
    tpm2_tool(
        &swtpm,
        &[
            "tpm2_quote",
            "-c",
            "ak.ctx",
            "-l",
            PCRS,
            "-q",
            NONCE,
            "-m",
            "ref.msg",
        ]
        .into_iter()
        .chain(["-s", "ref.sig", "-o", "ref.pcrs", "-g", "sha256"])
        .collect::<Vec<_>>(),
        dir,
    );
    let out = dir.join("quote");
    quote_ok(&swtpm, &dir.join("state"), &out, NONCE);
    let ours = std::fs::read(out.join("quote.pcrs")).unwrap();
    assert_eq!(ours.len(), 668);
    assert_eq!(ours, std::fs::read(dir.join("ref.pcrs")).unwrap());
}

#[test]
fn killed_swtpm_gives_a_clear_error_not_a_hang() {
    let mut swtpm = Swtpm::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    swtpm.kill();
    let output = attestd(
        &swtpm,
        &work.path().join("state"),
        &work.path().join("q"),
        NONCE,
    );
    assert_eq!(output.status.code(), Some(69));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("TPM connection") || stderr.contains("connecting to the TPM"),
        "unclear error: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn oversized_nonce_is_refused_before_touching_the_tpm() {
    let swtpm = Swtpm::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let output = attestd(
        &swtpm,
        &work.path().join("state"),
        &work.path().join("q"),
        &"ab".repeat(65),
    );
    assert_eq!(output.status.code(), Some(2), "clap usage error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("at most 64 bytes"));
    assert!(
        !work.path().join("state").exists(),
        "no AK should be created"
    );
}

/// `attestd ek show` prints the allowlist line the issuer wants and the EK
/// certificate; openssl, reading only the printed PEM, must find the same hash
/// (SHA-256 of the certified key's SubjectPublicKeyInfo) and the same subject.
#[test]
fn ek_show_prints_the_allowlist_hash_and_the_certificate_openssl_agrees_with() {
    let swtpm = Swtpm::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_attestd"));
    command
        .args(["ek", "show", "--tcti", &swtpm.tcti(), "--roots"])
        .arg(swtpm.ca().root_cert_pem())
        .arg("--intermediates")
        .arg(swtpm.ca().intermediate_cert_pem());
    let output = run(command, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("verified     attestd-verifier"), "{stdout}");
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|line| line.trim_start().strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} line in {stdout}"))
            .to_owned()
    };
    let allowlist = field("allowlist ");
    assert_eq!(field("public key "), format!("sha256:{allowlist}"));

    let pem_start = stdout.find("-----BEGIN CERTIFICATE-----").expect("PEM");
    let pem_path = work.path().join("ek.pem");
    std::fs::write(&pem_path, &stdout[pem_start..]).unwrap();
    let openssl = |args: &[&str], input: Option<&[u8]>| -> Vec<u8> {
        use std::io::Write;
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.unwrap_or_default())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "openssl {args:?}");
        output.stdout
    };
    let pem_arg = pem_path.to_str().unwrap();
    let spki_pem = openssl(&["x509", "-in", pem_arg, "-noout", "-pubkey"], None);
    let spki_der = openssl(&["pkey", "-pubin", "-outform", "DER"], Some(&spki_pem));
    assert_eq!(allowlist, common::sha256_hex(&spki_der));
    let subject = String::from_utf8(openssl(
        &["x509", "-in", pem_arg, "-noout", "-issuer"],
        None,
    ))
    .unwrap();
    assert!(
        subject.contains("swtpm-localca"),
        "openssl reads the issuer from the printed PEM: {subject}"
    );
    assert!(field("issuer ").contains("swtpm-localca"), "{stdout}");
}
