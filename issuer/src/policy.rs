//! Node policy: which PCRs a node quotes, and the rules its quoted PCRs and
//! replayed event log must satisfy. A rule is one line of text:
//!
//! ```text
//! pcr.sha256.7 == "<hex>"                 a quoted PCR has this value
//! pcr.sha256.7 in ["<hex>", "<hex>"]      ...one of these values
//! secure_boot == true                     the event log says Secure Boot was on
//! kernel_cmdline contains "ima_policy="   the logged kernel command line
//! kernel_digest in ["<hex>"]              SHA-256 of the booted kernel image
//! ```
//!
//! The right-hand side is a TOML value (a string, a boolean or an array of
//! strings). A refusal names the rule that failed, and why.

use attestd_verifier::{HashAlg, PcrSelection, PcrValues};

use crate::config::{EkTrustMode, PolicyConfig};

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("quote_pcrs entry {entry:?}: {reason}")]
    QuotePcrs { entry: String, reason: String },
    #[error("rule `{rule}`: {reason}")]
    Rule { rule: String, reason: String },
}

/// What the boot event log said, as far as policy cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootFacts {
    pub secure_boot: Option<bool>,
    pub kernel_cmdline: Option<String>,
    /// SHA-256 digest of the last boot application (the kernel), if logged.
    pub kernel_sha256: Option<Vec<u8>>,
}

/// Everything verified about a node that a rule may look at.
#[derive(Debug, Clone, Copy)]
pub struct NodeFacts<'a> {
    pub pcrs: &'a PcrValues,
    /// None when the node sent no event log.
    pub boot: Option<&'a BootFacts>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    PcrIn {
        bank: HashAlg,
        index: u8,
        allowed: Vec<Vec<u8>>,
    },
    SecureBoot(bool),
    CmdlineContains(String),
    KernelDigestIn(Vec<Vec<u8>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    text: String,
    check: Check,
}

/// A rule that did not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy rule `{rule}` failed: {reason}")]
pub struct RuleFailed {
    pub rule: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct NodePolicy {
    pub ek_trust: EkTrustMode,
    pub quote_pcrs: Vec<PcrSelection>,
    pub require_event_log: bool,
    pub rules: Vec<Rule>,
}

impl NodePolicy {
    pub fn parse(config: &PolicyConfig) -> Result<NodePolicy, PolicyError> {
        let quote_pcrs = config
            .quote_pcrs
            .iter()
            .map(|entry| parse_selection(entry))
            .collect::<Result<Vec<_>, _>>()?;
        let rules = config
            .rules
            .iter()
            .map(|text| Rule::parse(text))
            .collect::<Result<Vec<_>, _>>()?;
        for rule in &rules {
            if let Check::PcrIn { bank, index, .. } = &rule.check {
                let quoted = quote_pcrs
                    .iter()
                    .any(|selection| selection.hash == *bank && selection.pcrs.contains(index));
                if !quoted {
                    return Err(PolicyError::Rule {
                        rule: rule.text.clone(),
                        reason: format!(
                            "PCR {index} of bank {} is not in quote_pcrs, so it would never be checked",
                            bank_name(*bank)
                        ),
                    });
                }
            }
        }
        Ok(NodePolicy {
            ek_trust: config.ek_trust,
            quote_pcrs,
            require_event_log: config.require_event_log,
            rules,
        })
    }

