//! Shared helpers for the integration tests: fixture loading, a software AK
//! that signs hand-built TPM structures, and a software ActivateCredential.
#![allow(dead_code)]

pub mod activate;
pub mod tpm_builder;

use std::path::PathBuf;

use attestd_verifier::{HashAlg, PcrValues, TpmPublic};

pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

pub fn fixture_text(name: &str) -> String {
    String::from_utf8(fixture(name)).expect("fixture is UTF-8")
}

/// The AK public areas swtpm produced, by fixture stem.
pub const AK_FIXTURES: [&str; 4] = [
    "ecc256-ecdsa",
    "ecc384-ecdsa",
    "rsa2048-rsassa",
    "rsa2048-rsapss",
];

pub fn ak(stem: &str) -> TpmPublic {
    TpmPublic::parse_tpm2b(&fixture(&format!("ak-{stem}.pub.tpm2b"))).expect("AK fixture parses")
}

pub fn quote_attest(stem: &str) -> Vec<u8> {
    fixture(&format!("quote-{stem}.attest"))
}

pub fn quote_signature(stem: &str) -> Vec<u8> {
    fixture(&format!("quote-{stem}.sig"))
}

/// The nonce every fixture quote was made with.
pub fn nonce() -> Vec<u8> {
    hex::decode(fixture_text("nonce.hex").trim()).expect("nonce is hex")
}

/// PCR values read from swtpm right after quoting ("bank index hex" lines).
pub fn pcr_values() -> PcrValues {
    fixture_text("pcrs.txt")
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let bank = match fields[0] {
                "sha1" => HashAlg::Sha1,
                "sha256" => HashAlg::Sha256,
                "sha384" => HashAlg::Sha384,
                "sha512" => HashAlg::Sha512,
                other => panic!("unknown bank {other}"),
            };
            let index: u8 = fields[1].parse().expect("PCR index");
            (bank, index, hex::decode(fields[2]).expect("PCR value hex"))
        })
        .collect()
}

pub fn pem_fixture(name: &str) -> Vec<Vec<u8>> {
    attestd_verifier::parse_pem_bundle(&fixture(name)).expect("PEM fixture parses")
}

/// 2096-ish: after every fixture certificate's notBefore, before its notAfter.
pub const NOW: i64 = 4_000_000_000;
