//! `attestd-issuer entries check` and `check-config` on entries files, run as
//! the binary operators use.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ISSUER: &str = env!("CARGO_BIN_EXE_attestd-issuer");

const GOOD: &str = r#"
[[entry]]
spiffe_id = "spiffe://example.org/payments"
selectors = ["unix:uid:1000"]
dns_names = ["payments.internal"]

[[entry]]
spiffe_id = "spiffe://example.org/batch"
selectors = ["unix:uid:2000"]
node_selectors = ["tpm:secure_boot:true"]
"#;

/// Two entries, three problems.
const BAD: &str = r#"
[[entry]]
spiffe_id = "spiffe://example.org/payments/"
selectors = ["unix:uid:1000"]

[[entry]]
spiffe_id = "spiffe://example.org/batch"
selectors = []
x509_ttl_secs = 0
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn check(file: &Path, extra: &[&str]) -> Output {
    Command::new(ISSUER)
        .args(["entries", "check"])
        .arg(file)
        .args(extra)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_valid_file_is_counted_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "entries.toml", GOOD);
    for extra in [&[][..], &["--trust-domain", "example.org"][..]] {
        let output = check(&file, extra);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        assert_eq!(
            text(&output.stdout),
            format!("{}: 2 entries, trust domain example.org\n", file.display())
        );
    }
    let empty = write(dir.path(), "empty.toml", "");
    let output = check(&empty, &[]);
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).contains(": 0 entries"));
}

#[test]
fn each_problem_is_printed_on_its_own_line_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "entries.toml", BAD);
    let output = check(&file, &[]);
    assert_eq!(output.status.code(), Some(64));
    assert!(output.stdout.is_empty());
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let prefix = format!("{}: ", file.display());
    let expected = [
        "entry[0].spiffe_id:",
        "entry[1].selectors: name at least one",
        "entry[1].x509_ttl_secs: must be 1 to",
    ];
    for (line, expected) in lines.iter().zip(expected) {
        assert!(
            line.starts_with(&format!("{prefix}{expected}")),
            "{line:?} vs {expected:?}"
        );
    }
    assert_eq!(lines.len(), expected.len() + 1, "{stderr}");
    assert!(lines[3].contains("3 problem(s)"), "{stderr}");

    // Valid on its own, but not for another trust domain.
    let good = write(dir.path(), "good.toml", GOOD);
    let output = check(&good, &["--trust-domain", "other.org"]);
    assert_eq!(output.status.code(), Some(64));
    assert!(text(&output.stderr).contains("is not in the trust domain \"other.org\""));

    // A typo in a key names the entry and the key.
    let typo = write(
        dir.path(),
        "typo.toml",
        "[[entry]]\nspiffe_id = \"spiffe://example.org/a\"\nselectors = [\"unix:uid:1\"]\nttl = 5\n",
    );
    let output = check(&typo, &[]);
    assert_eq!(output.status.code(), Some(64));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("entry[0]") && stderr.contains("unknown field `ttl`"),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_64_and_an_unreadable_file_66() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.toml", GOOD);
    let output = check(&good, &["--trust-domain", "Example.ORG"]);
    assert_eq!(output.status.code(), Some(64));
    assert!(text(&output.stderr).contains("not a SPIFFE trust domain"));
    let output = check(&dir.path().join("absent.toml"), &[]);
    assert_eq!(output.status.code(), Some(66));
    assert!(text(&output.stderr).contains("absent.toml"));
}

#[test]
fn check_config_checks_the_entries_file_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let config = |entries: &Path| {
        write(
            dir.path(),
            "issuer.toml",
            &format!(
                "listen = \"127.0.0.1:0\"\ntrust_domain = \"example.org\"\nentries = {:?}\n\
                 [ca]\ncert = \"ca.pem\"\nkey = \"ca.key\"\n[ek]\nallowlist = \"ek-allowlist\"\n",
                entries.display().to_string()
            ),
        )
    };
    let run = |config: &Path| {
        Command::new(ISSUER)
            .args(["check-config", "--config"])
            .arg(config)
            .output()
            .unwrap()
    };
    let good = config(&write(dir.path(), "good.toml", GOOD));
    let output = run(&good);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let bad = config(&write(dir.path(), "bad.toml", BAD));
    let output = run(&bad);
    assert_eq!(output.status.code(), Some(64));
    assert!(text(&output.stderr).contains("entry[1].selectors"));
}
