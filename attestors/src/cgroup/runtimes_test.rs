//! The runtime × driver table: every fixture in `tests/fixtures/cgroup/` (see its
//! README for where each shape comes from) and what must be read from it.
use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{parse_cgroup_file, Container, ContainerRuntime, Pod, QosClass};

use ContainerRuntime::{Containerd, CriO, Docker, Podman};
use QosClass::{BestEffort, Burstable, Guaranteed};

const ID: [&str; 14] = [
    "99f781dabca74929ce2ffd1ceb2480b2d13cfdfd4241792ed7e81bbb99ac6ba9",
    "28a16203b3679738f3b82bb5b611c54d0e30468aa2994f4e23847a5374ad0d7a",
    "29601cd4adc95233ada29012c85a2a8a637096ff455f607cd6d5070b51d5968e",
    "c8f39f36514db1d00bea5d98a6a37808820322fa54e5b4a22f4ca0c422f07a60",
    "385e6155e8c66937ac91cfcc199433da246ed34fd04ce2476129d101cee0c81e",
    "a2b37dbaf93c32413b197335b43fcbc05f7eaa681da065f6cbb0ae3def53b248",
    "0b648f7308eecad8b5371d2731647187271191f50fce22b4d1ce789cda145847",
    "3d3dd65ed4c297bd506ec12e040cb44175de42b1a20a392bb6a654f2acbf14a2",
    "73024c97debefb26260fc5695f86f13ca1d8edbd4236568e9abd06dd7693df18",
    "63b6ef8a77b015152e483a8424e789b8feda8422575eaea5a4df2ec667342af9",
    "5f689aa2859e2fcc5b3c083bd8b7c7387f364a25792addb5dffe67cc21a74a9a",
    "5c80341dd88266a28862bbd941780c0830517e58de56facf4f9e2fdf7daefc52",
    "d37d45006b3c85a36e4a1c9f02bd85ac6cf5b91f1643a17402a2f902390be0ee",
    "a9ade8dc651d08760b1dc3db4eb5eb942874bb530b3f1ef0587528fddc7c1ad8",
];
const POD: [&str; 8] = [
    "ec0cb378-2b07-4fa9-93b5-de6a98d997c4",
    "d4aa86fd-0dbd-44ae-8810-4b6b08ce039f",
    "cf6a7dff-1cdd-4e21-ad0f-4193c4b24802",
    "9a35f285-058f-4b02-8835-e000770566c3",
    "e34de3d7-57d3-4df7-aedc-0775422581d1",
    "e6adc3ea-29c1-4874-be16-64839c33cb51",
    "1638f4de-956a-41a8-8a71-fbc1eb312fe5",
    "80e5e159-c5cf-42fc-ad39-e11538bc9890",
];
const STATIC_POD: &str = "ff4c1b739eb1821f4f352c74da2971fd";

/// What one fixture must parse to.
struct Expected {
    container: Option<Container>,
    pod: Option<Pod>,
    /// `(unit, slice)`.
    systemd: Option<(String, String)>,
}

fn container(runtime: ContainerRuntime, id: &str) -> Option<Container> {
    Some(Container {
        runtime,
        id: id.to_owned(),
        conmon: false,
    })
}

fn conmon(runtime: ContainerRuntime, id: &str) -> Option<Container> {
    Some(Container {
        runtime,
        id: id.to_owned(),
        conmon: true,
    })
}

fn pod(uid: &str, qos: Option<QosClass>) -> Option<Pod> {
    Some(Pod {
        uid: uid.to_owned(),
        qos,
    })
}

fn unit(unit: impl Into<String>, slice: impl Into<String>) -> Option<(String, String)> {
    Some((unit.into(), slice.into()))
}

/// The systemd driver's pod slice: `<prefix>-pod<uid with _>.slice`.
fn pod_slice(prefix: &str, uid: &str) -> String {
    format!("{prefix}-pod{}.slice", uid.replace('-', "_"))
}

