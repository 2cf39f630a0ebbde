//! Unit tests for reading names in `containers.rs`, `kubernetes.rs` and
//! `systemd.rs`: which components count, which are refused, and which wins.
use super::containers::{find_container, is_container_id};
use super::kubernetes::{find_pod, pod_at};
use super::parse::components;
use super::systemd::{find_placement, Placement};
use super::{parse_cgroup_file, ContainerRuntime, QosClass};

const ID_A: &str = "99f781dabca74929ce2ffd1ceb2480b2d13cfdfd4241792ed7e81bbb99ac6ba9";
const ID_B: &str = "28a16203b3679738f3b82bb5b611c54d0e30468aa2994f4e23847a5374ad0d7a";
const POD_UID: &str = "ec0cb378-2b07-4fa9-93b5-de6a98d997c4";

fn container_in(path: &str) -> Option<(ContainerRuntime, String, bool)> {
    find_container(&components(path).unwrap()).map(|found| (found.runtime, found.id, found.conmon))
}

fn pod_in(path: &str) -> Option<(String, Option<QosClass>)> {
    find_pod(&components(path).unwrap()).map(|pod| (pod.uid, pod.qos))
}

fn placement_of(path: &str) -> (Option<String>, Option<String>) {
    let Placement { unit, slice } = find_placement(&components(path).unwrap());
    (unit, slice)
}

#[test]
fn container_ids_are_exactly_64_lowercase_hex() {
    assert!(is_container_id(ID_A));
    assert!(!is_container_id(&ID_A[1..]));
    assert!(!is_container_id(&format!("{ID_A}0")));
    assert!(!is_container_id(&ID_A.to_uppercase()));
    assert!(!is_container_id(&ID_A.replace('9', "g")));
    for bad in [&ID_A[1..], &ID_A.to_uppercase(), &format!("{ID_A}0")] {
        assert_eq!(
            container_in(&format!("/system.slice/docker-{bad}.scope")),
            None
        );
        assert_eq!(container_in(&format!("/docker/{bad}")), None);
    }
}

#[test]
fn each_prefix_needs_its_drivers_suffix() {
    use ContainerRuntime::*;
    let found = |runtime, conmon| Some((runtime, ID_A.to_owned(), conmon));
    for (name, expected) in [
        (format!("docker-{ID_A}.scope"), found(Docker, false)),
        (format!("docker-{ID_A}"), None),
        (
            format!("cri-containerd-{ID_A}.scope"),
            found(Containerd, false),
        ),
        (format!("cri-containerd-{ID_A}"), None),
        (format!("crio-{ID_A}.scope"), found(CriO, false)),
        (format!("crio-{ID_A}"), found(CriO, false)),
        (format!("crio-conmon-{ID_A}.scope"), found(CriO, true)),
        (format!("crio-conmon-{ID_A}"), found(CriO, true)),
        (format!("libpod-{ID_A}.scope"), found(Podman, false)),
        (format!("libpod-{ID_A}"), found(Podman, false)),
        (format!("libpod-conmon-{ID_A}.scope"), found(Podman, true)),
        (format!("libpod-conmon-{ID_A}"), None),
        (format!("{ID_A}.scope"), None),
        (format!("containerd-{ID_A}.scope"), None),
    ] {
        assert_eq!(
            container_in(&format!("/some.slice/{name}")),
            expected,
            "{name}"
        );
    }
}

#[test]
fn bare_ids_count_only_under_docker_or_a_pod() {
    use ContainerRuntime::*;
    assert_eq!(
        container_in(&format!("/docker/{ID_A}")),
        Some((Docker, ID_A.into(), false))
    );
    assert_eq!(
        container_in(&format!("/kubepods/besteffort/pod{POD_UID}/{ID_A}")),
        Some((Containerd, ID_A.into(), false))
    );
    for path in [
        format!("/{ID_A}"),
        format!("/../{ID_A}"),
        format!("/default/{ID_A}"),
        format!("/random/pod{POD_UID}/{ID_A}"),
    ] {
        assert_eq!(container_in(&path), None, "{path}");
    }
}

