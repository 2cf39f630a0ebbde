//! Unit tests for IMA replay and verification; expected PCR values are
//! chained with ring in the test support, not by the code under test.

use super::*;
use crate::ima::parse_ima_log;
use crate::ima::test_support::*;

fn entries() -> Vec<Vec<u8>> {
    vec![
        ima_ng("boot_aggregate", b"pcrs"),
        ima_sig("/usr/bin/bash", b"elf", b"\x03\x02sig"),
        violation("/var/log/racy"),
        ima_ng("/etc/passwd", b"root"),
    ]
}

fn quoted(banks: &[HashAlg], entries: &[Vec<u8>]) -> PcrValues {
    banks
        .iter()
        .map(|&bank| (bank, 10, expected_pcr(bank, entries)))
        .collect()
}

#[test]
fn replays_each_bank_with_its_own_template_hash() {
    let log = parse_ima_log(&entries().concat()).unwrap();
    for bank in [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384] {
        assert_eq!(
            replay_ima_log(&log, bank, 10).unwrap(),
            expected_pcr(bank, &entries()),
            "{bank}"
        );
    }
}

#[test]
fn replay_ignores_entries_for_other_pcrs() {
    let mut other = ima_ng("/other", b"x");
    other[0] = 11;
    let log = parse_ima_log(&[entries().concat(), other].concat()).unwrap();
    assert_eq!(
        replay_ima_log(&log, HashAlg::Sha256, 10).unwrap(),
        expected_pcr(HashAlg::Sha256, &entries())
    );
}

#[test]
fn verifies_and_lists_files_in_order_without_violations() {
    let log = parse_ima_log(&entries().concat()).unwrap();
    let claims = verify_ima_log(
        &log,
        &quoted(&[HashAlg::Sha1, HashAlg::Sha256], &entries()),
        10,
    )
    .expect("log matches quote");
    let paths: Vec<&str> = claims.files.iter().map(|file| file.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["boot_aggregate", "/usr/bin/bash", "/etc/passwd"]
    );
    assert_eq!(claims.violations, 1);
    assert_eq!(claims.entries_after_quote, 0);
    let bash = &claims.files[1];
    assert_eq!(bash.algorithm, "sha256");
    assert_eq!(
        bash.digest,
        ring::digest::digest(&ring::digest::SHA256, b"elf").as_ref()
    );
    assert_eq!(bash.signature.as_deref(), Some(&b"\x03\x02sig"[..]));
    assert_eq!(claims.files[0].signature, None);
}

#[test]
fn a_mismatch_names_the_bank_and_both_values() {
    let log = parse_ima_log(&entries().concat()).unwrap();
    let mut pcrs = quoted(&[HashAlg::Sha1, HashAlg::Sha256], &entries());
    pcrs.insert(HashAlg::Sha256, 10, vec![0xaa; 32]);
    let error = verify_ima_log(&log, &pcrs, 10).unwrap_err();
    let replayed = hex(&expected_pcr(HashAlg::Sha256, &entries()));
    assert_eq!(
        error,
        ImaError::PcrMismatch {
            bank: HashAlg::Sha256,
            pcr: 10,
            quoted: "aa".repeat(32),
            replayed: replayed.clone()
        }
    );
    assert!(error.to_string().contains(&replayed), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("PCR sha256:10 was quoted as aaaa"),
        "{error}"
    );
}

#[test]
fn entries_logged_after_the_quote_are_counted_not_claimed() {
    let all = entries();
    let log = parse_ima_log(&all.concat()).unwrap();
    let claims = verify_ima_log(&log, &quoted(&[HashAlg::Sha256], &all[..2]), 10).unwrap();
    let paths: Vec<&str> = claims.files.iter().map(|file| file.path.as_str()).collect();
    assert_eq!(paths, vec!["boot_aggregate", "/usr/bin/bash"]);
    assert_eq!(claims.violations, 0);
    assert_eq!(claims.entries_after_quote, 2);
}

#[test]
fn a_quote_of_an_untouched_pcr_verifies_no_entries() {
    let log = parse_ima_log(&entries().concat()).unwrap();
    let claims = verify_ima_log(&log, &quoted(&[HashAlg::Sha256], &[]), 10).unwrap();
    assert!(claims.files.is_empty());
    assert_eq!(claims.entries_after_quote, 4);
}

#[test]
fn a_log_shorter_than_the_quote_is_refused() {
    let all = entries();
    let log = parse_ima_log(&all[..3].concat()).unwrap();
    assert!(matches!(
        verify_ima_log(&log, &quoted(&[HashAlg::Sha256], &all), 10),
        Err(ImaError::PcrMismatch { .. })
    ));
}

#[test]
fn every_quoted_bank_must_match_at_the_same_entry() {
    let all = entries();
    let log = parse_ima_log(&all.concat()).unwrap();
    let mut pcrs = quoted(&[HashAlg::Sha256], &all);
    pcrs.insert(HashAlg::Sha1, 10, expected_pcr(HashAlg::Sha1, &all[..2]));
    assert!(matches!(
        verify_ima_log(&log, &pcrs, 10),
        Err(ImaError::PcrMismatch {
            bank: HashAlg::Sha1,
            ..
        })
    ));
}

#[test]
fn refuses_when_the_pcr_is_not_quoted() {
    let log = parse_ima_log(&entries().concat()).unwrap();
    let mut pcrs = PcrValues::new();
    pcrs.insert(HashAlg::Sha256, 7, vec![0; 32]);
    assert_eq!(
        verify_ima_log(&log, &pcrs, 10),
        Err(ImaError::PcrNotQuoted { pcr: 10 })
    );
}

#[test]
fn a_template_digest_that_is_not_sha1_of_the_data_is_refused() {
    let mut bytes = ima_ng("/usr/bin/bash", b"elf");
    bytes[4] ^= 1;
    let log = parse_ima_log(&bytes).unwrap();
    let error = verify_ima_log(&log, &quoted(&[HashAlg::Sha256], &[]), 10).unwrap_err();
    assert!(
        matches!(error, ImaError::TemplateDigestMismatch { entry: 0, .. }),
        "{error:?}"
    );
    assert!(replay_ima_log(&log, HashAlg::Sha256, 10).is_err());
}

#[test]
fn escapes_paths_so_they_are_unambiguous() {
    assert_eq!(escape_path(b"/usr/bin/bash"), "/usr/bin/bash");
    assert_eq!(escape_path("/tmp/caf\u{e9}".as_bytes()), "/tmp/caf\u{e9}");
    assert_eq!(escape_path(b"a\\b"), "a\\\\b");
    assert_eq!(escape_path(b"new\nline\ttab\r"), "new\\nline\\ttab\\r");
    assert_eq!(escape_path(b"bell\x07del\x7f"), "bell\\u{7}del\\u{7f}");
    assert_eq!(escape_path(b"bad\xff\xfeutf8"), "bad\\xff\\xfeutf8");
}

#[test]
fn claimed_paths_are_escaped() {
    let bytes = ima_ng("/tmp/x\ny", b"x");
    let log = parse_ima_log(&bytes).unwrap();
    let claims = verify_ima_log(
        &log,
        &quoted(&[HashAlg::Sha256], std::slice::from_ref(&bytes)),
        10,
    )
    .unwrap();
    assert_eq!(claims.files[0].path, "/tmp/x\\ny");
}
