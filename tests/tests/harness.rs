//! Self-tests of the swtpm harness: ports, EK certificates, PCR banks, kill and restart, checked with tpm2-tools and openssl.

use std::fs;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::thread;

use attestd_tests::swtpm::{Swtpm, SwtpmOptions, TestCa};

/// NV index of the RSA-2048 EK certificate (TCG EK Credential Profile).
const NV_EK_CERT_RSA2048: &str = "0x1C00002";
/// NV index of the ECC NIST P-384 EK certificate.
const NV_EK_CERT_ECC_P384: &str = "0x1C00016";

/// Runs a tpm2-tools command against `swtpm`. The TCTI goes in the child's
/// environment only: tests run in parallel threads and must not `set_var`.
/// `timeout` turns a hang into a failure with output instead of a stuck run.
fn tpm2(swtpm: &Swtpm, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("30")
        .args(args)
        .env("TPM2TOOLS_TCTI", swtpm.tcti())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", args[0]))
}

fn tpm2_ok(swtpm: &Swtpm, args: &[&str]) -> String {
    let output = tpm2(swtpm, args);
    assert!(
        output.status.success(),
        "{} failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn nv_indices(swtpm: &Swtpm) -> String {
    tpm2_ok(swtpm, &["tpm2_getcap", "handles-nv-index"])
}

fn read_nv(swtpm: &Swtpm, index: &str, out: &Path) -> Vec<u8> {
    let out_arg = out.to_str().expect("temp paths are UTF-8");
    tpm2_ok(swtpm, &["tpm2_nvread", index, "-o", out_arg]);
    fs::read(out).expect("tpm2_nvread wrote its output file")
}

fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `openssl verify -CAfile root -untrusted intermediate` on a DER certificate.
fn openssl_verify(ca: &TestCa, der: &Path) -> Output {
    let pem = der.with_extension("pem");
    let converted = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-in"])
        .arg(der)
        .arg("-out")
        .arg(&pem)
        .output()
        .expect("openssl runs");
    assert!(
        converted.status.success(),
        "openssl x509 cannot parse {}: {}",
        der.display(),
        String::from_utf8_lossy(&converted.stderr)
    );
    Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(ca.root_cert_pem())
        .arg("-untrusted")
        .arg(ca.intermediate_cert_pem())
        .arg(&pem)
        .output()
        .expect("openssl runs")
}

#[test]
fn tpm2_tools_reach_a_started_swtpm_through_its_tcti() {
    let swtpm = Swtpm::start().unwrap();
    let tcti = swtpm.tcti();
    assert_eq!(tcti, format!("swtpm:host=127.0.0.1,port={}", swtpm.port()));
    let properties = tpm2_ok(&swtpm, &["tpm2_getcap", "properties-fixed"]);
    assert!(
        properties.contains("TPM2_PT_FAMILY_INDICATOR"),
        "{properties}"
    );
    assert!(swtpm.state_dir().is_dir());
}

#[test]
fn two_swtpms_at_once_get_distinct_port_pairs_and_share_a_ca() {
    let ca = Arc::new(TestCa::new().unwrap());
    let options = SwtpmOptions {
        ca: Some(Arc::clone(&ca)),
        ..SwtpmOptions::default()
    };
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let options = options.clone();
            thread::spawn(move || Swtpm::start_with(options).unwrap())
        })
        .collect();
    let swtpms: Vec<Swtpm> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    let (a, b) = (swtpms[0].port(), swtpms[1].port());
    // Each owns N and N + 1: the pairs must not overlap at all.
    assert!(a.abs_diff(b) >= 2, "port pairs overlap: {a} and {b}");
    assert_ne!(swtpms[0].state_dir(), swtpms[1].state_dir());
    for swtpm in &swtpms {
        assert!(Arc::ptr_eq(swtpm.ca(), &ca));
        tpm2_ok(swtpm, &["tpm2_getcap", "properties-fixed"]);
    }
    // Two TPMs, two different EKs.
    let scratch = tempfile::tempdir().unwrap();
    let first = read_nv(
        &swtpms[0],
        NV_EK_CERT_RSA2048,
        &scratch.path().join("a.der"),
    );
    let second = read_nv(
        &swtpms[1],
        NV_EK_CERT_RSA2048,
        &scratch.path().join("b.der"),
    );
    assert_ne!(first, second);
}

