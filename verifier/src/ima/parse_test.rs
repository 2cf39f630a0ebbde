//! Unit tests for IMA log parsing.

use super::*;
use crate::ima::test_support::*;

#[test]
fn parses_ima_ng_and_ima_sig_entries() {
    let bytes = [
        ima_ng("boot_aggregate", b"pcrs"),
        ima_sig("/usr/bin/bash", b"elf", b"\x03\x02sig"),
        ima_sig("/etc/passwd", b"root", b""),
    ]
    .concat();
    let log = parse_ima_log(&bytes).expect("valid log");
    assert_eq!(log.entries.len(), 3);
    let bash = &log.entries[1];
    assert_eq!(bash.pcr, 10);
    assert_eq!(bash.template, ImaTemplate::ImaSig);
    assert_eq!(bash.file_digest_algorithm, "sha256");
    assert_eq!(
        bash.file_digest,
        ring::digest::digest(&ring::digest::SHA256, b"elf").as_ref()
    );
    assert_eq!(bash.path, b"/usr/bin/bash");
    assert_eq!(bash.signature.as_deref(), Some(&b"\x03\x02sig"[..]));
    let sha256_elf = ring::digest::digest(&ring::digest::SHA256, b"elf");
    assert_eq!(
        bash.template_data,
        template_data(
            "sha256",
            sha256_elf.as_ref(),
            b"/usr/bin/bash",
            Some(b"\x03\x02sig")
        )
    );
    assert!(!bash.is_violation());
    assert_eq!(log.entries[0].template, ImaTemplate::ImaNg);
    assert_eq!(log.entries[0].signature, None);
    // An empty sig field is no signature.
    assert_eq!(log.entries[2].signature, None);
}

#[test]
fn an_empty_log_has_no_entries() {
    assert_eq!(parse_ima_log(&[]), Ok(ImaLog { entries: vec![] }));
}

#[test]
fn recognises_violations_by_their_zero_template_digest() {
    let log = parse_ima_log(&violation("/tmp/racy")).unwrap();
    assert!(log.entries[0].is_violation());
}

#[test]
fn accepts_a_sha1_file_digest_and_a_name_without_nul() {
    let mut data = field(b"sha1:\0aaaaaaaaaaaaaaaaaaaa");
    data.extend_from_slice(&field(b"/bin/true"));
    let log = parse_ima_log(&raw_entry(10, sha1(&data), "ima-ng", &data)).unwrap();
    assert_eq!(log.entries[0].file_digest_algorithm, "sha1");
    assert_eq!(log.entries[0].file_digest, b"aaaaaaaaaaaaaaaaaaaa");
    assert_eq!(log.entries[0].path, b"/bin/true");
}

#[test]
fn keeps_an_unknown_file_digest_algorithm_of_any_length() {
    let data = template_data("blake9", &[7; 5], b"/x", None);
    let log = parse_ima_log(&raw_entry(10, sha1(&data), "ima-ng", &data)).unwrap();
    assert_eq!(log.entries[0].file_digest_algorithm, "blake9");
    assert_eq!(log.entries[0].file_digest, vec![7; 5]);
}

#[test]
fn rejects_unknown_templates_by_name() {
    for name in ["ima", "ima-buf", "ima-modsig", "\u{1}"] {
        let data = template_data("sha256", &[0; 32], b"/x", None);
        let bytes = [ima_ng("/ok", b""), raw_entry(10, sha1(&data), name, &data)].concat();
        let error = parse_ima_log(&bytes).unwrap_err();
        assert_eq!(
            error,
            ImaError::UnsupportedTemplate {
                entry: 1,
                name: name.to_owned()
            }
        );
        assert!(error.to_string().contains(&format!("{name:?}")), "{error}");
    }
}

#[test]
fn rejects_a_d_ng_field_without_an_algorithm_prefix() {
    for digest_field in [
        &b"sha256\0abc"[..],
        b":\0abc",
        b"no nul at all",
        b"sh a:\0x",
    ] {
        let mut data = field(digest_field);
        data.extend_from_slice(&field(b"/x\0"));
        let bytes = raw_entry(10, sha1(&data), "ima-ng", &data);
        assert_eq!(
            parse_ima_log(&bytes),
            Err(ImaError::MissingDigestAlgorithm { entry: 0 }),
            "{digest_field:?}"
        );
    }
}

