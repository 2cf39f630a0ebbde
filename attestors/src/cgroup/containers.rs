//! Container ids in cgroup paths: the names docker, containerd, cri-o (and its
//! conmon monitor) and podman give their cgroups under the systemd and cgroupfs
//! drivers.
//!
//! The *last* container-shaped component of a path wins. Containers nest: a kind
//! node is a docker container whose cgroup holds the pods' containerd
//! containers (`/system.slice/docker-<node>.scope/kubelet.slice/…/cri-containerd-<id>.scope`),
//! and docker-in-docker nests `/docker/<outer>/docker/<inner>`. The process is
//! in the innermost one; taking the first id names the node instead.

use std::fmt;

use super::kubernetes::pod_at;

/// The runtime whose naming scheme a container cgroup follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContainerRuntime {
    Docker,
    /// containerd's CRI plugin (Kubernetes, kind). Under the cgroupfs driver a
    /// pod's containers are bare ids; cri-dockerd names them the same way and
    /// is reported as containerd too.
    Containerd,
    CriO,
    Podman,
}

impl ContainerRuntime {
    /// The value of the `container:runtime` selector.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerRuntime::Docker => "docker",
            ContainerRuntime::Containerd => "containerd",
            ContainerRuntime::CriO => "cri-o",
            ContainerRuntime::Podman => "podman",
        }
    }
}

impl fmt::Display for ContainerRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The container a process's cgroup belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Container {
    pub runtime: ContainerRuntime,
    /// 64 lowercase hex digits, as every supported runtime names containers.
    pub id: String,
    /// The process is the runtime's monitor for the container (cri-o's or
    /// podman's `conmon`), which runs on the host, outside the container.
    pub conmon: bool,
}

/// Whether a name needs a `.scope` suffix (systemd driver), must not have one
/// (cgroupfs driver), or may be either (a runtime that uses the same prefix
/// under both drivers).
#[derive(Clone, Copy)]
enum Suffix {
    Scope,
    Either,
}

/// `<prefix><64 hex>[.scope]` names, in matching order: a conmon prefix before
/// the prefix it extends.
const PREFIXED: [(&str, ContainerRuntime, bool, Suffix); 6] = [
    (
        "cri-containerd-",
        ContainerRuntime::Containerd,
        false,
        Suffix::Scope,
    ),
    ("crio-conmon-", ContainerRuntime::CriO, true, Suffix::Either),
    ("crio-", ContainerRuntime::CriO, false, Suffix::Either),
    (
        "libpod-conmon-",
        ContainerRuntime::Podman,
        true,
        Suffix::Scope,
    ),
    ("libpod-", ContainerRuntime::Podman, false, Suffix::Either),
    ("docker-", ContainerRuntime::Docker, false, Suffix::Scope),
];

/// The innermost container named in a path's components, if any.
pub(crate) fn find_container(components: &[&str]) -> Option<Container> {
    (0..components.len())
        .rev()
        .find_map(|index| container_at(components, index))
}

/// Whether `components[index]` names a container: a runtime's prefixed name, or
/// a bare id whose parent says whose it is (`/docker/<id>` for docker's
/// cgroupfs driver, `/kubepods/…/pod<uid>/<id>` for containerd's).
fn container_at(components: &[&str], index: usize) -> Option<Container> {
    let name = *components.get(index)?;
    let (stem, scoped) = match name.strip_suffix(".scope") {
        Some(stem) => (stem, true),
        None => (name, false),
    };
    for (prefix, runtime, conmon, suffix) in PREFIXED {
        let Some(id) = stem.strip_prefix(prefix) else {
            continue;
        };
        if matches!(suffix, Suffix::Scope) && !scoped {
            continue;
        }
        if is_container_id(id) {
            return Some(Container {
                runtime,
                id: id.to_owned(),
                conmon,
            });
        }
    }
    if scoped || !is_container_id(name) {
        return None;
    }
    let parent = index.checked_sub(1)?;
    let runtime = if components[parent] == "docker" {
        ContainerRuntime::Docker
    } else if pod_at(components, parent).is_some() {
        ContainerRuntime::Containerd
    } else {
        return None;
    };
    Some(Container {
        runtime,
        id: name.to_owned(),
        conmon: false,
    })
}

/// Docker, containerd, cri-o and podman all name containers with 64 lowercase
/// hex digits. Anything else is not reported, however container-like its name.
pub(crate) fn is_container_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}