#[test]
fn ek_certificates_are_in_their_tcg_nv_indices() {
    let swtpm = Swtpm::start().unwrap();
    let indices = nv_indices(&swtpm);
    assert!(indices.contains(NV_EK_CERT_RSA2048), "{indices}");
    assert!(indices.contains(NV_EK_CERT_ECC_P384), "{indices}");
}

#[test]
fn ek_certificates_chain_to_the_test_ca() {
    if !openssl_available() {
        eprintln!("skipped: openssl is not installed");
        return;
    }
    let swtpm = Swtpm::start().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    for (index, name) in [(NV_EK_CERT_RSA2048, "rsa"), (NV_EK_CERT_ECC_P384, "ecc")] {
        let der = scratch.path().join(format!("ek-{name}.der"));
        read_nv(&swtpm, index, &der);
        let verdict = openssl_verify(swtpm.ca(), &der);
        assert!(
            verdict.status.success(),
            "EK cert at {index} does not verify: {}{}",
            String::from_utf8_lossy(&verdict.stdout),
            String::from_utf8_lossy(&verdict.stderr)
        );
    }
}

#[test]
fn ek_certificate_does_not_verify_against_another_ca() {
    if !openssl_available() {
        eprintln!("skipped: openssl is not installed");
        return;
    }
    let swtpm = Swtpm::start().unwrap();
    let stranger = TestCa::new().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let der = scratch.path().join("ek.der");
    read_nv(&swtpm, NV_EK_CERT_RSA2048, &der);
    assert!(!openssl_verify(&stranger, &der).status.success());
}

#[test]
fn without_ek_certs_the_tpm_has_no_ek_certificate() {
    let swtpm = Swtpm::start_with(SwtpmOptions {
        ek_certs: false,
        ..SwtpmOptions::default()
    })
    .unwrap();
    let indices = nv_indices(&swtpm);
    assert!(!indices.contains(NV_EK_CERT_RSA2048), "{indices}");
    assert!(!indices.contains(NV_EK_CERT_ECC_P384), "{indices}");
}

#[test]
fn only_the_requested_pcr_banks_are_active() {
    let bank_line = |pcrs: &str, bank: &str| {
        pcrs.lines()
            .find(|line| line.trim_start().starts_with(&format!("- {bank}:")))
            .unwrap_or_else(|| panic!("no {bank} line in {pcrs}"))
            .to_owned()
    };
    let active = |line: &str| !line.contains("[ ]");

    let default = Swtpm::start().unwrap();
    let pcrs = tpm2_ok(&default, &["tpm2_getcap", "pcrs"]);
    assert!(active(&bank_line(&pcrs, "sha256")), "{pcrs}");
    assert!(!active(&bank_line(&pcrs, "sha1")), "{pcrs}");

    let both = Swtpm::start_with(SwtpmOptions {
        pcr_banks: vec!["sha1".into(), "sha256".into()],
        ca: Some(Arc::clone(default.ca())),
        ..SwtpmOptions::default()
    })
    .unwrap();
    let pcrs = tpm2_ok(&both, &["tpm2_getcap", "pcrs"]);
    assert!(active(&bank_line(&pcrs, "sha1")), "{pcrs}");
    assert!(active(&bank_line(&pcrs, "sha256")), "{pcrs}");
    assert!(!active(&bank_line(&pcrs, "sha384")), "{pcrs}");
}

