//! The IMA log API, specified against measurement lists built here the way
//! the kernel writes `binary_runtime_measurements`: replay must equal PCR 10
//! values computed independently with ring, and a changed entry is refused.

use attestd_verifier::ima::{replay_ima_log, ImaTemplate};
use attestd_verifier::{parse_ima_log, verify_ima_log, HashAlg, ImaError, ImaFile, PcrValues};

fn ring_algorithm(bank: HashAlg) -> &'static ring::digest::Algorithm {
    match bank {
        HashAlg::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        HashAlg::Sha256 => &ring::digest::SHA256,
        HashAlg::Sha384 => &ring::digest::SHA384,
        HashAlg::Sha512 => &ring::digest::SHA512,
    }
}

fn hash(bank: HashAlg, data: &[u8]) -> Vec<u8> {
    ring::digest::digest(ring_algorithm(bank), data)
        .as_ref()
        .to_vec()
}

fn field(bytes: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(bytes.len()).unwrap().to_le_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A measurement as the kernel logs it.
#[derive(Clone)]
struct Entry {
    pcr: u32,
    template: &'static str,
    template_data: Vec<u8>,
    violation: bool,
}

impl Entry {
    fn file(template: &'static str, path: &str, content: &[u8], signature: Option<&[u8]>) -> Self {
        let mut digest = b"sha256:\0".to_vec();
        digest.extend_from_slice(&hash(HashAlg::Sha256, content));
        let mut name = path.as_bytes().to_vec();
        name.push(0);
        let mut template_data = [field(&digest), field(&name)].concat();
        if let Some(signature) = signature {
            template_data.extend_from_slice(&field(signature));
        }
        Self {
            pcr: 10,
            template,
            template_data,
            violation: false,
        }
    }

    fn violation(path: &str) -> Self {
        let mut entry = Self::file("ima-ng", path, b"", None);
        let mut digest = b"sha256:\0".to_vec();
        digest.extend_from_slice(&[0; 32]);
        let mut name = path.as_bytes().to_vec();
        name.push(0);
        entry.template_data = [field(&digest), field(&name)].concat();
        entry.violation = true;
        entry
    }

    fn template_digest(&self) -> Vec<u8> {
        if self.violation {
            vec![0; 20]
        } else {
            hash(HashAlg::Sha1, &self.template_data)
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = self.pcr.to_le_bytes().to_vec();
        out.extend_from_slice(&self.template_digest());
        out.extend_from_slice(&field(self.template.as_bytes()));
        out.extend_from_slice(&field(&self.template_data));
        out
    }
}

fn serialise(entries: &[Entry]) -> Vec<u8> {
    entries.iter().flat_map(Entry::bytes).collect()
}

/// PCR `pcr` after `entries`, per bank, chained here with ring.
fn expected(banks: &[HashAlg], entries: &[Entry], pcr: u8) -> PcrValues {
    banks
        .iter()
        .map(|&bank| {
            let value = entries
                .iter()
                .filter(|entry| entry.pcr == u32::from(pcr))
                .fold(vec![0; bank.digest_len()], |value, entry| {
                    let extended = if entry.violation {
                        vec![0xff; bank.digest_len()]
                    } else {
                        hash(bank, &entry.template_data)
                    };
                    hash(bank, &[value, extended].concat())
                });
            (bank, pcr, value)
        })
        .collect()
}

fn measurement_list() -> Vec<Entry> {
    vec![
        Entry::file("ima-ng", "boot_aggregate", b"pcr 0-9", None),
        Entry::file(
            "ima-sig",
            "/usr/lib/systemd/systemd",
            b"elf",
            Some(b"\x03\x02\x04sig"),
        ),
        Entry::file("ima-sig", "/usr/bin/bash", b"bash", Some(b"")),
        Entry::violation("/var/log/syslog"),
        Entry::file("ima-ng", "/etc/ld.so.cache", b"cache", None),
    ]
}

const BANKS: [HashAlg; 3] = [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384];

#[test]
fn replays_every_bank_to_independently_computed_values() {
    let entries = measurement_list();
    let log = parse_ima_log(&serialise(&entries)).expect("valid list");
    for bank in BANKS {
        assert_eq!(
            replay_ima_log(&log, bank, 10).unwrap(),
            expected(&[bank], &entries, 10).get(bank, 10).unwrap(),
            "{bank}"
        );
    }
}

#[test]
fn verified_list_yields_the_measured_files() {
    let entries = measurement_list();
    let log = parse_ima_log(&serialise(&entries)).unwrap();
    assert_eq!(log.entries[1].template, ImaTemplate::ImaSig);
    let claims = verify_ima_log(&log, &expected(&BANKS, &entries, 10), 10).expect("list matches");
    let file = |path: &str, content: &[u8], signature: Option<&[u8]>| ImaFile {
        path: path.to_owned(),
        algorithm: "sha256".to_owned(),
        digest: hash(HashAlg::Sha256, content),
        signature: signature.map(<[u8]>::to_vec),
    };
    assert_eq!(
        claims.files,
        vec![
            file("boot_aggregate", b"pcr 0-9", None),
            file("/usr/lib/systemd/systemd", b"elf", Some(b"\x03\x02\x04sig")),
            file("/usr/bin/bash", b"bash", None),
            file("/etc/ld.so.cache", b"cache", None),
        ]
    );
    assert_eq!(claims.violations, 1);
    assert_eq!(claims.entries_after_quote, 0);
}

#[test]
fn a_changed_file_digest_is_refused() {
    let entries = measurement_list();
    let quoted = expected(&BANKS, &entries, 10);
    let bytes = serialise(&entries);
    // Entry 2's file digest, rewritten in the template data only: the logged
    // template digest no longer matches.
    let offset = serialise(&entries[..2]).len() + 4 + 20 + 4 + 7 + 4 + 4 + 8;
    let mut tampered = bytes.clone();
    tampered[offset] ^= 0x01;
    assert!(matches!(
        verify_ima_log(&parse_ima_log(&tampered).unwrap(), &quoted, 10),
        Err(ImaError::TemplateDigestMismatch { entry: 2, .. })
    ));
}

#[test]
fn a_consistently_rewritten_entry_fails_the_quote_naming_bank_and_values() {
    let entries = measurement_list();
    let quoted = expected(&[HashAlg::Sha256], &entries, 10);
    let mut forged = entries.clone();
    forged[2] = Entry::file("ima-sig", "/usr/bin/bash", b"trojan", Some(b""));
    let log = parse_ima_log(&serialise(&forged)).unwrap();
    let error = verify_ima_log(&log, &quoted, 10).unwrap_err();
    let quoted_hex = hex::encode(quoted.get(HashAlg::Sha256, 10).unwrap());
    let replayed_hex = hex::encode(
        expected(&[HashAlg::Sha256], &forged, 10)
            .get(HashAlg::Sha256, 10)
            .unwrap(),
    );
    assert_eq!(
        error,
        ImaError::PcrMismatch {
            bank: HashAlg::Sha256,
            pcr: 10,
            quoted: quoted_hex.clone(),
            replayed: replayed_hex.clone(),
        }
    );
    let message = error.to_string();
    assert!(message.contains("sha256:10"), "{message}");
    assert!(
        message.contains(&quoted_hex) && message.contains(&replayed_hex),
        "{message}"
    );
}

#[test]
fn entries_appended_after_the_quote_are_not_claimed() {
    let entries = measurement_list();
    let quoted = expected(&BANKS, &entries[..3], 10);
    let log = parse_ima_log(&serialise(&entries)).unwrap();
    let claims = verify_ima_log(&log, &quoted, 10).unwrap();
    assert_eq!(claims.files.len(), 3);
    assert_eq!(claims.violations, 0);
    assert_eq!(claims.entries_after_quote, 2);
}

#[test]
fn only_entries_for_the_requested_pcr_are_replayed() {
    let mut entries = measurement_list();
    entries[4].pcr = 11;
    let log = parse_ima_log(&serialise(&entries)).unwrap();
    let claims = verify_ima_log(&log, &expected(&BANKS, &entries, 10), 10).unwrap();
    assert!(claims
        .files
        .iter()
        .all(|file| file.path != "/etc/ld.so.cache"));
    let claims_11 = verify_ima_log(&log, &expected(&BANKS, &entries, 11), 11).unwrap();
    assert_eq!(claims_11.files.len(), 1);
    assert_eq!(claims_11.files[0].path, "/etc/ld.so.cache");
}

#[test]
fn unknown_templates_are_refused_by_name() {
    let mut entries = measurement_list();
    entries[1].template = "ima-buf";
    assert_eq!(
        parse_ima_log(&serialise(&entries)),
        Err(ImaError::UnsupportedTemplate {
            entry: 1,
            name: "ima-buf".to_owned()
        })
    );
}

// ---------------------------------------------------------------------------
// Real IMA lists from QEMU + OVMF + swtpm guests (tests/fixtures/eventlog/*/
// README.md): the list the kernel wrote, the PCRs read in the guest, and a
// quote over sha256 PCRs 0–10. Relations only, so regenerated fixtures work.

fn fixture_dirs() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eventlog");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|error| panic!("reading {}: {error}", root.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no fixtures under {}", root.display());
    dirs
}

