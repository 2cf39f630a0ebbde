//! Unit tests for `entries`: the file format, its checks, and matching.

use std::path::Path;
use std::time::Duration;

use super::{Entries, EntriesError, MAX_ENTRIES_FILE_BYTES, MAX_SELECTORS_PER_ENTRY};

const TD: &str = "example.org";

fn parse(text: &str) -> Result<Entries, EntriesError> {
    Entries::parse(text, Some(TD), Path::new("entries.toml"))
}

/// The problems of a file that must be refused.
fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(entries) => panic!("accepted {} entries from:\n{text}", entries.len()),
        Err(EntriesError::Invalid { problems, .. }) => problems,
        Err(other) => panic!("not a validation error: {other}"),
    }
}

fn entry(spiffe_id: &str, selectors: &[&str], node_selectors: &[&str]) -> String {
    format!(
        "[[entry]]\nspiffe_id = {spiffe_id:?}\nselectors = {selectors:?}\nnode_selectors = {node_selectors:?}\n"
    )
}

fn ek(byte: u8) -> String {
    format!("tpm:ek:{}", hex::encode([byte; 32]))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_complete_entry_parses_and_defaults_fill_the_rest() {
    let text = format!(
        r#"
[[entry]]
spiffe_id = "spiffe://example.org/payments"
node_selectors = ["{ek}", "tpm:secure_boot:true"]
selectors = ["unix:uid:1000", "systemd:unit:payments.service"]
x509_ttl_secs = 600
jwt_ttl_secs = 60
dns_names = ["payments.internal", "payments-1.internal"]
hint = "internal"

[[entry]]
spiffe_id = "spiffe://example.org/batch"
selectors = ["unix:uid:2000"]
"#,
        ek = ek(1)
    );
    let entries = parse(&text).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries.trust_domain(), Some(TD));
    let all: Vec<_> = entries.iter().collect();
    let payments = all[0];
    assert_eq!(payments.spiffe_id, "spiffe://example.org/payments");
    // Sorted, so matching can binary-search them.
    assert_eq!(
        payments.selectors,
        strings(&["systemd:unit:payments.service", "unix:uid:1000"])
    );
    assert_eq!(
        payments.node_selectors,
        vec![ek(1), "tpm:secure_boot:true".into()]
    );
    assert_eq!(payments.x509_ttl, Duration::from_secs(600));
    assert_eq!(payments.jwt_ttl, Duration::from_secs(60));
    assert_eq!(
        payments.dns_names,
        strings(&["payments.internal", "payments-1.internal"])
    );
    assert_eq!(payments.hint, "internal");
    let batch = all[1];
    assert!(batch.node_selectors.is_empty());
    assert_eq!(batch.x509_ttl, Duration::from_secs(3600));
    assert_eq!(batch.jwt_ttl, Duration::from_secs(300));
    assert!(batch.dns_names.is_empty());
    assert_eq!(batch.hint, "");
}

#[test]
fn an_empty_file_holds_no_entries() {
    assert!(parse("").unwrap().is_empty());
    assert!(parse("# nothing yet\n").unwrap().is_empty());
}

#[test]
fn unknown_keys_and_wrong_types_name_the_entry_and_key() {
    let typo = problems(
        "[[entry]]\nspiffe_id = \"spiffe://example.org/a\"\nselectors = [\"unix:uid:1\"]\n\
         [[entry]]\nspiffe_id = \"spiffe://example.org/b\"\nselector = [\"unix:uid:1\"]\n",
    );
    assert_eq!(typo.len(), 1);
    assert!(
        typo[0].contains("entry[1]") && typo[0].contains("unknown field `selector`"),
        "{typo:?}"
    );
    assert!(typo[0].starts_with("line "), "{typo:?}");

    let wrong_type = problems(
        "[[entry]]\nspiffe_id = \"spiffe://example.org/a\"\nselectors = [\"unix:uid:1\"]\nx509_ttl_secs = \"1h\"\n",
    );
    assert!(
        wrong_type[0].contains("entry[0].x509_ttl_secs"),
        "{wrong_type:?}"
    );

    let top = problems("entries = []\n");
    assert!(top[0].contains("unknown field `entries`"), "{top:?}");
    let missing = problems("[[entry]]\nspiffe_id = \"spiffe://example.org/a\"\n");
    assert!(
        missing[0].contains("missing field `selectors`"),
        "{missing:?}"
    );
}