#[test]
fn rejects_a_file_digest_of_the_wrong_length_for_its_algorithm() {
    let data = template_data("sha256", &[1; 20], b"/x", None);
    assert_eq!(
        parse_ima_log(&raw_entry(10, sha1(&data), "ima-ng", &data)),
        Err(ImaError::FileDigestLength {
            entry: 0,
            algorithm: "sha256".to_owned(),
            expected: 32,
            actual: 20
        })
    );
}

#[test]
fn rejects_extra_fields_in_the_template_data() {
    let mut data = template_data("sha256", &[1; 32], b"/x", None);
    data.extend_from_slice(&field(b"extra"));
    assert_eq!(
        parse_ima_log(&raw_entry(10, sha1(&data), "ima-ng", &data)),
        Err(ImaError::Malformed {
            entry: 0,
            source: ParseError::TrailingBytes {
                structure: "ima-ng",
                count: 9
            }
        })
    );
}

#[test]
fn rejects_an_ima_sig_entry_without_its_sig_field() {
    let data = template_data("sha256", &[1; 32], b"/x", None);
    assert!(matches!(
        parse_ima_log(&raw_entry(10, sha1(&data), "ima-sig", &data)),
        Err(ImaError::Malformed {
            entry: 0,
            source: ParseError::Truncated { field: "sig", .. }
        })
    ));
}

#[test]
fn a_field_longer_than_the_template_data_is_refused() {
    let mut data = (u32::MAX).to_le_bytes().to_vec();
    data.extend_from_slice(b"sha256:\0");
    assert!(matches!(
        parse_ima_log(&raw_entry(10, sha1(&data), "ima-ng", &data)),
        Err(ImaError::Malformed {
            entry: 0,
            source: ParseError::TooLarge { field: "d-ng", .. }
        })
    ));
}

#[test]
fn truncated_entries_name_the_entry_and_field() {
    let bytes = [ima_ng("/a", b"a"), ima_ng("/b", b"b")].concat();
    let first_len = ima_ng("/a", b"a").len();
    for (cut, field) in [
        (first_len + 2, "pcr"),
        (first_len + 10, "template digest"),
        (first_len + 26, "template name"),
        (bytes.len() - 1, "template data"),
    ] {
        let error = parse_ima_log(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(
                error,
                ImaError::Malformed { entry: 1, source: ParseError::Truncated { field: f, .. } } if f == field
            ),
            "cut at {cut}: {error:?}"
        );
    }
}

#[test]
fn rejects_oversized_names_data_and_logs_before_reading_them() {
    let mut entry = 10u32.to_le_bytes().to_vec();
    entry.extend_from_slice(&[1; 20]);
    entry.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        parse_ima_log(&entry),
        Err(ImaError::Malformed {
            source: ParseError::TooLarge {
                field: "template name",
                ..
            },
            ..
        })
    ));
    let mut entry = 10u32.to_le_bytes().to_vec();
    entry.extend_from_slice(&[1; 20]);
    entry.extend_from_slice(&field(b"ima-ng"));
    entry.extend_from_slice(
        &u32::try_from(MAX_TEMPLATE_DATA_LEN + 1)
            .unwrap()
            .to_le_bytes(),
    );
    assert!(matches!(
        parse_ima_log(&entry),
        Err(ImaError::Malformed {
            source: ParseError::TooLarge {
                field: "template data",
                ..
            },
            ..
        })
    ));
    let huge = vec![0u8; MAX_IMA_LOG_LEN + 1];
    assert_eq!(
        parse_ima_log(&huge),
        Err(ImaError::LogTooLarge {
            size: MAX_IMA_LOG_LEN + 1,
            max: MAX_IMA_LOG_LEN
        })
    );
}

#[test]
fn stops_at_the_entry_cap() {
    let bytes = [ima_ng("/a", b"a"), ima_ng("/b", b"b"), ima_ng("/c", b"c")].concat();
    assert_eq!(parse_entries(&bytes, 3).map(|log| log.entries.len()), Ok(3));
    assert_eq!(
        parse_entries(&bytes, 2),
        Err(ImaError::TooManyEntries { max: 2 })
    );
}
