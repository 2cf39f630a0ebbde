//! The attestors on a real process (this test binary), checked against what the
//! test reads from `/proc/self` on its own, without the crate's parsers.
use attestd_attestors::cgroup::CgroupAttestor;
use attestd_attestors::procfs::ProcFs;
use attestd_attestors::selector::{Attestor, Selector};
use attestd_attestors::unix::UnixAttestor;

fn this_pid() -> i32 {
    i32::try_from(std::process::id()).unwrap()
}

fn values(selectors: &[Selector], kind: &str, key: &str) -> Vec<String> {
    selectors
        .iter()
        .filter(|selector| selector.kind == kind && selector.key == key)
        .map(|selector| selector.value.clone())
        .collect()
}

/// The effective uid/gid, from the second column of `Uid:`/`Gid:`.
fn effective_id(status: &str, key: &str) -> String {
    let line = status
        .lines()
        .find(|line| line.starts_with(&format!("{key}:")))
        .unwrap();
    line.split_whitespace().nth(2).unwrap().to_owned()
}

#[test]
fn unix_attestor_reports_this_process() {
    let selectors = UnixAttestor::new(ProcFs::new()).attest(this_pid()).unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(
        values(&selectors, "unix", "uid"),
        [effective_id(&status, "Uid")]
    );
    assert_eq!(
        values(&selectors, "unix", "gid"),
        [effective_id(&status, "Gid")]
    );
    let exe = std::env::current_exe().unwrap();
    assert_eq!(values(&selectors, "unix", "path"), [exe.to_str().unwrap()]);
}

#[test]
fn cgroup_attestor_reports_this_process_paths() {
    let attestor = CgroupAttestor::new(ProcFs::new());
    let info = attestor.info(this_pid()).unwrap();
    let selectors = attestor.attest(this_pid()).unwrap();

    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut expected_v1 = Vec::new();
    let mut expected_v2 = Vec::new();
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (id, controllers, path) = (
            fields.next().unwrap(),
            fields.next().unwrap(),
            fields.next().unwrap(),
        );
        if id == "0" {
            expected_v2.push(path.to_owned());
        } else {
            expected_v1.push(format!("{controllers}:{path}"));
        }
    }
    assert_eq!(values(&selectors, "cgroup", "v2-path"), expected_v2);
    assert_eq!(values(&selectors, "cgroup", "v1-path"), expected_v1);
    assert_eq!(info.v2_path.into_iter().collect::<Vec<_>>(), expected_v2);
}
