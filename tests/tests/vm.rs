//! The VM tests (`vm-tests/run.sh`, see vm-tests/README.md): QEMU guests
//! under TCG with OVMF measured boot and a swtpm vTPM, attestd inside the
//! guest, attestd-issuer on the host.
//!
//! They need root and take several minutes, so on a developer's machine they
//! run only when they can (root, QEMU, OVMF, swtpm, a kernel in /boot) and
//! otherwise this test says why it skipped and passes. With `CI=true` or
//! `ATTESTD_VM_TESTS=1` they always run (run.sh installs what is missing), and
//! a machine that cannot run them fails the test. `ATTESTD_VM_TESTS=0` skips
//! them outside CI.
//!
//! `.config/nextest.toml` gives this test all test threads, so no other test
//! competes with the guests for the two cores.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The scenarios run.sh prints a line for, in order.
const SCENARIOS: [&str; 6] = [
    "clean-boot",
    "eventlog-replay",
    "reboot-same-node",
    "changed-cmdline",
    "changed-initrd",
    "unenrolled-ek",
];

fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn has_kernel() -> bool {
    std::fs::read_dir("/boot").is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix("vmlinuz-").is_some_and(|version| {
                Path::new("/lib/modules")
                    .join(version)
                    .join("modules.dep")
                    .is_file()
            })
        })
    })
}

/// Why the VM tests cannot run here, if they cannot.
fn cannot_run() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (run.sh needs root for swtpm, 9p passthrough and chroot)".into());
    }
    for (program, package) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("swtpm", "swtpm"),
        ("swtpm_setup", "swtpm-tools"),
        ("debootstrap", "debootstrap"),
        ("socat", "socat"),
    ] {
        if !in_path(program) {
            return Some(format!(
                "{program} not installed (Debian package {package})"
            ));
        }
    }
    if !Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd").is_file() {
        return Some(
            "OVMF not installed (/usr/share/OVMF/OVMF_CODE_4M.fd, Debian package ovmf)".into(),
        );
    }
    if !has_kernel() {
        return Some("no kernel with modules in /boot (Debian package linux-image-amd64)".into());
    }
    None
}

/// Writes where `make test` shows it even when the test passes: straight to
/// the process's stderr, which libtest does not capture (nextest shows it
/// through `success-output` in .config/nextest.toml). Used for why the VM
/// tests were skipped, and for their result lines.
fn tell(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

fn skipped(reason: &str) {
    tell(&format!("vm-tests skipped: {reason}"));
}

#[test]
fn vm_tests_all_scenarios_pass() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let setting = std::env::var("ATTESTD_VM_TESTS").unwrap_or_default();
    let forced = ci || setting == "1";
    if !forced {
        if setting == "0" {
            skipped("ATTESTD_VM_TESTS=0");
            return;
        }
        if let Some(reason) = cannot_run() {
            skipped(&format!(
                "{reason}. Run them with `make vm-test` as root, or set ATTESTD_VM_TESTS=1 \
                 to make this test run them (and fail if it cannot)."
            ));
            return;
        }
    }

    let script = attestd_tests::repo_root().join("vm-tests/run.sh");
    tell(&format!(
        "running {} (several minutes: builds, a cached debootstrap root, five guest boots)",
        script.display()
    ));
    // Progress (stderr) goes straight through; the result lines are read here.
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    tell(&stdout);
    for name in SCENARIOS {
        let line = stdout.lines().find(|line| {
            line.starts_with(&format!("PASS {name} ")) || line.starts_with(&format!("FAIL {name}:"))
        });
        match line {
            Some(line) => assert!(line.starts_with("PASS "), "vm-tests: {line}"),
            None => panic!(
                "vm-tests printed no result for {name} ({}):\n{stdout}",
                output.status
            ),
        }
    }
    assert!(
        output.status.success(),
        "vm-tests/run.sh failed ({}):\n{stdout}",
        output.status
    );
}
