//! Kubernetes pods in cgroup paths: the pod UID and QoS class the kubelet
//! encodes in the pod's cgroup name.
//!
//! - systemd driver: `kubepods[-<qos>]-pod<uid with _ for ->.slice`, nested under
//!   `kubepods.slice` (kind prefixes `kubelet-`, from `--cgroup-root=/kubelet`);
//!   the slice name spells out the whole hierarchy, so it is self-describing.
//! - cgroupfs driver: `kubepods/[<qos>/]pod<uid>`; the QoS is the parent
//!   directory, and a Guaranteed pod sits directly under `kubepods`.

use std::fmt;

use crate::host::is_uuid;

/// A pod's Kubernetes quality-of-service class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl QosClass {
    /// The value of the `k8s:qos` selector.
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "guaranteed",
            QosClass::Burstable => "burstable",
            QosClass::BestEffort => "besteffort",
        }
    }
}

impl fmt::Display for QosClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pod a process's cgroup belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pod {
    /// The pod's `metadata.uid`, with dashes: a UUID, or 32 hex digits for a
    /// static pod (the kubelet hashes the manifest).
    pub uid: String,
    /// `None` when the cgroupfs QoS directory is hidden by the reader's cgroup
    /// namespace (`/../pod<uid>/…`): a missing QoS directory there does not
    /// mean Guaranteed.
    pub qos: Option<QosClass>,
}

/// The innermost pod named in a path's components, if any.
pub(crate) fn find_pod(components: &[&str]) -> Option<Pod> {
    (0..components.len())
        .rev()
        .find_map(|index| pod_at(components, index))
}

/// Whether `components[index]` is a pod's cgroup.
pub(crate) fn pod_at(components: &[&str], index: usize) -> Option<Pod> {
    let name = *components.get(index)?;
    match name.strip_suffix(".slice") {
        Some(stem) => systemd_pod(stem),
        None => cgroupfs_pod(components, index),
    }
}

/// `[<prefix>-]kubepods[-burstable|-besteffort]-pod<uid>` (the `.slice` removed).
/// systemd uses `-` for nesting, so the kubelet writes the UID's dashes as `_`.
fn systemd_pod(stem: &str) -> Option<Pod> {
    let parts: Vec<&str> = stem.split('-').collect();
    let (last, outer) = parts.split_last()?;
    let uid = last.strip_prefix("pod")?.replace('_', "-");
    if !is_pod_uid(&uid) {
        return None;
    }
    let qos = match outer {
        [.., "kubepods", "burstable"] => QosClass::Burstable,
        [.., "kubepods", "besteffort"] => QosClass::BestEffort,
        [.., "kubepods"] => QosClass::Guaranteed,
        _ => return None,
    };
    Some(Pod {
        uid,
        qos: Some(qos),
    })
}

/// `pod<uid>` under `kubepods`, `kubepods/burstable` or `kubepods/besteffort`.
/// Behind a cgroup namespace the ancestors may read `..`; the pod is still
/// recognised, with the QoS only if its directory is visible.
fn cgroupfs_pod(components: &[&str], index: usize) -> Option<Pod> {
    let uid = components.get(index)?.strip_prefix("pod")?;
    if !is_pod_uid(uid) {
        return None;
    }
    let ancestor = |levels: usize| index.checked_sub(levels).map(|at| components[at]);
    let qos = match (ancestor(1)?, ancestor(2)) {
        ("kubepods", _) => Some(QosClass::Guaranteed),
        ("burstable", Some("kubepods" | "..")) => Some(QosClass::Burstable),
        ("besteffort", Some("kubepods" | "..")) => Some(QosClass::BestEffort),
        ("..", _) => None,
        _ => return None,
    };
    Some(Pod {
        uid: uid.to_owned(),
        qos,
    })
}

/// A UUID (API-server pods) or 32 lowercase hex digits (static pods).
fn is_pod_uid(uid: &str) -> bool {
    is_uuid(uid)
        || (uid.len() == 32
            && uid
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')))
}
