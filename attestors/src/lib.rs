//! Evidence collection for attestd. Today: the TPM (`tpm`), the only module that
//! touches TPM hardware. Process, cgroup, binary and host attestors join it later.

pub mod tpm;