#[test]
fn innermost_container_wins() {
    use ContainerRuntime::*;
    assert_eq!(
        container_in(&format!("/docker/{ID_B}/docker/{ID_A}")),
        Some((Docker, ID_A.into(), false))
    );
    assert_eq!(
        container_in(&format!(
            "/system.slice/docker-{ID_B}.scope/kubelet.slice/kubelet-kubepods.slice/cri-containerd-{ID_A}.scope"
        )),
        Some((Containerd, ID_A.into(), false))
    );
    // Non-container components below the container do not hide it.
    assert_eq!(
        container_in(&format!(
            "/machine.slice/libpod-{ID_A}.scope/container/init.scope"
        )),
        Some((Podman, ID_A.into(), false))
    );
}

#[test]
fn pod_uids_follow_each_drivers_spelling() {
    let systemd_uid = POD_UID.replace('-', "_");
    let expect = |qos| Some((POD_UID.to_owned(), qos));
    assert_eq!(
        pod_in(&format!("/kubepods-pod{systemd_uid}.slice")),
        expect(Some(QosClass::Guaranteed))
    );
    assert_eq!(
        pod_in(&format!("/kubepods/pod{POD_UID}")),
        expect(Some(QosClass::Guaranteed))
    );
    // Each driver's spelling is refused in the other's place.
    assert_eq!(pod_in(&format!("/kubepods-pod{POD_UID}.slice")), None);
    assert_eq!(pod_in(&format!("/kubepods/pod{systemd_uid}")), None);
    assert_eq!(
        pod_in(&format!("/kubepods/pod{}", POD_UID.to_uppercase())),
        None
    );
    assert_eq!(pod_in("/kubepods/podnot-a-uid"), None);
}

#[test]
fn pods_need_a_kubepods_ancestor() {
    let systemd_uid = POD_UID.replace('-', "_");
    for path in [
        format!("/machine-pod{systemd_uid}.slice"),
        format!("/kubepods-gold-pod{systemd_uid}.slice"),
        format!("/pod{POD_UID}"),
        format!("/other/pod{POD_UID}"),
        format!("/other/burstable/pod{POD_UID}"),
    ] {
        assert_eq!(pod_in(&path), None, "{path}");
    }
    assert_eq!(
        pod_in(&format!("/../besteffort/pod{POD_UID}")),
        Some((POD_UID.to_owned(), Some(QosClass::BestEffort)))
    );
    assert!(pod_at(&["kubepods", "burstable"], 1).is_none());
}

#[test]
fn unit_is_the_first_non_slice_component() {
    let placed = |unit: &str, slice: &str| (Some(unit.to_owned()), Some(slice.to_owned()));
    assert_eq!(
        placement_of("/system.slice/foo.service/bar.scope"),
        placed("foo.service", "system.slice")
    );
    assert_eq!(placement_of("/init.scope"), placed("init.scope", "-.slice"));
    assert_eq!(
        placement_of("/system.slice/systemd-udevd.service"),
        placed("systemd-udevd.service", "system.slice")
    );
    assert_eq!(
        placement_of("/system.slice/system-getty.slice/getty@tty1.service"),
        placed("getty@tty1.service", "system-getty.slice")
    );
    assert_eq!(
        placement_of("/system.slice/var-lib-x.mount"),
        placed("var-lib-x.mount", "system.slice")
    );
    assert_eq!(
        placement_of("/../../system.slice/a.service"),
        placed("a.service", "system.slice")
    );
}

#[test]
fn no_unit_where_systemd_would_not_see_one() {
    for path in [
        "/",
        "/system.slice",
        "/docker/abc",
        "/kubepods/burstable",
        "/system.slice/.service",
        "/system.slice/bad name.service",
        "/system.slice/foo.target",
        // Behind the reader's cgroup namespace with no visible slice, the scope
        // could be nested inside a unit we cannot see.
        "/../x.scope",
    ] {
        assert_eq!(placement_of(path), (None, None), "{path}");
    }
}

#[test]
fn names_forged_in_a_delegated_subtree_stay_inside_its_unit() {
    // User 1000 owns everything under user@1000.service and may name cgroups
    // like a runtime does; the unit shows where the names were chosen.
    let text = format!(
        "0::/user.slice/user-1000.slice/user@1000.service/kubepods/pod{POD_UID}/cri-containerd-{ID_A}.scope\n"
    );
    let info = parse_cgroup_file(&text).unwrap();
    assert_eq!(info.container.map(|found| found.id).as_deref(), Some(ID_A));
    assert_eq!(info.systemd_unit.as_deref(), Some("user@1000.service"));
    assert_eq!(info.systemd_slice.as_deref(), Some("user-1000.slice"));
}