// One row per fixture reads best as a table, which rustfmt would unroll.
#[rustfmt::skip]
fn expectations() -> Vec<(&'static str, Expected)> {
    let row = |container, pod, systemd| Expected {
        container,
        pod,
        systemd,
    };
    let user_manager = || unit("user@1000.service", "user-1000.slice");
    vec![
        // docker
        ("docker-cgroupfs-v1-hybrid", row(container(Docker, ID[0]), None, None)),
        ("docker-cgroupfs-v2", row(container(Docker, ID[1]), None, None)),
        ("docker-systemd-v1", row(container(Docker, ID[2]), None,
            unit(format!("docker-{}.scope", ID[2]), "system.slice"))),
        ("docker-systemd-v2", row(container(Docker, ID[3]), None,
            unit(format!("docker-{}.scope", ID[3]), "system.slice"))),
        ("docker-rootless-systemd-v2", row(container(Docker, ID[4]), None, user_manager())),
        ("docker-in-docker-cgroupfs-v1", row(container(Docker, ID[6]), None, None)),
        ("docker-buildkit-v2", row(None, None, None)),
        ("inside-container-cgroupns-v2", row(None, None, None)),
        // containerd
        ("containerd-systemd-v2-burstable", row(container(Containerd, ID[7]),
            pod(POD[0], Some(Burstable)),
            unit(format!("cri-containerd-{}.scope", ID[7]), pod_slice("kubepods-burstable", POD[0])))),
        ("containerd-systemd-v2-guaranteed", row(container(Containerd, ID[8]),
            pod(POD[1], Some(Guaranteed)),
            unit(format!("cri-containerd-{}.scope", ID[8]), pod_slice("kubepods", POD[1])))),
        ("containerd-systemd-v1-besteffort", row(container(Containerd, ID[9]),
            pod(POD[2], Some(BestEffort)),
            unit(format!("cri-containerd-{}.scope", ID[9]), pod_slice("kubepods-besteffort", POD[2])))),
        ("containerd-cgroupfs-v1-besteffort", row(container(Containerd, ID[10]),
            pod(POD[2], Some(BestEffort)), None)),
        ("containerd-cgroupfs-v2-guaranteed", row(container(Containerd, ID[11]),
            pod(POD[3], Some(Guaranteed)), None)),
        ("containerd-cgroupfs-v2-static-pod", row(container(Containerd, ID[12]),
            pod(STATIC_POD, Some(Burstable)), None)),
        // cri-o
        ("crio-systemd-v2-besteffort", row(container(CriO, ID[13]),
            pod(POD[4], Some(BestEffort)),
            unit(format!("crio-{}.scope", ID[13]), pod_slice("kubepods-besteffort", POD[4])))),
        ("crio-systemd-v2-container-subgroup", row(container(CriO, ID[0]),
            pod(POD[4], Some(Burstable)),
            unit(format!("crio-{}.scope", ID[0]), pod_slice("kubepods-burstable", POD[4])))),
        ("crio-conmon-systemd-v2", row(conmon(CriO, ID[0]),
            pod(POD[4], Some(Burstable)),
            unit(format!("crio-conmon-{}.scope", ID[0]), pod_slice("kubepods-burstable", POD[4])))),
        ("crio-conmon-system-slice-v2", row(conmon(CriO, ID[1]), None,
            unit(format!("crio-conmon-{}.scope", ID[1]), "system.slice"))),
        ("crio-cgroupfs-v1-burstable", row(container(CriO, ID[2]),
            pod(POD[5], Some(Burstable)), None)),
        ("crio-conmon-cgroupfs-v1", row(conmon(CriO, ID[2]),
            pod(POD[5], Some(Burstable)), None)),
        // podman
        ("podman-systemd-v2", row(container(Podman, ID[3]), None,
            unit(format!("libpod-{}.scope", ID[3]), "machine.slice"))),
        ("podman-rootless-systemd-v2", row(container(Podman, ID[4]), None, user_manager())),
        ("podman-pod-systemd-v2", row(container(Podman, ID[6]), None,
            unit(format!("libpod-{}.scope", ID[6]), format!("machine-libpod_pod_{}.slice", ID[5])))),
        ("podman-conmon-systemd-v2", row(conmon(Podman, ID[7]), None,
            unit(format!("libpod-conmon-{}.scope", ID[7]), "machine.slice"))),
        ("podman-cgroupfs-v1", row(container(Podman, ID[8]), None, None)),
        ("podman-conmon-cgroupfs-v1", row(None, None, None)),
        // kind: the pod's container wins over the node's
        ("kind-systemd-v2-host-view", row(container(Containerd, ID[10]),
            pod(POD[6], Some(BestEffort)),
            unit(format!("docker-{}.scope", ID[9]), "system.slice"))),
        ("kind-systemd-v2-node-view", row(container(Containerd, ID[11]),
            pod(POD[6], Some(Burstable)),
            unit(format!("cri-containerd-{}.scope", ID[11]), pod_slice("kubelet-kubepods-burstable", POD[6])))),
        ("kind-cgroupfs-v1-host-view", row(container(Containerd, ID[13]),
            pod(POD[7], Some(Burstable)), None)),
        // cgroup namespaces
        ("cgroupns-foreign-systemd-v2", row(container(Containerd, ID[1]),
            pod(POD[0], Some(BestEffort)),
            unit(format!("cri-containerd-{}.scope", ID[1]), pod_slice("kubepods-besteffort", POD[0])))),
        ("cgroupns-foreign-cgroupfs-v2", row(container(Containerd, ID[2]),
            pod(POD[1], Some(Burstable)), None)),
        ("cgroupns-foreign-cgroupfs-hidden-qos-v2", row(container(Containerd, ID[3]),
            pod(POD[2], None), None)),
        ("cgroupns-sibling-in-pod-v2", row(None, None, None)),
        ("cgroupns-foreign-unit-v2", row(None, None, unit("nginx.service", "system.slice"))),
        // plain systemd
        ("systemd-service-v2", row(None, None, unit("nginx.service", "system.slice"))),
        ("systemd-session-v2", row(None, None, unit("session-3.scope", "user-1000.slice"))),
        ("systemd-user-manager-v2", row(None, None, user_manager())),
        ("systemd-init-v2", row(None, None, unit("init.scope", "-.slice"))),
        ("systemd-service-hybrid", row(None, None, unit("ssh.service", "system.slice"))),
        ("systemd-service-v1", row(None, None, unit("sshd.service", "system.slice"))),
    ]
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup")
}

#[test]
fn every_fixture_has_an_expectation() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter_map(|name| name.strip_suffix(".cgroup").map(str::to_owned))
        .collect();
    let expected: BTreeSet<String> = expectations()
        .into_iter()
        .map(|(name, _)| name.to_owned())
        .collect();
    assert_eq!(on_disk, expected);
}

#[test]
fn each_runtime_and_driver_parses_to_its_container_pod_and_unit() {
    for (name, expected) in expectations() {
        let text = std::fs::read_to_string(fixture_dir().join(format!("{name}.cgroup"))).unwrap();
        let info = parse_cgroup_file(&text).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(info.container, expected.container, "{name}: container");
        assert_eq!(info.pod, expected.pod, "{name}: pod");
        let systemd = info.systemd_unit.clone().zip(info.systemd_slice.clone());
        assert_eq!(systemd, expected.systemd, "{name}: systemd unit and slice");
        // Every line is kept, verbatim.
        let lines = text.lines().count();
        assert_eq!(
            info.v1_paths.len() + usize::from(info.v2_path.is_some()),
            lines,
            "{name}"
        );
    }
}
