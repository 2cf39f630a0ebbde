//! Unit tests for `unix.rs`, against a fixture `/proc` tree; names come from the
//! test host's NSS, so only ids every Linux host names the same way are used.
use std::path::Path;

use super::{group_name, user_name, NameCache, NameKind, UnixAttestor};
use crate::procfs::ProcFs;
use crate::selector::{Attestor, AttestorError, Selector};

/// An id no distribution assigns, so NSS has no name for it.
const UNNAMED_ID: u32 = 4_000_000_123;

fn fake_process(root: &Path, pid: i32, uid_line: &str, gid_line: &str, groups: &str, exe: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let status = format!(
        "Name:\tworker\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{pid}\nNgid:\t0\n\
         Pid:\t{pid}\nPPid:\t1\nTracerPid:\t0\nUid:\t{uid_line}\nGid:\t{gid_line}\n\
         FDSize:\t64\nGroups:\t{groups}\n"
    );
    std::fs::write(dir.join("status"), status).unwrap();
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(exe), dir.join("exe")).unwrap();
}

fn values<'a>(selectors: &'a [Selector], key: &str) -> Vec<&'a str> {
    selectors
        .iter()
        .filter(|selector| selector.kind == "unix" && selector.key == key)
        .map(|selector| selector.value.as_str())
        .collect()
}

#[test]
fn reports_effective_ids_names_groups_and_path() {
    let root = tempfile::tempdir().unwrap();
    // Real uid 1000 running setuid-root: the effective id is what counts.
    fake_process(
        root.path(),
        31,
        "1000\t0\t0\t0",
        &format!("{UNNAMED_ID}\t0\t0\t0"),
        &format!("{UNNAMED_ID} 0 0 "),
        b"/usr/bin/worker",
    );
    let selectors = UnixAttestor::new(ProcFs::at(root.path()))
        .attest(31)
        .unwrap();
    let rendered: Vec<String> = selectors.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        [
            "unix:uid:0",
            "unix:user:root",
            "unix:gid:0",
            "unix:group:root",
            "unix:supplementary-gid:0",
            "unix:supplementary-group:root",
            &format!("unix:supplementary-gid:{UNNAMED_ID}"),
            "unix:path:/usr/bin/worker",
        ]
    );
}

#[test]
fn unnamed_ids_keep_their_numeric_selectors() {
    let root = tempfile::tempdir().unwrap();
    let ids = format!("{UNNAMED_ID}\t{UNNAMED_ID}\t{UNNAMED_ID}\t{UNNAMED_ID}");
    fake_process(root.path(), 32, &ids, &ids, "", b"/bin/sh");
    let selectors = UnixAttestor::new(ProcFs::at(root.path()))
        .attest(32)
        .unwrap();
    assert_eq!(values(&selectors, "uid"), [UNNAMED_ID.to_string()]);
    assert_eq!(values(&selectors, "gid"), [UNNAMED_ID.to_string()]);
    assert!(values(&selectors, "user").is_empty());
    assert!(values(&selectors, "group").is_empty());
    assert!(values(&selectors, "supplementary-gid").is_empty());
}

#[test]
fn deleted_and_odd_exe_paths_stay_one_line() {
    let root = tempfile::tempdir().unwrap();
    fake_process(
        root.path(),
        33,
        "0\t0\t0\t0",
        "0\t0\t0\t0",
        "",
        b"/tmp/x\nunix:uid:0\xff (deleted)",
    );
    let selectors = UnixAttestor::new(ProcFs::at(root.path()))
        .attest(33)
        .unwrap();
    assert_eq!(
        values(&selectors, "path"),
        ["/tmp/x\\nunix:uid:0\\xff (deleted)"]
    );
}

#[test]
fn gone_process_is_reported_as_gone() {
    let root = tempfile::tempdir().unwrap();
    let error = UnixAttestor::new(ProcFs::at(root.path()))
        .attest(34)
        .unwrap_err();
    assert!(
        matches!(error, AttestorError::ProcessGone { pid: 34 }),
        "{error:?}"
    );
}

#[test]
fn nss_lookups_name_root_and_nothing_for_unassigned_ids() {
    assert_eq!(user_name(0).as_deref(), Some(&b"root"[..]));
    assert_eq!(group_name(0).as_deref(), Some(&b"root"[..]));
    assert_eq!(user_name(UNNAMED_ID), None);
    assert_eq!(group_name(UNNAMED_ID), None);
}

#[test]
fn names_are_looked_up_once_and_agree_with_nss() {
    let cache = NameCache::default();
    let direct = user_name(0);
    assert_eq!(cache.get(NameKind::User, 0), direct);
    assert_eq!(cache.get(NameKind::User, 0), direct);
    assert_eq!(cache.get(NameKind::Group, 0), group_name(0));
    let entries = cache.entries.lock().unwrap();
    assert_eq!(entries.len(), 2, "one entry per (kind, id)");
}

#[test]
fn an_unknown_id_is_remembered_as_nameless() {
    let cache = NameCache::default();
    // No NSS database on a test host names this id.
    assert_eq!(cache.get(NameKind::User, 3_999_999_999), None);
    assert!(cache
        .entries
        .lock()
        .unwrap()
        .get(&(NameKind::User, 3_999_999_999))
        .is_some_and(|(name, _)| name.is_none()));
}