fn read(dir: &std::path::Path, name: &str) -> Vec<u8> {
    let path = dir.join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

/// `tpm2_pcrread`'s YAML: `  sha1:` then `    0 : 0x…` lines.
fn pcrs_read_in_guest(dir: &std::path::Path) -> PcrValues {
    let mut values = PcrValues::new();
    let mut bank = None;
    for line in String::from_utf8(read(dir, "pcrs.yaml")).unwrap().lines() {
        let trimmed = line.trim();
        match trimmed.strip_suffix(':') {
            Some("sha1") => bank = Some(HashAlg::Sha1),
            Some("sha256") => bank = Some(HashAlg::Sha256),
            Some(other) => panic!("unexpected bank {other}"),
            None => {
                let (pcr, value) = trimmed.split_once(':').expect("`index : value` line");
                let value = hex::decode(value.trim().trim_start_matches("0x")).unwrap();
                values.insert(
                    bank.expect("bank first"),
                    pcr.trim().parse().unwrap(),
                    value,
                );
            }
        }
    }
    values
}

#[test]
fn real_ima_lists_verify_against_their_verified_quotes() {
    for dir in fixture_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let ak = attestd_verifier::TpmPublic::parse_tpm2b(&read(&dir, "ak.pub")).unwrap();
        let nonce =
            hex::decode(String::from_utf8(read(&dir, "nonce.hex")).unwrap().trim()).unwrap();
        let read_in_guest = pcrs_read_in_guest(&dir);
        let quote = attestd_verifier::verify_quote(
            &ak,
            &read(&dir, "quote.msg"),
            &read(&dir, "quote.sig"),
            &nonce,
            &read_in_guest,
        )
        .unwrap_or_else(|error| panic!("{name}: quote: {error}"));
        let log = parse_ima_log(&read(&dir, "ima_binary_runtime_measurements"))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        let claims = verify_ima_log(&log, &quote.pcr_values, 10)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(
            claims.files.len() + claims.violations + claims.entries_after_quote,
            log.entries.len(),
            "{name}"
        );
        assert!(
            claims.files.len() > 10,
            "{name}: {} files",
            claims.files.len()
        );

        // boot_aggregate: SHA-256 over the sha256 PCRs 0–9 (Linux ≥ 5.8),
        // computed here from the quoted values.
        let aggregate_input: Vec<u8> = (0..=9)
            .flat_map(|pcr| quote.pcr_values.get(HashAlg::Sha256, pcr).unwrap().to_vec())
            .collect();
        assert_eq!(claims.files[0].path, "boot_aggregate", "{name}");
        assert_eq!(claims.files[0].algorithm, "sha256", "{name}");
        assert_eq!(
            claims.files[0].digest,
            hash(HashAlg::Sha256, &aggregate_input),
            "{name}"
        );
        // The guest ran the host's tools from a 9p mount at /host.
        assert!(
            claims.files[1..]
                .iter()
                .all(|file| file.path.starts_with("/host/")),
            "{name}"
        );
        let expected_template = if name.contains("ima-sig") {
            ImaTemplate::ImaSig
        } else {
            ImaTemplate::ImaNg
        };
        assert!(
            log.entries
                .iter()
                .all(|entry| entry.template == expected_template),
            "{name}"
        );
        // No security.ima xattrs on the host: every sig field is empty.
        assert!(
            claims.files.iter().all(|file| file.signature.is_none()),
            "{name}"
        );
    }
}

#[test]
fn real_ima_lists_replay_to_pcr10_in_both_banks() {
    for dir in fixture_dirs() {
        let log = parse_ima_log(&read(&dir, "ima_binary_runtime_measurements")).unwrap();
        let read_in_guest = pcrs_read_in_guest(&dir);
        for bank in [HashAlg::Sha1, HashAlg::Sha256] {
            assert_eq!(
                replay_ima_log(&log, bank, 10).unwrap(),
                read_in_guest.get(bank, 10).unwrap(),
                "{}: {bank}",
                dir.display()
            );
        }
        assert!(verify_ima_log(&log, &read_in_guest, 10).is_ok());
    }
}

#[test]
fn a_real_ima_list_with_one_entry_dropped_is_refused() {
    for dir in fixture_dirs() {
        let mut log = parse_ima_log(&read(&dir, "ima_binary_runtime_measurements")).unwrap();
        let read_in_guest = pcrs_read_in_guest(&dir);
        log.entries.remove(log.entries.len() / 2);
        assert!(
            matches!(
                verify_ima_log(&log, &read_in_guest, 10),
                Err(ImaError::PcrMismatch { pcr: 10, .. })
            ),
            "{}",
            dir.display()
        );
    }
}
