//! Unit tests for the file-level parsing in `parse.rs` and `mod.rs`: lines,
//! paths, hostile input and the selectors rendered from the result.
use super::{parse_cgroup_file, CgroupInfo};
use crate::selector::AttestorError;

const ID_A: &str = "99f781dabca74929ce2ffd1ceb2480b2d13cfdfd4241792ed7e81bbb99ac6ba9";
const ID_B: &str = "28a16203b3679738f3b82bb5b611c54d0e30468aa2994f4e23847a5374ad0d7a";
const POD_UID: &str = "ec0cb378-2b07-4fa9-93b5-de6a98d997c4";

fn parse(text: &str) -> CgroupInfo {
    parse_cgroup_file(text).unwrap_or_else(|error| panic!("{text:?}: {error}"))
}

fn refusal(text: &str) -> String {
    match parse_cgroup_file(text) {
        Err(AttestorError::Malformed { reason, .. }) => reason,
        other => panic!("{text:?} should be refused, got {other:?}"),
    }
}

fn rendered(info: &CgroupInfo) -> Vec<String> {
    info.selectors().iter().map(ToString::to_string).collect()
}

#[test]
fn keeps_v1_and_v2_paths_verbatim_in_kernel_order() {
    let info = parse(&format!(
        "3:cpu,cpuacct:/docker/{ID_A}\n2:rdma:/\n1:name=systemd:/docker/{ID_A}\n0::/system.slice/containerd.service\n"
    ));
    assert_eq!(
        info.v2_path.as_deref(),
        Some("/system.slice/containerd.service")
    );
    assert_eq!(
        info.v1_paths,
        [
            ("cpu,cpuacct".to_owned(), format!("/docker/{ID_A}")),
            ("rdma".to_owned(), "/".to_owned()),
            ("name=systemd".to_owned(), format!("/docker/{ID_A}")),
        ]
    );
    assert_eq!(
        rendered(&info),
        [
            "cgroup:v2-path:/system.slice/containerd.service".to_owned(),
            format!("cgroup:v1-path:cpu,cpuacct:/docker/{ID_A}"),
            "cgroup:v1-path:rdma:/".to_owned(),
            format!("cgroup:v1-path:name=systemd:/docker/{ID_A}"),
            "container:runtime:docker".to_owned(),
            format!("container:id:{ID_A}"),
        ]
    );
}

#[test]
fn renders_every_selector_for_a_kubernetes_container() {
    let slice = format!("kubepods-burstable-pod{}.slice", POD_UID.replace('-', "_"));
    let path =
        format!("/kubepods.slice/kubepods-burstable.slice/{slice}/cri-containerd-{ID_A}.scope");
    let info = parse(&format!("0::{path}\n"));
    assert_eq!(
        rendered(&info),
        [
            format!("cgroup:v2-path:{path}"),
            format!("systemd:unit:cri-containerd-{ID_A}.scope"),
            format!("systemd:slice:{slice}"),
            "container:runtime:containerd".to_owned(),
            format!("container:id:{ID_A}"),
            format!("k8s:pod-uid:{POD_UID}"),
            "k8s:qos:burstable".to_owned(),
        ]
    );
}

#[test]
fn conmon_never_gets_the_container_id_selector() {
    let info = parse(&format!("0::/machine.slice/libpod-conmon-{ID_A}.scope\n"));
    let selectors = rendered(&info);
    assert!(
        selectors.contains(&format!("container:conmon:{ID_A}")),
        "{selectors:?}"
    );
    assert!(!selectors
        .iter()
        .any(|selector| selector.starts_with("container:id:")));
}

#[test]
fn hidden_qos_gives_a_pod_uid_but_no_qos_selector() {
    let info = parse(&format!("0::/../pod{POD_UID}/{ID_A}\n"));
    let selectors = rendered(&info);
    assert!(selectors.contains(&format!("k8s:pod-uid:{POD_UID}")));
    assert!(!selectors
        .iter()
        .any(|selector| selector.starts_with("k8s:qos:")));
}

