//! Evidence collection for attestd: the TPM (`tpm`, the only module that touches
//! TPM hardware), and what the kernel says about a local process: `unix` (ids,
//! executable), `cgroup` (cgroup paths, systemd units, containers, Kubernetes
//! pods), `host`, and `binary` (hashing executables, with a cache).

pub mod binary;
pub mod cgroup;
pub mod host;
pub mod procfs;
pub mod selector;
pub mod tpm;
pub mod unix;
