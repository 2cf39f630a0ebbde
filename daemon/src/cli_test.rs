//! Unit tests for `cli.rs`.
use super::*;

#[test]
fn nonce_must_be_hex_and_fit_a_quote() {
    assert_eq!(parse_nonce("00ff").unwrap(), Nonce(vec![0, 255]));
    assert!(parse_nonce("").unwrap_err().contains("empty"));
    assert!(parse_nonce("zz").unwrap_err().contains("not hex"));
    assert!(parse_nonce(&"ab".repeat(65))
        .unwrap_err()
        .contains("at most 64"));
    assert!(parse_nonce(&"ab".repeat(64)).is_ok());
}

#[test]
fn cli_definition_is_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}
