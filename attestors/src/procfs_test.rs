//! Unit tests for `procfs.rs`, against a fixture `/proc` tree in a temp dir.
use std::path::{Path, PathBuf};

use super::{parse_stat_start_time, parse_status, Ids, ProcFs};
use crate::selector::AttestorError;

/// A real status file (Debian 12, kernel 6.1), trimmed of lines we do not use
/// only where noted; `name` is the already kernel-escaped Name field.
fn status_text(name: &[u8]) -> Vec<u8> {
    let mut text = b"Name:\t".to_vec();
    text.extend_from_slice(name);
    text.extend_from_slice(
        b"\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nNgid:\t0\nPid:\t4242\n\
PPid:\t1\nTracerPid:\t0\nUid:\t1000\t1001\t1002\t1003\nGid:\t100\t101\t102\t103\n\
FDSize:\t64\nGroups:\t4 24 27 100 \nNStgid:\t4242\nNSpid:\t4242\nNSpgid:\t4242\n\
NSsid:\t4242\nVmPeak:\t    8432 kB\nThreads:\t1\nSigQ:\t0/63445\n\
Cpus_allowed_list:\t0-7\nvoluntary_ctxt_switches:\t3\nnonvoluntary_ctxt_switches:\t0\n",
    );
    text
}

/// A real stat line with the command name replaced.
fn stat_text(pid: i32, comm: &[u8]) -> Vec<u8> {
    let mut text = format!("{pid} (").into_bytes();
    text.extend_from_slice(comm);
    text.extend_from_slice(
        b") S 1 4242 4242 0 -1 4194560 108 0 0 0 0 0 0 0 20 0 1 0 987654321 \
8634368 243 18446744073709551615 94093717123072 94093717145409 140733839201504 0 0 0 0 \
4096 0 0 0 0 17 3 0 0 0 0 0 94093717158000 94093717159552 94093735276544 \
140733839208215 140733839208237 140733839208237 140733839212523 0\n",
    );
    text
}

struct FakeProc {
    dir: tempfile::TempDir,
}