#[test]
fn an_empty_pcr_bank_list_is_refused() {
    let err = Swtpm::start_with(SwtpmOptions {
        pcr_banks: Vec::new(),
        ..SwtpmOptions::default()
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[test]
fn a_killed_swtpm_refuses_clients_and_a_restarted_one_is_the_same_tpm() {
    let mut swtpm = Swtpm::start().unwrap();
    let tcti = swtpm.tcti();
    let scratch = tempfile::tempdir().unwrap();
    let before = read_nv(
        &swtpm,
        NV_EK_CERT_RSA2048,
        &scratch.path().join("before.der"),
    );
    // Volatile state that a restart must lose.
    tpm2_ok(
        &swtpm,
        &["tpm2_pcrextend", &format!("16:sha256={}", "ab".repeat(32))],
    );

    swtpm.kill();
    let refused = tpm2(&swtpm, &["tpm2_getcap", "properties-fixed"]);
    assert!(
        !refused.status.success(),
        "tpm2_getcap worked on a killed swtpm"
    );
    // Exit 124 would be `timeout`: the client must fail, not hang.
    assert_ne!(refused.status.code(), Some(124), "tpm2_getcap hung");
    swtpm.kill(); // a second kill is a no-op

    swtpm.restart().unwrap();
    assert_eq!(swtpm.tcti(), tcti);
    let after = read_nv(
        &swtpm,
        NV_EK_CERT_RSA2048,
        &scratch.path().join("after.der"),
    );
    assert_eq!(before, after, "the restarted TPM has a different EK cert");
    let pcr16 = tpm2_ok(&swtpm, &["tpm2_pcrread", "sha256:16"]);
    assert!(pcr16.contains(&format!("0x{}", "00".repeat(32))), "{pcr16}");
}

#[test]
fn restart_reports_a_port_taken_while_the_tpm_was_down() {
    let mut swtpm = Swtpm::start().unwrap();
    swtpm.kill();
    let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, swtpm.port())).unwrap();
    let err = swtpm.restart().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
    drop(squatter);
    swtpm.restart().unwrap();
    tpm2_ok(&swtpm, &["tpm2_getcap", "properties-fixed"]);
}

#[test]
fn restart_of_a_running_swtpm_replaces_it() {
    let mut swtpm = Swtpm::start().unwrap();
    swtpm.restart().unwrap();
    tpm2_ok(&swtpm, &["tpm2_getcap", "properties-fixed"]);
}

#[test]
fn dropping_a_swtpm_closes_its_ports_and_removes_its_state() {
    let swtpm = Swtpm::start().unwrap();
    let port = swtpm.port();
    let state_dir = swtpm.state_dir().to_path_buf();
    assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok());
    drop(swtpm);
    assert!(
        !state_dir.exists(),
        "{} survived the drop",
        state_dir.display()
    );
    for port in [port, port + 1] {
        assert!(
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
            "port {port} still accepts after the drop"
        );
    }
}

#[test]
fn a_panicking_test_still_kills_its_swtpm() {
    let (ports_tx, ports_rx) = std::sync::mpsc::channel();
    let outcome = thread::spawn(move || {
        let swtpm = Swtpm::start().unwrap();
        ports_tx.send(swtpm.port()).unwrap();
        panic!("a test failing while it owns a swtpm");
    })
    .join();
    assert!(outcome.is_err());
    let port = ports_rx.recv().unwrap();
    for port in [port, port + 1] {
        assert!(
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
            "port {port} still accepts after the panic"
        );
    }
}

#[test]
fn a_test_ca_has_its_root_and_intermediate_at_once() {
    let ca = TestCa::new().unwrap();
    let root = fs::read_to_string(ca.root_cert_pem()).unwrap();
    let intermediate = fs::read_to_string(ca.intermediate_cert_pem()).unwrap();
    assert!(root.starts_with("-----BEGIN CERTIFICATE-----"), "{root}");
    assert!(
        intermediate.starts_with("-----BEGIN CERTIFICATE-----"),
        "{intermediate}"
    );
    assert_ne!(root, intermediate);
}