#[test]
fn every_problem_is_reported_at_once_with_its_entry_and_key() {
    let text = format!(
        "{}{}{}",
        entry("spiffe://example.org/ok", &["unix:uid:1"], &[]),
        entry("spiffe://other.org/a", &["unix:uid:1"], &["unix:uid:0"]),
        "[[entry]]\nspiffe_id = \"spiffe://example.org/c\"\nselectors = []\njwt_ttl_secs = 0\ndns_names = [\"*.example.org\"]\n",
    );
    let found = problems(&text);
    let expect = [
        "entry[1].spiffe_id: \"spiffe://other.org/a\" is not in the trust domain \"example.org\"",
        "entry[1].node_selectors: \"unix:uid:0\": node selectors are tpm:",
        "entry[2].selectors: name at least one",
        "entry[2].jwt_ttl_secs: must be 1 to 86400",
        "entry[2].dns_names: \"*.example.org\" is not a DNS name",
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for (problem, expected) in found.iter().zip(expect) {
        assert!(problem.starts_with(expected), "{problem:?} vs {expected:?}");
    }
}

#[test]
fn malformed_spiffe_ids_are_refused() {
    let cases = [
        ("example.org/a", "does not start with"),
        ("SPIFFE://example.org/a", "does not start with"),
        ("spiffe://Example.org/a", "trust domain"),
        ("spiffe://example.org:443/a", "trust domain"),
        ("spiffe://user@example.org/a", "trust domain"),
        ("spiffe://example.org", "names the trust domain itself"),
        ("spiffe://example.org/", "empty path segment"),
        ("spiffe://example.org/a//b", "empty path segment"),
        ("spiffe://example.org/a/", "empty path segment"),
        ("spiffe://example.org/a/../b", "\"..\" path segment"),
        ("spiffe://example.org/./b", "\".\" path segment"),
        ("spiffe://example.org/a?b=c", "not '?'"),
        ("spiffe://example.org/a#b", "not '#'"),
        ("spiffe://example.org/a%20b", "not '%'"),
        ("spiffe://example.org/a b", "not ' '"),
        ("spiffe://example.org/attestd/node/ab", "the issuer's own"),
        ("spiffe://example.org/attestd", "the issuer's own"),
    ];
    for (id, reason) in cases {
        let found = problems(&entry(id, &["unix:uid:1"], &[]));
        assert_eq!(found.len(), 1, "{id}: {found:?}");
        assert!(
            found[0].starts_with("entry[0].spiffe_id: ") && found[0].contains(reason),
            "{id}: {found:?} lacks {reason:?}"
        );
    }
    let long = format!("spiffe://example.org/{}", "a".repeat(2048));
    assert!(problems(&entry(&long, &["unix:uid:1"], &[]))[0].contains("at most 2048"));
    // Near misses that are fine.
    for id in [
        "spiffe://example.org/attestd-payments",
        "spiffe://example.org/ns/prod/sa/Payments_v2.1",
    ] {
        assert!(parse(&entry(id, &["unix:uid:1"], &[])).is_ok(), "{id}");
    }
}

#[test]
fn without_a_trust_domain_the_entries_must_share_one() {
    let text = format!(
        "{}{}",
        entry("spiffe://a.example/x", &["unix:uid:1"], &[]),
        entry("spiffe://b.example/y", &["unix:uid:1"], &[]),
    );
    let error = Entries::parse(&text, None, Path::new("e.toml")).unwrap_err();
    assert!(
        error.to_string().contains(
            "entry[1].spiffe_id: \"spiffe://b.example/y\" is not in the trust domain \"a.example\""
        ),
        "{error}"
    );
    let one = Entries::parse(
        &entry("spiffe://a.example/x", &["unix:uid:1"], &[]),
        None,
        Path::new("e.toml"),
    )
    .unwrap();
    assert_eq!(one.trust_domain(), Some("a.example"));
}

#[test]
fn duplicate_entries_are_refused_but_one_id_may_have_several_entries() {
    let same = format!(
        "{}{}",
        entry("spiffe://example.org/a", &["unix:uid:1", "unix:gid:1"], &[]),
        entry("spiffe://example.org/a", &["unix:gid:1", "unix:uid:1"], &[]),
    );
    let found = problems(&same);
    assert_eq!(
        found,
        vec!["entry[1]: repeats entry[0] (same spiffe_id, node_selectors and selectors)"]
    );
    let two_ways = format!(
        "{}{}",
        entry("spiffe://example.org/a", &["unix:uid:1"], &[&ek(1)]),
        entry("spiffe://example.org/a", &["unix:uid:1"], &[&ek(2)]),
    );
    assert_eq!(parse(&two_ways).unwrap().len(), 2);
}

#[test]
fn selectors_must_be_well_formed_workload_selectors() {
    let cases: [(&[&str], &str); 8] = [
        (&["unix:uid"], "is not kind:key:value"),
        (&["unix:uid:"], "empty value"),
        (&["Unix:uid:1"], "lowercase words"),
        (&[":uid:1"], "lowercase words"),
        (&["unix:uid:1\n"], "control character"),
        (&["unix:uid:1", "unix:uid:1"], "listed twice"),
        (&["tpm:ek:00"], "put it in node_selectors"),
        (&[""], "is not kind:key:value"),
    ];
    for (selectors, reason) in cases {
        let found = problems(&entry("spiffe://example.org/a", selectors, &[]));
        assert!(
            found.len() == 1
                && found[0].starts_with("entry[0].selectors: ")
                && found[0].contains(reason),
            "{selectors:?}: {found:?} lacks {reason:?}"
        );
    }
    let many: Vec<String> = (0..=MAX_SELECTORS_PER_ENTRY)
        .map(|i| format!("unix:gid:{i}"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(problems(&entry("spiffe://example.org/a", &many, &[]))[0].contains("at most 64"));
    let long = format!("unix:path:/{}", "a".repeat(4096));
    assert!(problems(&entry("spiffe://example.org/a", &[&long], &[]))[0].contains("at most 4096"));
    // Values may hold colons and escapes.
    let fine = [
        "cgroup:v1-path:cpu,cpuacct:/docker/3f4c",
        "unix:path:/tmp/a\\nb",
        "host:hostname:node-1",
    ];
    assert!(parse(&entry("spiffe://example.org/a", &fine, &[])).is_ok());
}

#[test]
fn node_selectors_must_be_ones_node_attestation_writes() {
    let good = [
        ek(0xab),
        format!("tpm:pcr:sha256:7:{}", "0f".repeat(32)),
        format!("tpm:pcr:sha1:23:{}", "0f".repeat(20)),
        format!("tpm:pcr:sha384:0:{}", "0f".repeat(48)),
        format!("tpm:pcr:sha512:10:{}", "0f".repeat(64)),
        "tpm:secure_boot:false".to_owned(),
        format!("tpm:kernel_digest:{}", "12".repeat(32)),
    ];
    let good: Vec<&str> = good.iter().map(String::as_str).collect();
    assert!(parse(&entry("spiffe://example.org/a", &["unix:uid:1"], &good)).is_ok());

    let bad = [
        (format!("tpm:ek:{}", "AB".repeat(32)), "64 lowercase hex"),
        (format!("tpm:ek:{}", "ab".repeat(31)), "64 lowercase hex"),
        (
            format!("tpm:kernel_digest:{}", "ab".repeat(20)),
            "64 lowercase hex",
        ),
        ("tpm:secure_boot:yes".to_owned(), "true or false"),
        (
            format!("tpm:pcr:sha256:07:{}", "00".repeat(32)),
            "leading zeros",
        ),
        (format!("tpm:pcr:sha256:24:{}", "00".repeat(32)), "0 to 23"),
        (
            format!("tpm:pcr:sha256:7:{}", "00".repeat(20)),
            "64 lowercase hex",
        ),
        (format!("tpm:pcr:md5:7:{}", "00".repeat(16)), "is not sha1"),
        (
            "tpm:pcr:sha256:7".to_owned(),
            "tpm:pcr:<bank>:<index>:<hex>",
        ),
        ("tpm:ak:00".to_owned(), "unknown tpm selector"),
        (
            "unix:uid:0".to_owned(),
            "workload selectors go in selectors",
        ),
    ];
    for (selector, reason) in bad {
        let found = problems(&entry(
            "spiffe://example.org/a",
            &["unix:uid:1"],
            &[&selector],
        ));
        assert!(
            found.len() == 1
                && found[0].starts_with("entry[0].node_selectors: ")
                && found[0].contains(reason),
            "{selector}: {found:?} lacks {reason:?}"
        );
    }
}

#[test]
fn lifetimes_dns_names_and_hints_are_bounded() {
    let base = "[[entry]]\nspiffe_id = \"spiffe://example.org/a\"\nselectors = [\"unix:uid:1\"]\n";
    let cases = [
        (
            "x509_ttl_secs = 0",
            "entry[0].x509_ttl_secs: must be 1 to 2592000",
        ),
        ("x509_ttl_secs = 2592001", "entry[0].x509_ttl_secs"),
        ("jwt_ttl_secs = 86401", "entry[0].jwt_ttl_secs"),
        ("x509_ttl_secs = -1", "entry[0].x509_ttl_secs"),
        ("dns_names = [\"1.2.3.4\"]", "is not a DNS name"),
        ("dns_names = [\"a.example.\"]", "ends with '.'"),
        ("dns_names = [\"a..example\"]", "is not a DNS name"),
        ("dns_names = [\"a.example\", \"a.example\"]", "listed twice"),
        ("hint = \"a\\u0007\"", "control character"),
    ];
    for (line, reason) in cases {
        let found = problems(&format!("{base}{line}\n"));
        assert!(
            found.len() == 1 && found[0].contains(reason),
            "{line}: {found:?} lacks {reason:?}"
        );
    }
    let long_hint = format!("{base}hint = \"{}\"\n", "h".repeat(257));
    assert!(problems(&long_hint)[0].contains("at most 256"));
    let many_names: Vec<String> = (0..33).map(|i| format!("n{i}.example")).collect();
    let found = problems(&format!("{base}dns_names = {many_names:?}\n"));
    assert!(found[0].contains("at most 32 names"), "{found:?}");
}

#[test]
fn load_refuses_oversized_and_non_utf8_files_and_returns_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("entries.toml");
    let text = entry("spiffe://example.org/a", &["unix:uid:1"], &[]);
    std::fs::write(&path, &text).unwrap();
    let (entries, bytes) = Entries::load(&path, Some(TD)).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(bytes, text.as_bytes());

    std::fs::write(&path, b"# \xff\n").unwrap();
    assert!(Entries::load(&path, Some(TD))
        .unwrap_err()
        .to_string()
        .contains("not UTF-8"));
    let big = vec![b'#'; MAX_ENTRIES_FILE_BYTES as usize + 1];
    std::fs::write(&path, big).unwrap();
    assert!(matches!(
        Entries::load(&path, Some(TD)),
        Err(EntriesError::TooLarge { .. })
    ));
    assert!(matches!(
        Entries::load(&dir.path().join("absent"), Some(TD)),
        Err(EntriesError::Read { .. })
    ));
}

/// Entries for the matching tests: two uids on any node, one bound to node 1,
/// one needing two selectors.
fn registry() -> Entries {
    let text = [
        entry("spiffe://example.org/web", &["unix:uid:1000"], &[]),
        entry("spiffe://example.org/db", &["unix:uid:2000"], &[]),
        entry(
            "spiffe://example.org/pinned",
            &["unix:uid:1000"],
            &[&ek(1), "tpm:secure_boot:true"],
        ),
        entry(
            "spiffe://example.org/both",
            &["unix:uid:1000", "systemd:unit:web.service"],
            &[],
        ),
        // The same ID again, reachable another way: only the first counts.
        entry("spiffe://example.org/web", &["unix:gid:1000"], &[]),
    ]
    .concat();
    parse(&text).unwrap()
}

fn ids(entries: &Entries, node: &[String], workload: &[&str]) -> Vec<String> {
    entries
        .matching(node, &strings(workload))
        .into_iter()
        .map(|entry| entry.spiffe_id.clone())
        .collect()
}

#[test]
fn an_entry_matches_when_all_its_selectors_and_node_selectors_are_present() {
    let entries = registry();
    let node1 = vec![
        "tpm:secure_boot:true".to_owned(),
        ek(1),
        format!("tpm:pcr:sha256:7:{}", "00".repeat(32)),
    ];
    let node2 = vec![ek(2), "tpm:secure_boot:true".to_owned()];

    assert_eq!(
        ids(&entries, &node2, &["unix:uid:1000", "unix:gid:1000"]),
        vec!["spiffe://example.org/web"]
    );
    // Node 1 has every node selector the pinned entry asks for; order of
    // the given selectors does not matter.
    assert_eq!(
        ids(
            &entries,
            &node1,
            &["unix:gid:1000", "systemd:unit:web.service", "unix:uid:1000"]
        ),
        vec![
            "spiffe://example.org/web",
            "spiffe://example.org/pinned",
            "spiffe://example.org/both"
        ]
    );
    assert_eq!(
        ids(&entries, &node2, &["unix:uid:2000"]),
        vec!["spiffe://example.org/db"]
    );
    // Another id's entry, reached by gid alone: the ID once.
    assert_eq!(
        ids(&entries, &[], &["unix:gid:1000"]),
        vec!["spiffe://example.org/web"]
    );
    assert!(ids(&entries, &node1, &["unix:uid:3000"]).is_empty());
    assert!(ids(&entries, &node1, &[]).is_empty());
    // One of two selectors is not enough.
    assert_eq!(
        ids(&entries, &[], &["systemd:unit:web.service"]),
        Vec::<String>::new()
    );
    // Secure Boot off: the pinned entry's node selectors do not all hold.
    let node1_off = vec![ek(1), "tpm:secure_boot:false".to_owned()];
    assert_eq!(
        ids(&entries, &node1_off, &["unix:uid:1000"]),
        vec!["spiffe://example.org/web"]
    );
}