impl FakeProc {
    fn new() -> Self {
        FakeProc {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn add(&self, pid: i32, file: &str, contents: &[u8]) -> PathBuf {
        let dir = self.dir.path().join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(file);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn add_exe(&self, pid: i32, target: &Path) {
        let dir = self.dir.path().join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(target, dir.join("exe")).unwrap();
    }

    fn procfs(&self) -> ProcFs {
        ProcFs::at(self.dir.path())
    }
}

#[test]
fn parses_ids_and_groups_from_status() {
    let proc = FakeProc::new();
    proc.add(4242, "status", &status_text(b"sleep"));
    let status = proc.procfs().status(4242).unwrap();
    assert_eq!(status.name, "sleep");
    assert_eq!((status.tgid, status.pid, status.ppid), (4242, 4242, 1));
    assert_eq!(
        status.uid,
        Ids {
            real: 1000,
            effective: 1001,
            saved: 1002,
            filesystem: 1003
        }
    );
    assert_eq!(status.gid.effective, 101);
    assert_eq!(status.groups, vec![4, 24, 27, 100]);
}

#[test]
fn odd_process_name_does_not_disturb_status() {
    // The kernel escapes newline and backslash in Name; other bytes are raw.
    let status = parse_status(&status_text(b"evil\\nUid:\t0\t0\t0\t0 \xff)")).unwrap();
    assert_eq!(status.name, "evil\\nUid:\t0\t0\t0\t0 \u{fffd})");
    assert_eq!(status.uid.effective, 1001);
}

#[test]
fn smuggled_status_line_is_refused() {
    // Were a raw newline ever to get through, the forged line must not win.
    let error = parse_status(&status_text(b"evil\nUid:\t0\t0\t0\t0")).unwrap_err();
    assert!(error.contains("Uid appears more than once"), "{error}");
}

#[test]
fn empty_groups_line_is_no_groups() {
    let text = String::from_utf8(status_text(b"x"))
        .unwrap()
        .replace("Groups:\t4 24 27 100 \n", "Groups:\t\n");
    assert_eq!(
        parse_status(text.as_bytes()).unwrap().groups,
        Vec::<u32>::new()
    );
}

#[test]
fn malformed_status_is_an_error_naming_the_file() {
    let proc = FakeProc::new();
    let cases: [(&[u8], &str); 5] = [
        (b"Name:\tx\nTgid:\t1\n", "no Pid line"),
        (b"Name:\tx\ngarbage\n", "line 2 has no `key:`"),
        (b"Name:\tx\nUid:\t1\t2\t3\n", "Uid has 3 fields"),
        (b"Name:\tx\nUid:\t1\t+2\t3\t4\n", "not a number"),
        (b"Name:\tx\nGid:\t1\t2\t3\t99999999999\n", "out of range"),
    ];
    for (text, expected) in cases {
        let path = proc.add(7, "status", text);
        match proc.procfs().status(7) {
            Err(AttestorError::Malformed { path: got, reason }) => {
                assert_eq!(got, path);
                assert!(reason.contains(expected), "{reason:?} lacks {expected:?}");
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }
}

#[test]
fn start_time_survives_hostile_command_names() {
    let proc = FakeProc::new();
    for comm in [
        &b"sleep"[..],
        b"a) (b\nc",
        b") S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 ",
        b"((((",
        b"",
        b"\xff\xfe",
    ] {
        proc.add(4242, "stat", &stat_text(4242, comm));
        assert_eq!(
            proc.procfs().start_time_ticks(4242).unwrap(),
            987_654_321,
            "comm {comm:?}"
        );
    }
}

#[test]
fn truncated_or_foreign_stat_is_refused() {
    assert!(parse_stat_start_time(b"4242 (x) S 1 2 3\n", 4242)
        .unwrap_err()
        .contains("fewer than 22"));
    assert!(parse_stat_start_time(&stat_text(4243, b"x"), 4242)
        .unwrap_err()
        .contains("expected 4242"));
    assert!(parse_stat_start_time(b"4242 x S\n", 4242).is_err());
    assert!(parse_stat_start_time(b") 4242 (", 4242).is_err());
}

#[test]
fn missing_pid_is_process_gone() {
    let proc = FakeProc::new();
    let procfs = proc.procfs();
    assert!(matches!(
        procfs.status(99),
        Err(AttestorError::ProcessGone { pid: 99 })
    ));
    assert!(matches!(
        procfs.cgroup(99),
        Err(AttestorError::ProcessGone { pid: 99 })
    ));
    assert!(matches!(
        procfs.exe_path(99),
        Err(AttestorError::ProcessGone { pid: 99 })
    ));
    assert!(matches!(
        procfs.start_time_ticks(99),
        Err(AttestorError::ProcessGone { pid: 99 })
    ));
}

#[test]
fn nonpositive_pid_is_refused_before_any_read() {
    let procfs = FakeProc::new().procfs();
    assert!(matches!(
        procfs.status(0),
        Err(AttestorError::InvalidPid { pid: 0 })
    ));
    assert!(matches!(
        procfs.cgroup(-1),
        Err(AttestorError::InvalidPid { pid: -1 })
    ));
}

#[test]
fn oversized_file_is_refused() {
    let proc = FakeProc::new();
    proc.add(5, "cgroup", &vec![b'/'; 200 * 1024]);
    assert!(matches!(
        proc.procfs().cgroup(5),
        Err(AttestorError::TooLarge { limit: 131072, .. })
    ));
}

#[test]
fn non_utf8_cgroup_is_refused_not_replaced() {
    let proc = FakeProc::new();
    proc.add(5, "cgroup", b"0::/user.slice/\xff.scope\n");
    assert!(matches!(
        proc.procfs().cgroup(5),
        Err(AttestorError::Malformed { .. })
    ));
}

#[test]
fn exe_path_keeps_deleted_suffix() {
    let proc = FakeProc::new();
    proc.add_exe(8, Path::new("/usr/bin/app (deleted)"));
    assert_eq!(
        proc.procfs().exe_path(8).unwrap(),
        PathBuf::from("/usr/bin/app (deleted)")
    );
}

#[test]
fn exe_missing_for_live_pid_is_no_executable() {
    // Kernel threads and zombies have a /proc entry but no exe link target.
    let proc = FakeProc::new();
    proc.add(2, "status", &status_text(b"kthreadd"));
    assert!(matches!(
        proc.procfs().exe_path(2),
        Err(AttestorError::NoExecutable { pid: 2 })
    ));
}

#[test]
fn reads_this_process_from_real_proc() {
    let procfs = ProcFs::new();
    let pid = std::process::id() as i32;
    let status = procfs.status(pid).unwrap();
    assert_eq!(status.tgid, pid);
    assert_eq!(
        procfs.exe_path(pid).unwrap(),
        std::env::current_exe().unwrap()
    );
    assert!(procfs.start_time_ticks(pid).unwrap() > 0);
    assert!(!procfs.cgroup(pid).unwrap().is_empty());
}

#[test]
fn held_files_read_the_same_inputs_as_the_path_readers() {
    let procfs = ProcFs::new();
    let pid = std::process::id() as i32;
    let files = procfs.open_process(pid).unwrap();
    let inputs = files.read_inputs().unwrap();
    let status = procfs.status(pid).unwrap();
    assert_eq!(inputs.uid, status.uid.effective);
    assert_eq!(inputs.gid, status.gid.effective);
    let mut groups = status.groups.clone();
    groups.sort_unstable();
    groups.dedup();
    assert_eq!(inputs.groups, groups);
    assert_eq!(inputs.cgroup, procfs.cgroup(pid).unwrap());
    assert_eq!(inputs.exe, procfs.exe_path(pid).unwrap());
    let exe = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
    assert_eq!(
        inputs.exe_key,
        crate::binary::FileKey::from_metadata(&exe.metadata().unwrap()),
        "statx without sync and fstat agree on a local filesystem"
    );
    assert_eq!(
        files.read_inputs().unwrap(),
        inputs,
        "a second read is equal"
    );
}

#[test]
fn held_files_stop_working_when_their_process_exits() {
    let mut child = std::process::Command::new("cat")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let files = ProcFs::new().open_process(pid).unwrap();
    assert!(files.read_inputs().is_ok());
    child.kill().unwrap();
    child.wait().unwrap();
    // Reaped: the pid is free for reuse, and the held files must not follow it.
    let after = files.read_inputs();
    assert!(
        matches!(after, Err(AttestorError::ProcessGone { pid: gone }) if gone == pid),
        "{after:?}"
    );
}
