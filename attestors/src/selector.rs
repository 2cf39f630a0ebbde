//! Selectors (`kind:key:value` facts about a process or the host), the `Attestor`
//! trait every workload attestor implements, and the error they share.
//!
//! A selector value is built from bytes a workload controls (its executable path,
//! the names of cgroups it may create), so it is escaped on construction: a
//! selector is always one printable line, and different inputs always give
//! different selectors (the escaping is injective), so no workload can make its
//! selector read like another's.

use std::fmt;
use std::path::PathBuf;

use crate::procfs::ProcessInputs;

/// A typed fact about a process or host: `kind:key:value`, e.g. `unix:uid:1000`.
///
/// `kind` and `key` are fixed by the attestor; `value` is escaped by
/// [`Selector::new`] / [`Selector::from_bytes`]: `\` becomes `\\`, newline, tab
/// and carriage return become `\n`, `\t`, `\r`, other control and invisible
/// formatting characters become `\u{…}`, and bytes that are not UTF-8 become
/// `\xNN`. Values may contain `:`; a reader splits at the first two colons only.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Selector {
    pub kind: &'static str,
    pub key: &'static str,
    pub value: String,
}

impl Selector {
    /// Builds a selector, escaping `value` so it is one printable line.
    pub fn new(kind: &'static str, key: &'static str, value: impl Into<String>) -> Self {
        let value = value.into();
        let value = if value.chars().all(|c| c != '\\' && !needs_escape(c)) {
            value
        } else {
            let mut escaped = String::with_capacity(value.len() + 8);
            escape_str_into(&mut escaped, &value);
            escaped
        };
        Selector { kind, key, value }
    }

    /// Builds a selector from raw bytes (paths and names from the kernel or NSS
    /// are bytes, not UTF-8): invalid UTF-8 is written as `\xNN`, and the rest is
    /// escaped as in [`Selector::new`].
    pub fn from_bytes(kind: &'static str, key: &'static str, value: &[u8]) -> Self {
        let mut escaped = String::with_capacity(value.len());
        for chunk in value.utf8_chunks() {
            escape_str_into(&mut escaped, chunk.valid());
            for byte in chunk.invalid() {
                escaped.push_str(&format!("\\x{byte:02x}"));
            }
        }
        Selector {
            kind,
            key,
            value: escaped,
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.kind, self.key, self.value)
    }
}

fn escape_str_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
}

/// Characters that would break a line or make two different values look alike
/// on screen: C0/C1 controls and DEL, Unicode line/paragraph separators, and the
/// invisible formatting characters used for spoofing (zero-width characters,
/// bidirectional overrides, the BOM).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// Everything an attestor or the procfs seam can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AttestorError {
    /// The process exited (or was never there) while we looked at it.
    #[error("process {pid} is gone")]
    ProcessGone { pid: i32 },

    /// A pid that can never name a process (zero or negative).
    #[error("{pid} is not a valid process id")]
    InvalidPid { pid: i32 },

    /// The process has no executable: a kernel thread, or a zombie.
    #[error("process {pid} has no executable (kernel thread or zombie)")]
    NoExecutable { pid: i32 },

    #[error("reading {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file was larger than we are willing to read; the kernel never writes
    /// this much, so something is wrong or hostile.
    #[error("{} is larger than the {limit}-byte limit", path.display())]
    TooLarge { path: PathBuf, limit: u64 },

    /// A file did not have the shape the kernel gives it.
    #[error("{} is malformed: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
}

/// Works out selectors for a local process from what the kernel says about it.
///
/// Implementations are synchronous and may block on file reads or NSS lookups:
/// call them from a blocking thread, under a deadline.
pub trait Attestor: Send + Sync {
    /// A short, stable name for logs and configuration (`unix`, `cgroup`).
    fn name(&self) -> &'static str;

    /// The selectors for process `pid`, as seen from this daemon's namespaces.
    fn attest(&self, pid: i32) -> Result<Vec<Selector>, AttestorError>;

    /// The selectors for the process whose files gave `inputs`, if this
    /// attestor's answer is derived from those inputs alone (NSS names aside).
    /// The daemon reuses such answers for as long as a fresh read of the
    /// process gives equal inputs. An attestor that looks at anything else keeps
    /// the default, `None`: then `attest` runs on every request.
    fn attest_inputs(
        &self,
        inputs: &ProcessInputs,
    ) -> Option<Result<Vec<Selector>, AttestorError>> {
        let _ = inputs;
        None
    }
}

#[cfg(test)]
#[path = "selector_test.rs"]
mod tests;
