//! Unit tests for `policy.rs`: rule parsing and evaluation.
use attestd_verifier::{HashAlg, PcrValues};

use super::{BootFacts, NodeFacts, NodePolicy, PolicyError};
use crate::config::PolicyConfig;

fn policy(rules: &[&str]) -> Result<NodePolicy, PolicyError> {
    NodePolicy::parse(&PolicyConfig {
        rules: rules.iter().map(|r| r.to_string()).collect(),
        ..PolicyConfig::default()
    })
}

fn pcrs(pcr7: u8) -> PcrValues {
    let mut values = PcrValues::new();
    values.insert(HashAlg::Sha256, 7, vec![pcr7; 32]);
    values
}

#[test]
fn a_pcr_rule_holds_only_for_a_listed_value_and_names_the_value_it_saw() {
    let rule = format!(
        "pcr.sha256.7 in [\"{}\", \"{}\"]",
        "11".repeat(32),
        "22".repeat(32)
    );
    let policy = policy(&[&rule]).unwrap();
    let values = pcrs(0x22);
    let held = policy
        .evaluate(NodeFacts {
            pcrs: &values,
            boot: None,
        })
        .unwrap();
    assert_eq!(held, vec![format!("{rule}: held")]);

    let values = pcrs(0x33);
    let failed = policy
        .evaluate(NodeFacts {
            pcrs: &values,
            boot: None,
        })
        .unwrap_err();
    assert_eq!(failed.rule, rule);
    assert_eq!(
        failed.reason,
        format!("the quoted value is {}", "33".repeat(32))
    );
}

#[test]
fn boot_rules_need_an_event_log_and_check_what_it_says() {
    let policy = policy(&[
        "secure_boot == true",
        "kernel_cmdline contains \"ima_policy=tcb\"",
    ])
    .unwrap();
    let values = pcrs(0);
    let without_log = policy
        .evaluate(NodeFacts {
            pcrs: &values,
            boot: None,
        })
        .unwrap_err();
    assert_eq!(without_log.reason, "the node sent no boot event log");

    let off = BootFacts {
        secure_boot: Some(false),
        ..BootFacts::default()
    };
    let failed = policy
        .evaluate(NodeFacts {
            pcrs: &values,
            boot: Some(&off),
        })
        .unwrap_err();
    assert_eq!(failed.rule, "secure_boot == true");
    assert_eq!(failed.reason, "the event log says secure_boot == false");

    let good = BootFacts {
        secure_boot: Some(true),
        kernel_cmdline: Some("root=/dev/vda ima_policy=tcb quiet".into()),
        kernel_sha256: None,
    };
    assert_eq!(
        policy
            .evaluate(NodeFacts {
                pcrs: &values,
                boot: Some(&good)
            })
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn mistakes_in_rules_are_config_errors_that_quote_the_rule() {
    for (rule, reason) in [
        ("secure_boot = true", "unknown rule"),
        ("secure_boot == yes", "not a TOML"),
        ("pcr.sha256.9 == \"00\"", "is 1 bytes; expected 32"),
        ("pcr.md5.7 == \"00\"", "unknown PCR bank"),
        ("pcr.sha256.24 == \"00\"", "not a PCR index"),
        ("kernel_digest in []", "empty list"),
        ("justoneword", "expected `<subject> <operator> <value>`"),
    ] {
        let error = policy(&[rule]).unwrap_err().to_string();
        assert!(error.contains(rule), "{error}");
        assert!(error.contains(reason), "{rule}: {error}");
    }
    // A PCR the node is not asked to quote could never be checked.
    let error = policy(&[&format!("pcr.sha256.9 == \"{}\"", "00".repeat(32))])
        .unwrap_err()
        .to_string();
    assert!(error.contains("not in quote_pcrs"), "{error}");
}

#[test]
fn require_event_log_refuses_a_node_without_one() {
    let policy = NodePolicy::parse(&PolicyConfig {
        require_event_log: true,
        ..PolicyConfig::default()
    })
    .unwrap();
    let values = pcrs(0);
    let failed = policy
        .evaluate(NodeFacts {
            pcrs: &values,
            boot: None,
        })
        .unwrap_err();
    assert_eq!(failed.rule, "require_event_log = true");
}