#[test]
fn namespace_root_and_above_it_name_nothing() {
    for text in ["0::/\n", "0::/..\n", "0::/../..\n"] {
        let info = parse(text);
        assert_eq!(info.container, None);
        assert_eq!(info.pod, None);
        assert_eq!(info.systemd_unit, None);
        assert_eq!(rendered(&info).len(), 1, "{text:?}");
    }
}

#[test]
fn odd_but_legal_names_are_kept_and_escaped() {
    // `:` may appear in a cgroup name; only the first two split the line.
    let info = parse("0::/system.slice/a:b.service\n");
    assert_eq!(info.v2_path.as_deref(), Some("/system.slice/a:b.service"));
    assert_eq!(info.systemd_unit.as_deref(), Some("a:b.service"));
    // A tab is legal in a delegated cgroup's name, and never reaches a selector raw.
    let info = parse("0::/user.slice/user-1000.slice/user@1000.service/a\tb\n");
    assert_eq!(
        rendered(&info)[0],
        "cgroup:v2-path:/user.slice/user-1000.slice/user@1000.service/a\\tb"
    );
}

#[test]
fn final_newline_is_optional() {
    assert_eq!(parse("0::/init.scope"), parse("0::/init.scope\n"));
}

#[test]
fn smuggled_v2_line_is_refused() {
    // A delegated cgroup named "evil\n0::" followed by child cgroups
    // `kubepods/pod<uid>/<id>` would print as two v2 lines.
    let text = format!(
        "0::/user.slice/user-1000.slice/user@1000.service/evil\n0::/kubepods/pod{POD_UID}/{ID_A}\n"
    );
    assert!(refusal(&text).contains("after the cgroup v2 line"));
}

#[test]
fn smuggled_v1_line_is_refused() {
    let text = format!("4:memory:/evil\n4:memory:/docker/{ID_A}\n1:name=systemd:/\n");
    assert!(refusal(&text).contains("appears twice"));
    let text = format!("0::/evil\n4:memory:/docker/{ID_A}\n");
    assert!(refusal(&text).contains("after the cgroup v2 line"));
}

#[test]
fn hierarchies_naming_different_containers_are_refused() {
    let text = format!("2:memory:/docker/{ID_A}\n1:name=systemd:/docker/{ID_B}\n");
    assert!(refusal(&text).contains("different containers"));
    let text = format!(
        "2:memory:/kubepods/pod{POD_UID}/{ID_A}\n1:cpu:/kubepods/burstable/pod{POD_UID}/{ID_A}\n"
    );
    assert!(refusal(&text).contains("different pods"));
}

#[test]
fn removed_cgroup_is_refused() {
    let text = format!("0::/system.slice/docker-{ID_A}.scope (deleted)\n");
    assert!(refusal(&text).contains("removed"));
}

#[test]
fn lines_not_in_the_kernel_shape_are_refused() {
    for (text, expected) in [
        ("", "empty"),
        ("\n", "empty"),
        ("garbage\n", "not `id:controllers:path`"),
        ("0:/\n", "not `id:controllers:path`"),
        ("x::/\n", "not a number"),
        ("+1:cpu:/\n", "not a number"),
        ("99999999999:cpu:/\n", "not a number"),
        ("4294967296:cpu:/\n", "out of range"),
        ("0:cpu:/\n", "names controllers"),
        ("1::/\n", "no controllers"),
        ("1:cpu!:/\n", "malformed"),
        ("1:cpu,:/\n", "malformed"),
        ("0::relative/path\n", "not absolute"),
        ("0::\n", "not absolute"),
        ("0::/a//b\n", "empty component"),
        ("0::/a/\n", "empty component"),
        ("0::/a/./b\n", "`.` component"),
        ("0::/a/../b\n", "`..` after a name"),
        ("0::/\n\n", "line 2"),
    ] {
        let reason = refusal(text);
        assert!(
            reason.contains(expected),
            "{text:?}: {reason:?} lacks {expected:?}"
        );
    }
}