    /// Checks every rule in order; the first that fails is the answer. On success,
    /// one line per rule says what held.
    pub fn evaluate(&self, facts: NodeFacts<'_>) -> Result<Vec<String>, RuleFailed> {
        if self.require_event_log && facts.boot.is_none() {
            return Err(RuleFailed {
                rule: "require_event_log = true".into(),
                reason: "the node sent no boot event log".into(),
            });
        }
        self.rules
            .iter()
            .map(|rule| {
                rule.evaluate(facts)
                    .map(|()| format!("{}: held", rule.text))
            })
            .collect()
    }
}

impl Rule {
    pub fn parse(text: &str) -> Result<Rule, PolicyError> {
        let error = |reason: String| PolicyError::Rule {
            rule: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        let (subject, rest) = trimmed
            .split_once(char::is_whitespace)
            .ok_or_else(|| error("expected `<subject> <operator> <value>`".into()))?;
        let (operator, value) = rest
            .trim_start()
            .split_once(char::is_whitespace)
            .ok_or_else(|| error("expected `<subject> <operator> <value>`".into()))?;
        let value = parse_value(value.trim()).map_err(error)?;
        let check = match (subject, operator) {
            ("secure_boot", "==") => match value {
                toml::Value::Boolean(expected) => Check::SecureBoot(expected),
                _ => return Err(error("secure_boot compares with true or false".into())),
            },
            ("kernel_cmdline", "contains") => match value {
                toml::Value::String(needle) if !needle.is_empty() => Check::CmdlineContains(needle),
                _ => return Err(error("kernel_cmdline contains a non-empty string".into())),
            },
            ("kernel_digest", "in") => Check::KernelDigestIn(hex_list(value, 32).map_err(error)?),
            ("kernel_digest", "==") => {
                Check::KernelDigestIn(hex_list(toml::Value::Array(vec![value]), 32).map_err(error)?)
            }
            (pcr, "==" | "in") if pcr.starts_with("pcr.") => {
                let (bank, index) = parse_pcr_subject(pcr).map_err(error)?;
                let value = if operator == "==" {
                    toml::Value::Array(vec![value])
                } else {
                    value
                };
                Check::PcrIn {
                    bank,
                    index,
                    allowed: hex_list(value, bank.digest_len()).map_err(error)?,
                }
            }
            _ => {
                return Err(error(format!(
                "unknown rule `{subject} {operator}`; see docs/issuer.md for the rules there are"
            )))
            }
        };
        Ok(Rule {
            text: trimmed.to_owned(),
            check,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    fn evaluate(&self, facts: NodeFacts<'_>) -> Result<(), RuleFailed> {
        let fail = |reason: String| RuleFailed {
            rule: self.text.clone(),
            reason,
        };
        let boot = || {
            facts
                .boot
                .ok_or_else(|| fail("the node sent no boot event log".into()))
        };
        match &self.check {
            Check::PcrIn {
                bank,
                index,
                allowed,
            } => {
                let value = facts
                    .pcrs
                    .get(*bank, *index)
                    .ok_or_else(|| fail("the PCR was not quoted".into()))?;
                if allowed.iter().any(|allowed| allowed == value) {
                    Ok(())
                } else {
                    Err(fail(format!("the quoted value is {}", hex::encode(value))))
                }
            }
            Check::SecureBoot(expected) => match boot()?.secure_boot {
                Some(actual) if actual == *expected => Ok(()),
                Some(actual) => Err(fail(format!("the event log says secure_boot == {actual}"))),
                None => Err(fail(
                    "the event log does not record the SecureBoot variable".into(),
                )),
            },
            Check::CmdlineContains(needle) => match &boot()?.kernel_cmdline {
                Some(cmdline) if cmdline.contains(needle.as_str()) => Ok(()),
                Some(cmdline) => Err(fail(format!("the logged command line is {cmdline:?}"))),
                None => Err(fail("the event log records no kernel command line".into())),
            },
            Check::KernelDigestIn(allowed) => match &boot()?.kernel_sha256 {
                Some(digest) if allowed.iter().any(|a| a == digest) => Ok(()),
                Some(digest) => Err(fail(format!(
                    "the kernel's digest is {}",
                    hex::encode(digest)
                ))),
                None => Err(fail("the event log records no kernel image".into())),
            },
        }
    }
}

fn parse_value(text: &str) -> Result<toml::Value, String> {
    #[derive(serde::Deserialize)]
    struct Holder {
        v: toml::Value,
    }
    toml::from_str::<Holder>(&format!("v = {text}"))
        .map(|holder| holder.v)
        .map_err(|_| format!("{text:?} is not a TOML string, boolean or array"))
}

fn hex_list(value: toml::Value, len: usize) -> Result<Vec<Vec<u8>>, String> {
    let toml::Value::Array(items) = value else {
        return Err("expected an array of hex strings".into());
    };
    if items.is_empty() {
        return Err("an empty list can never hold".into());
    }
    items
        .into_iter()
        .map(|item| {
            let toml::Value::String(text) = item else {
                return Err("expected hex strings".into());
            };
            let bytes = hex::decode(text.trim()).map_err(|_| format!("{text:?} is not hex"))?;
            if bytes.len() != len {
                return Err(format!("{text:?} is {} bytes; expected {len}", bytes.len()));
            }
            Ok(bytes)
        })
        .collect()
}

/// `pcr.<bank>.<index>`
fn parse_pcr_subject(subject: &str) -> Result<(HashAlg, u8), String> {
    let mut parts = subject.split('.');
    let (Some("pcr"), Some(bank), Some(index), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("{subject:?} is not pcr.<bank>.<index>"));
    };
    let bank = parse_bank(bank)?;
    let index = parse_index(index)?;
    Ok((bank, index))
}

fn parse_bank(name: &str) -> Result<HashAlg, String> {
    match name {
        "sha1" => Ok(HashAlg::Sha1),
        "sha256" => Ok(HashAlg::Sha256),
        "sha384" => Ok(HashAlg::Sha384),
        "sha512" => Ok(HashAlg::Sha512),
        other => Err(format!(
            "unknown PCR bank {other:?} (sha1, sha256, sha384, sha512)"
        )),
    }
}

pub(crate) fn bank_name(bank: HashAlg) -> &'static str {
    match bank {
        HashAlg::Sha1 => "sha1",
        HashAlg::Sha256 => "sha256",
        HashAlg::Sha384 => "sha384",
        HashAlg::Sha512 => "sha512",
    }
}

fn parse_index(text: &str) -> Result<u8, String> {
    match text.parse::<u8>() {
        Ok(index) if index < 24 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(index),
        _ => Err(format!("{text:?} is not a PCR index (0-23)")),
    }
}

/// "sha256:0,1,2"
fn parse_selection(entry: &str) -> Result<PcrSelection, PolicyError> {
    let error = |reason: String| PolicyError::QuotePcrs {
        entry: entry.to_owned(),
        reason,
    };
    let (bank, indices) = entry
        .split_once(':')
        .ok_or_else(|| error("expected bank:i,j,...".into()))?;
    let hash = parse_bank(bank.trim()).map_err(error)?;
    let mut pcrs = indices
        .split(',')
        .map(|index| parse_index(index.trim()))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(error)?;
    pcrs.sort_unstable();
    pcrs.dedup();
    Ok(PcrSelection { hash, pcrs })
}

#[cfg(test)]
#[path = "policy_test.rs"]
mod tests;
