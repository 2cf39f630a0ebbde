//! Registration entries: which workload, on which node, is entitled to which
//! SPIFFE ID. One TOML file (docs/issuer.md#registration-entries), parsed
//! strictly: unknown keys, malformed IDs and selectors, duplicates and values
//! out of range are errors naming the entry and key, all of them at once.
//!
//! An entry matches when every node selector is among the node's (proved by
//! node attestation, carried in its node SVID) and every selector is among the
//! workload's (from its evidence).

mod syntax;

#[cfg(test)]
#[path = "entries_test.rs"]
mod entries_test;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::ca::MAX_DNS_NAMES;

pub use syntax::{
    is_reserved, spiffe_id_trust_domain, MAX_HINT_LEN, MAX_SELECTOR_LEN, MAX_SPIFFE_ID_LEN,
    RESERVED_PATH,
};

/// Largest entries file read.
pub const MAX_ENTRIES_FILE_BYTES: u64 = 8 << 20;
/// Most entries in one file.
pub const MAX_ENTRIES: usize = 50_000;
/// Most selectors (and, separately, node selectors) in one entry.
pub const MAX_SELECTORS_PER_ENTRY: usize = 64;
pub const DEFAULT_X509_TTL_SECS: u64 = 3600;
pub const DEFAULT_JWT_TTL_SECS: u64 = 300;
/// Longest X.509-SVID lifetime an entry may ask for: 30 days.
pub const MAX_X509_TTL_SECS: u64 = 30 * 24 * 3600;
/// Longest JWT-SVID lifetime an entry may ask for: one day. A JWT cannot be
/// revoked, so it should be short.
pub const MAX_JWT_TTL_SECS: u64 = 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum EntriesError {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: larger than {MAX_ENTRIES_FILE_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("{}: {}", path.display(), problems.join("; "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

impl EntriesError {
    /// Every problem, one line each, naming the file.
    pub fn problems(&self) -> Vec<String> {
        match self {
            EntriesError::Invalid { path, problems } => problems
                .iter()
                .map(|problem| format!("{}: {problem}", path.display()))
                .collect(),
            other => vec![other.to_string()],
        }
    }
}

/// The file: `[[entry]]` tables and nothing else.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntriesFile {
    #[serde(default)]
    entry: Vec<EntryFields>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFields {
    spiffe_id: String,
    #[serde(default)]
    node_selectors: Vec<String>,
    selectors: Vec<String>,
    #[serde(default = "default_x509_ttl")]
    x509_ttl_secs: u64,
    #[serde(default = "default_jwt_ttl")]
    jwt_ttl_secs: u64,
    #[serde(default)]
    dns_names: Vec<String>,
    #[serde(default)]
    hint: String,
}

fn default_x509_ttl() -> u64 {
    DEFAULT_X509_TTL_SECS
}
fn default_jwt_ttl() -> u64 {
    DEFAULT_JWT_TTL_SECS
}

/// One registration entry, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub spiffe_id: String,
    /// Sorted, no duplicates; empty: any attested node.
    pub node_selectors: Vec<String>,
    /// Sorted, no duplicates, at least one.
    pub selectors: Vec<String>,
    pub x509_ttl: Duration,
    pub jwt_ttl: Duration,
    pub dns_names: Vec<String>,
    /// Empty when the entry has none.
    pub hint: String,
}

impl Entry {
    /// `node` and `workload` sorted.
    fn matches(&self, node: &[&str], workload: &[&str]) -> bool {
        contains_all(workload, &self.selectors) && contains_all(node, &self.node_selectors)
    }
}

fn contains_all(haystack: &[&str], needles: &[String]) -> bool {
    needles
        .iter()
        .all(|needle| haystack.binary_search(&needle.as_str()).is_ok())
}

/// The entries in force.
#[derive(Debug, Clone, Default)]
pub struct Entries {
    entries: Vec<Entry>,
    /// Each entry's index under its first selector: a workload can only match
    /// entries filed under one of its own selectors, so matching looks at
    /// those alone, not at every entry.
    by_first_selector: HashMap<String, Vec<usize>>,
    trust_domain: Option<String>,
}

impl Entries {
    /// Reads and checks the file at `path`. Returns the entries and the
    /// file's bytes (for the revision). With `trust_domain`, every SPIFFE ID
    /// must be in it; without, they must all share one.
    pub fn load(
        path: &Path,
        trust_domain: Option<&str>,
    ) -> Result<(Entries, Vec<u8>), EntriesError> {
        let read_error = |source| EntriesError::Read {
            path: path.to_owned(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(read_error)?
            .take(MAX_ENTRIES_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        if bytes.len() as u64 > MAX_ENTRIES_FILE_BYTES {
            return Err(EntriesError::TooLarge {
                path: path.to_owned(),
            });
        }
        let text = std::str::from_utf8(&bytes).map_err(|error| EntriesError::Invalid {
            path: path.to_owned(),
            problems: vec![format!("not UTF-8: {error}")],
        })?;
        let entries = Self::parse(text, trust_domain, path)?;
        Ok((entries, bytes))
    }

    /// Parses and checks entries; `path` is for messages only.
    pub fn parse(
        text: &str,
        trust_domain: Option<&str>,
        path: &Path,
    ) -> Result<Entries, EntriesError> {
        let invalid = |problems: Vec<String>| EntriesError::Invalid {
            path: path.to_owned(),
            problems,
        };
        let deserializer = toml::Deserializer::new(text);
        let file: EntriesFile =
            serde_path_to_error::deserialize(deserializer).map_err(|error| {
                let key = error.path().to_string();
                let inner = error.into_inner();
                let line = inner
                    .span()
                    .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
                let message = inner.message().trim().replace('\n', "; ");
                let key = if key == "." {
                    String::new()
                } else {
                    format!("{key}: ")
                };
                invalid(vec![match line {
                    Some(line) => format!("line {line}: {key}{message}"),
                    None => format!("{key}{message}"),
                }])
            })?;
        if file.entry.len() > MAX_ENTRIES {
            return Err(invalid(vec![format!(
                "{} entries; at most {MAX_ENTRIES}",
                file.entry.len()
            )]));
        }

        let mut problems = Vec::new();
        let mut domain = trust_domain.map(str::to_owned);
        let mut entries = Vec::with_capacity(file.entry.len());
        let mut seen: HashMap<(String, Vec<String>, Vec<String>), usize> = HashMap::new();
        for (index, fields) in file.entry.into_iter().enumerate() {
            let entry = match check_entry(fields, &mut domain) {
                Ok(entry) => entry,
                Err(found) => {
                    problems.extend(
                        found
                            .into_iter()
                            .map(|(key, problem)| format!("entry[{index}].{key}: {problem}")),
                    );
                    continue;
                }
            };
            let key = (
                entry.spiffe_id.clone(),
                entry.node_selectors.clone(),
                entry.selectors.clone(),
            );
            if let Some(first) = seen.insert(key, index) {
                problems.push(format!(
                    "entry[{index}]: repeats entry[{first}] (same spiffe_id, node_selectors and selectors)"
                ));
                continue;
            }
            entries.push(entry);
        }
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        let mut by_first_selector: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            // check_entry guarantees at least one selector.
            if let Some(first) = entry.selectors.first() {
                by_first_selector
                    .entry(first.clone())
                    .or_default()
                    .push(index);
            }
        }
        Ok(Entries {
            entries,
            by_first_selector,
            trust_domain: domain,
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// The entries' trust domain: the one they were checked against, or the
    /// one they share. `None` when none was given and there are no entries.
    pub fn trust_domain(&self) -> Option<&str> {
        self.trust_domain.as_deref()
    }

    /// The entries a workload with selectors `workload` on a node with
    /// selectors `node` matches, in file order, one per SPIFFE ID (the first
    /// entry that names it).
    pub fn matching(&self, node: &[String], workload: &[String]) -> Vec<&Entry> {
        let node = sorted(node);
        let workload = sorted(workload);
        let mut candidates: Vec<usize> = workload
            .iter()
            .filter_map(|selector| self.by_first_selector.get(*selector))
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable();
        let mut matched: Vec<&Entry> = Vec::new();
        for index in candidates {
            let entry = &self.entries[index];
            if entry.matches(&node, &workload)
                && !matched.iter().any(|m| m.spiffe_id == entry.spiffe_id)
            {
                matched.push(entry);
            }
        }
        matched
    }
}

fn sorted(selectors: &[String]) -> Vec<&str> {
    let mut sorted: Vec<&str> = selectors.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
}

/// A problem with one key of an entry.
type Problem = (&'static str, String);

/// Checks one entry and returns every problem with it. `domain` is the trust
/// domain entries must share (set by the first valid ID when not given).
fn check_entry(fields: EntryFields, domain: &mut Option<String>) -> Result<Entry, Vec<Problem>> {
    let mut problems: Vec<Problem> = Vec::new();
    match spiffe_id_trust_domain(&fields.spiffe_id) {
        Err(reason) => problems.push(("spiffe_id", reason)),
        Ok(found) => {
            let expected = domain.get_or_insert_with(|| found.to_owned());
            if expected != found {
                problems.push((
                    "spiffe_id",
                    format!(
                        "{:?} is not in the trust domain {expected:?}",
                        fields.spiffe_id
                    ),
                ));
            } else if is_reserved(&fields.spiffe_id, found) {
                problems.push((
                    "spiffe_id",
                    format!(
                        "{:?}: paths under {RESERVED_PATH} are the issuer's own (node SVIDs)",
                        fields.spiffe_id
                    ),
                ));
            }
        }
    }
    let node_selectors = selector_list(
        "node_selectors",
        fields.node_selectors,
        syntax::node_selector,
        &mut problems,
    );
    if fields.selectors.is_empty() {
        problems.push((
            "selectors",
            "name at least one: an entry without selectors would match every workload".into(),
        ));
    }
    let selectors = selector_list(
        "selectors",
        fields.selectors,
        syntax::workload_selector,
        &mut problems,
    );
    if !(1..=MAX_X509_TTL_SECS).contains(&fields.x509_ttl_secs) {
        problems.push(("x509_ttl_secs", format!("must be 1 to {MAX_X509_TTL_SECS}")));
    }
    if !(1..=MAX_JWT_TTL_SECS).contains(&fields.jwt_ttl_secs) {
        problems.push(("jwt_ttl_secs", format!("must be 1 to {MAX_JWT_TTL_SECS}")));
    }
    if fields.dns_names.len() > MAX_DNS_NAMES {
        problems.push(("dns_names", format!("at most {MAX_DNS_NAMES} names")));
    }
    let mut dns_names: Vec<String> = Vec::with_capacity(fields.dns_names.len());
    for name in fields.dns_names {
        if let Err(reason) = syntax::dns_name(&name) {
            problems.push(("dns_names", reason));
        } else if dns_names.contains(&name) {
            problems.push(("dns_names", format!("{name:?} is listed twice")));
        } else {
            dns_names.push(name);
        }
    }
    if let Err(reason) = syntax::hint(&fields.hint) {
        problems.push(("hint", reason));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Entry {
        spiffe_id: fields.spiffe_id,
        node_selectors,
        selectors,
        x509_ttl: Duration::from_secs(fields.x509_ttl_secs),
        jwt_ttl: Duration::from_secs(fields.jwt_ttl_secs),
        dns_names,
        hint: fields.hint,
    })
}

/// Checks each selector; returns them sorted. A repeated selector is a
/// problem (most likely a typo for another one).
fn selector_list(
    key: &'static str,
    selectors: Vec<String>,
    check: fn(&str) -> Result<(), String>,
    problems: &mut Vec<Problem>,
) -> Vec<String> {
    if selectors.len() > MAX_SELECTORS_PER_ENTRY {
        problems.push((key, format!("at most {MAX_SELECTORS_PER_ENTRY} selectors")));
        return Vec::new();
    }
    let mut checked: Vec<String> = Vec::with_capacity(selectors.len());
    for selector in selectors {
        if let Err(reason) = check(&selector) {
            problems.push((key, reason));
        } else if checked.contains(&selector) {
            problems.push((key, format!("{selector:?} is listed twice")));
        } else {
            checked.push(selector);
        }
    }
    checked.sort();
    checked
}
