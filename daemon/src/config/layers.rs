//! Loading configuration layers and reporting problems with their origin.
//!
//! Each file is checked on its own against the full schema (every field has a
//! default), so a typo or a wrong type is reported with that file's line. The
//! layers are then merged table by table, later layers winning, and the merged
//! result is checked as a whole.

use std::fmt;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::Config;

/// Config files larger than this are refused rather than parsed.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
const ENV_PREFIX: &str = "ATTESTD_";

/// Where the layers come from. Tests pass their own `env` instead of mutating the
/// process environment.
#[derive(Clone, Debug, Default)]
pub struct ConfigSources {
    /// The main file; it must exist when given.
    pub file: Option<PathBuf>,
    /// Drop-in directory; a missing directory is simply empty.
    pub dropin_dir: Option<PathBuf>,
    /// Environment, e.g. `std::env::vars().collect()`. Only `ATTESTD_SECTION__KEY`
    /// names are read (`ATTESTD_API__SOCKET` is `api.socket`).
    pub env: Vec<(String, String)>,
}

/// One thing wrong with the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// A file path or "environment variable NAME" or "merged configuration".
    pub origin: String,
    pub line: Option<usize>,
    /// Dotted key path, e.g. `api.socket`, when known.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found, not just the first.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, problem) in self.problems.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Loads and validates all layers.
pub fn load(sources: &ConfigSources) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let mut layers: Vec<Table> = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(file) = &sources.file {
        files.push(file.clone());
    }
    if let Some(dir) = &sources.dropin_dir {
        match dropin_files(dir) {
            Ok(found) => files.extend(found),
            Err(problem) => problems.push(problem),
        }
    }
    for file in &files {
        match file_layer(file) {
            Ok(table) => layers.push(table),
            Err(mut found) => problems.append(&mut found),
        }
    }
    match env_layer(&sources.env) {
        Ok(table) => layers.push(table),
        Err(mut found) => problems.append(&mut found),
    }
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    let mut merged = Table::new();
    for layer in layers {
        merge(&mut merged, layer);
    }
    let merged_origin = || "merged configuration".to_owned();
    let config: Config =
        serde_path_to_error::deserialize(Value::Table(merged)).map_err(|error| ConfigError {
            problems: vec![ConfigProblem {
                origin: merged_origin(),
                line: None,
                key: key_of(error.path()),
                message: error.inner().to_string(),
            }],
        })?;
    let invalid: Vec<ConfigProblem> = config
        .validate()
        .into_iter()
        .map(|(key, message)| ConfigProblem {
            origin: merged_origin(),
            line: None,
            key: Some(key),
            message,
        })
        .collect();
    if invalid.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError { problems: invalid })
    }
}

fn dropin_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigProblem> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ConfigProblem {
                origin: dir.display().to_string(),
                line: None,
                key: None,
                message: format!("cannot read drop-in directory: {e}"),
            })
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

fn file_layer(path: &Path) -> Result<Table, Vec<ConfigProblem>> {
    let origin = path.display().to_string();
    let problem = |line, key, message: String| ConfigProblem {
        origin: origin.clone(),
        line,
        key,
        message,
    };
    let text = read_capped(path).map_err(|message| vec![problem(None, None, message)])?;
    let table: Table = toml::from_str(&text).map_err(|error| {
        vec![problem(
            error.span().map(|span| line_of(&text, span.start)),
            None,
            error.message().to_owned(),
        )]
    })?;
    // Check this file alone against the schema, for errors with its own lines.
    let checked: Result<Config, _> =
        serde_path_to_error::deserialize(toml::Deserializer::new(&text));
    if let Err(error) = checked {
        return Err(vec![problem(
            error.inner().span().map(|span| line_of(&text, span.start)),
            key_of(error.path()),
            error.inner().message().to_owned(),
        )]);
    }
    Ok(table)
}

fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!("larger than {MAX_CONFIG_BYTES} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())
}

fn env_layer(env: &[(String, String)]) -> Result<Table, Vec<ConfigProblem>> {
    let mut table = Table::new();
    let mut problems = Vec::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        // Only SECTION__KEY names are configuration; ATTESTD_LOG and friends are not.
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        let section_table = table
            .entry(section.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(section_table) = section_table {
            section_table.insert(key.clone(), env_value(value));
        }
        let mut single = Table::new();
        let mut inner = Table::new();
        inner.insert(key.clone(), env_value(value));
        single.insert(section.clone(), Value::Table(inner));
        let checked: Result<Config, _> = serde_path_to_error::deserialize(Value::Table(single));
        if let Err(error) = checked {
            problems.push(ConfigProblem {
                origin: format!("environment variable {name}"),
                line: None,
                key: Some(format!("{section}.{key}")),
                message: error.inner().to_string(),
            });
        }
    }
    if problems.is_empty() {
        Ok(table)
    } else {
        Err(problems)
    }
}

/// A variable's value as TOML when it parses as a TOML value (numbers, booleans,
/// quoted strings), else as a plain string: `ATTESTD_API__SOCKET=/run/x.sock` works
/// without quotes.
fn env_value(raw: &str) -> Value {
    toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_owned()))
}

fn merge(into: &mut Table, layer: Table) {
    for (key, value) in layer {
        match (into.get_mut(&key), value) {
            (Some(Value::Table(existing)), Value::Table(incoming)) => merge(existing, incoming),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

fn key_of(path: &serde_path_to_error::Path) -> Option<String> {
    let text = path.to_string();
    (text != "." && !text.is_empty()).then_some(text)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
