//! The `cgroup` attestor: which cgroups a process is in (v1 and v2), and what
//! their names say — systemd unit and slice, container id and runtime,
//! Kubernetes pod UID and QoS class.
//!
//! Parsing is pure ([`parse_cgroup_file`]) and split by concern: `parse` (the
//! file's lines and paths), `containers`, `kubernetes`, `systemd`.
//!
//! Paths are as the *reader* sees them: relative to the daemon's cgroup
//! namespace. Run the daemon in the host's cgroup namespace; from inside a
//! container, other containers' paths start with `..` and may hide what the
//! names above them would have said.

mod containers;
mod kubernetes;
mod parse;
mod systemd;

use std::path::PathBuf;

pub use containers::{Container, ContainerRuntime};
pub use kubernetes::{Pod, QosClass};

use crate::procfs::{ProcFs, ProcessInputs};
use crate::selector::{Attestor, AttestorError, Selector};

/// What a process's `/proc/<pid>/cgroup` says about it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupInfo {
    /// The cgroup v2 path (`0::<path>`), if the v2 hierarchy is mounted.
    pub v2_path: Option<String>,
    /// `(controllers, path)` per cgroup v1 hierarchy, in the kernel's order;
    /// controllers as the kernel prints them (`cpu,cpuacct`, `name=systemd`).
    pub v1_paths: Vec<(String, String)>,
    /// The unit the process is in (`nginx.service`, `docker-<id>.scope`).
    pub systemd_unit: Option<String>,
    /// The slice directly enclosing that unit (`system.slice`, `-.slice`).
    pub systemd_slice: Option<String>,
    /// The innermost container, if a path names one.
    pub container: Option<Container>,
    /// The innermost Kubernetes pod, if a path names one.
    pub pod: Option<Pod>,
}

impl CgroupInfo {
    /// `cgroup:v2-path`, `cgroup:v1-path` (`<controllers>:<path>`),
    /// `systemd:unit`, `systemd:slice`, `container:runtime`, `container:id`
    /// (or `container:conmon` for a runtime monitor), `k8s:pod-uid`, `k8s:qos`.
    pub fn selectors(&self) -> Vec<Selector> {
        let mut selectors = Vec::with_capacity(self.v1_paths.len() + 8);
        if let Some(path) = &self.v2_path {
            selectors.push(Selector::new("cgroup", "v2-path", path.as_str()));
        }
        for (controllers, path) in &self.v1_paths {
            selectors.push(Selector::new(
                "cgroup",
                "v1-path",
                format!("{controllers}:{path}"),
            ));
        }
        if let Some(unit) = &self.systemd_unit {
            selectors.push(Selector::new("systemd", "unit", unit.as_str()));
        }
        if let Some(slice) = &self.systemd_slice {
            selectors.push(Selector::new("systemd", "slice", slice.as_str()));
        }
        if let Some(container) = &self.container {
            selectors.push(Selector::new(
                "container",
                "runtime",
                container.runtime.as_str(),
            ));
            // conmon runs on the host, outside the container: it must never be
            // mistaken for the container, so it gets its own key.
            let key = if container.conmon { "conmon" } else { "id" };
            selectors.push(Selector::new("container", key, container.id.as_str()));
        }
        if let Some(pod) = &self.pod {
            selectors.push(Selector::new("k8s", "pod-uid", pod.uid.as_str()));
            if let Some(qos) = pod.qos {
                selectors.push(Selector::new("k8s", "qos", qos.as_str()));
            }
        }
        selectors
    }
}

/// Parses the text of `/proc/<pid>/cgroup`.
///
/// Each hierarchy's path is read for a container and a pod; if two paths name
/// different ones the file is refused rather than one picked. The systemd unit
/// comes from the `name=systemd` v1 hierarchy if there is one, else from v2.
/// Errors are [`AttestorError::Malformed`] with the path `cgroup`;
/// [`CgroupAttestor`] puts the real path in.
pub fn parse_cgroup_file(text: &str) -> Result<CgroupInfo, AttestorError> {
    parse_info(text).map_err(|reason| AttestorError::Malformed {
        path: PathBuf::from("cgroup"),
        reason,
    })
}

fn parse_info(text: &str) -> Result<CgroupInfo, String> {
    let lines = parse::parse_lines(text)?;
    let mut info = CgroupInfo::default();
    for line in &lines {
        if line.hierarchy == 0 {
            info.v2_path = Some(line.path.to_owned());
        } else {
            info.v1_paths
                .push((line.controllers.to_owned(), line.path.to_owned()));
        }
        agree(
            &mut info.container,
            containers::find_container(&line.components),
            "container",
        )?;
        agree(&mut info.pod, kubernetes::find_pod(&line.components), "pod")?;
    }

    // systemd and the runtimes keep `name=systemd` current wherever it exists
    // (v1 and hybrid hosts). On a hybrid host the v2 line is not: runc leaves a
    // docker container's process in containerd.service there, and reading the
    // unit from it would put every container in that service.
    let systemd_source = lines
        .iter()
        .find(|line| line.controllers == "name=systemd")
        .or_else(|| lines.iter().find(|line| line.hierarchy == 0));
    if let Some(line) = systemd_source {
        let placement = systemd::find_placement(&line.components);
        info.systemd_unit = placement.unit;
        info.systemd_slice = placement.slice;
    }
    Ok(info)
}

/// Keeps the first value found, and refuses a different one from another
/// hierarchy: the kernel puts a process in one container, so disagreement means
/// a file we do not understand, and guessing could name the wrong workload.
fn agree<T: PartialEq + std::fmt::Debug>(
    slot: &mut Option<T>,
    found: Option<T>,
    what: &str,
) -> Result<(), String> {
    match (slot.as_ref(), found) {
        (_, None) => Ok(()),
        (None, found) => {
            *slot = found;
            Ok(())
        }
        (Some(existing), Some(found)) if *existing == found => Ok(()),
        (Some(existing), Some(found)) => Err(format!(
            "hierarchies name different {what}s: {existing:?} and {found:?}"
        )),
    }
}

/// Reports a process's cgroup selectors, read through [`ProcFs`].
#[derive(Clone, Debug)]
pub struct CgroupAttestor {
    procfs: ProcFs,
}

impl CgroupAttestor {
    pub fn new(procfs: ProcFs) -> Self {
        CgroupAttestor { procfs }
    }

    /// The parsed cgroup facts for `pid`, for callers that want more than
    /// selectors.
    pub fn info(&self, pid: i32) -> Result<CgroupInfo, AttestorError> {
        let text = self.procfs.cgroup(pid)?;
        parse_cgroup_file(&text).map_err(|error| match error {
            AttestorError::Malformed { reason, .. } => AttestorError::Malformed {
                path: self.procfs.root().join(pid.to_string()).join("cgroup"),
                reason,
            },
            other => other,
        })
    }
}

impl Attestor for CgroupAttestor {
    fn name(&self) -> &'static str {
        "cgroup"
    }

    fn attest(&self, pid: i32) -> Result<Vec<Selector>, AttestorError> {
        Ok(self.info(pid)?.selectors())
    }

    fn attest_inputs(
        &self,
        inputs: &ProcessInputs,
    ) -> Option<Result<Vec<Selector>, AttestorError>> {
        Some(parse_cgroup_file(&inputs.cgroup).map(|info| info.selectors()))
    }
}

#[cfg(test)]
#[path = "parse_test.rs"]
mod parse_tests;

#[cfg(test)]
#[path = "runtimes_test.rs"]
mod runtimes_tests;

#[cfg(test)]
#[path = "names_test.rs"]
mod names_tests;
