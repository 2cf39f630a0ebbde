//! Unit tests for `host.rs`, against fixture `/proc` and `/` trees.
use std::path::Path;

use super::{is_uuid, parse_os_release, HostInfo, OsRelease};
use crate::selector::AttestorError;

const BOOT_ID: &str = "62fedcb5-3121-4177-a99f-6b1837585336";

fn write(root: &Path, relative: &str, contents: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

fn fake_host(os_release: Option<(&str, &str)>) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "proc/sys/kernel/hostname", "node-7\n");
    write(root.path(), "proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");
    write(
        root.path(),
        "proc/sys/kernel/random/boot_id",
        &format!("{BOOT_ID}\n"),
    );
    if let Some((path, text)) = os_release {
        write(root.path(), path, text);
    }
    root
}

const DEBIAN_OS_RELEASE: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"#;

#[test]
fn collects_host_facts_and_renders_selectors() {
    let root = fake_host(Some(("fs/etc/os-release", DEBIAN_OS_RELEASE)));
    let host = HostInfo::collect_from(&root.path().join("proc"), &root.path().join("fs")).unwrap();
    let rendered: Vec<String> = host.selectors().iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        [
            "host:hostname:node-7",
            "host:kernel:6.1.0-18-amd64",
            "host:os:debian",
            "host:os-version:12",
            &format!("host:boot-id:{BOOT_ID}"),
        ]
    );
}

#[test]
fn falls_back_to_usr_lib_os_release_then_to_linux() {
    let root = fake_host(Some((
        "fs/usr/lib/os-release",
        "ID=arch\nBUILD_ID=rolling\n",
    )));
    let host = HostInfo::collect_from(&root.path().join("proc"), &root.path().join("fs")).unwrap();
    assert_eq!((host.os.as_str(), host.os_version), ("arch", None));

    let root = fake_host(None);
    let host = HostInfo::collect_from(&root.path().join("proc"), &root.path().join("fs")).unwrap();
    assert_eq!(host.os, "linux");
}

#[test]
fn refuses_a_boot_id_that_is_not_a_uuid() {
    let root = fake_host(None);
    write(
        root.path(),
        "proc/sys/kernel/random/boot_id",
        "not-a-uuid\n",
    );
    let error =
        HostInfo::collect_from(&root.path().join("proc"), &root.path().join("fs")).unwrap_err();
    assert!(
        matches!(error, AttestorError::Malformed { .. }),
        "{error:?}"
    );
}

#[test]
fn refuses_an_os_id_outside_the_specified_alphabet() {
    let root = fake_host(Some(("fs/etc/os-release", "ID=\"Debian\\nX\"\n")));
    let error =
        HostInfo::collect_from(&root.path().join("proc"), &root.path().join("fs")).unwrap_err();
    assert!(error.to_string().contains("ID="), "{error}");
}

#[test]
fn multi_line_hostname_file_is_refused() {
    let root = fake_host(None);
    write(root.path(), "proc/sys/kernel/hostname", "a\nb\n");
    assert!(HostInfo::collect_from(&root.path().join("proc"), &root.path().join("fs")).is_err());
}

#[test]
fn os_release_quoting_follows_the_shell() {
    let parsed = parse_os_release(
        "# comment\nID='rhel'\nVERSION_ID=\"9.\\$3\"\nID_LIKE=\"fedora\"\nNOT A LINE\n",
    );
    assert_eq!(
        parsed,
        OsRelease {
            id: Some("rhel".into()),
            version_id: Some("9.$3".into()),
        }
    );
    assert_eq!(
        parse_os_release("ID=\nVERSION_ID=\"\"\n"),
        OsRelease::default()
    );
}

#[test]
fn uuid_check_is_strict() {
    assert!(is_uuid(BOOT_ID));
    assert!(!is_uuid(&BOOT_ID.to_uppercase()));
    assert!(!is_uuid(&BOOT_ID.replace('-', "")));
    assert!(!is_uuid("62fedcb5-3121-4177-a99f-6b183758533g"));
}

#[test]
fn collects_this_host() {
    let host = HostInfo::collect().unwrap();
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(host.boot_id, boot_id.trim_end());
    assert!(!host.hostname.is_empty());
}
