//! The boot event log API, specified against logs built here byte by byte:
//! replay must equal PCR values computed independently with ring (and, for
//! the same logs, by `tpm2_eventlog`), and any change to a measured digest or
//! to data a claim rests on must be refused, naming the PCR.

use std::collections::BTreeMap;
use std::process::Command;

use attestd_verifier::eventlog::event_type::{
    EV_EFI_ACTION, EV_EFI_BOOT_SERVICES_APPLICATION, EV_EFI_VARIABLE_DRIVER_CONFIG, EV_IPL,
    EV_NO_ACTION, EV_POST_CODE, EV_SEPARATOR, EV_S_CRTM_VERSION,
};
use attestd_verifier::eventlog::{replay, MAX_EVENT_DATA_LEN};
use attestd_verifier::{
    parse_event_log, verify_event_log, BootClaims, EventLog, EventLogError, HashAlg, PcrValues,
};

const SHA1: u16 = 0x0004;
const SHA256: u16 = 0x000b;
const SHA384: u16 = 0x000c;
const SM3_256: u16 = 0x0012;
const EFI_GLOBAL_VARIABLE: [u8; 16] = [
    0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c,
];

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

fn le32(value: usize) -> [u8; 4] {
    u32::try_from(value).expect("fits in u32").to_le_bytes()
}

/// One measurement as a test describes it: the PCR, the type, the data, and
/// what was hashed into the digests (usually the data itself).
#[derive(Clone)]
struct Measurement {
    pcr: u8,
    event_type: u32,
    data: Vec<u8>,
    hashed: Vec<u8>,
}

fn measured(pcr: u8, event_type: u32, data: &[u8]) -> Measurement {
    Measurement {
        pcr,
        event_type,
        data: data.to_vec(),
        hashed: data.to_vec(),
    }
}

/// A crypto-agile log, serialised here independently of the parser.
struct Log {
    algorithms: Vec<(u16, u16)>,
    bytes: Vec<u8>,
}

impl Log {
    fn new(algorithms: &[(u16, u16)]) -> Self {
        let mut spec_id = b"Spec ID Event03\0".to_vec();
        spec_id.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 2]);
        spec_id.extend_from_slice(&le32(algorithms.len()));
        for (alg_id, size) in algorithms {
            spec_id.extend_from_slice(&alg_id.to_le_bytes());
            spec_id.extend_from_slice(&size.to_le_bytes());
        }
        spec_id.push(0);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&EV_NO_ACTION.to_le_bytes());
        bytes.extend_from_slice(&[0; 20]);
        bytes.extend_from_slice(&le32(spec_id.len()));
        bytes.extend_from_slice(&spec_id);
        Self {
            algorithms: algorithms.to_vec(),
            bytes,
        }
    }

    fn event(mut self, pcr: u32, event_type: u32, digests: &[(u16, Vec<u8>)], data: &[u8]) -> Self {
        self.bytes.extend_from_slice(&pcr.to_le_bytes());
        self.bytes.extend_from_slice(&event_type.to_le_bytes());
        self.bytes.extend_from_slice(&le32(digests.len()));
        for (alg_id, digest) in digests {
            self.bytes.extend_from_slice(&alg_id.to_le_bytes());
            self.bytes.extend_from_slice(digest);
        }
        self.bytes.extend_from_slice(&le32(data.len()));
        self.bytes.extend_from_slice(data);
        self
    }

    fn digests(&self, hashed: &[u8]) -> Vec<(u16, Vec<u8>)> {
        self.algorithms
            .iter()
            .map(|&(alg_id, size)| match HashAlg::from_tpm(alg_id) {
                Some(bank) => (alg_id, hash(bank, hashed)),
                None => (alg_id, vec![0x5a; usize::from(size)]),
            })
            .collect()
    }

    fn measure(self, measurement: &Measurement) -> Self {
        let digests = self.digests(&measurement.hashed);
        self.event(
            u32::from(measurement.pcr),
            measurement.event_type,
            &digests,
            &measurement.data,
        )
    }

    fn no_action(self, pcr: u32, data: &[u8]) -> Self {
        let zeros: Vec<(u16, Vec<u8>)> = self
            .algorithms
            .iter()
            .map(|&(alg_id, size)| (alg_id, vec![0; usize::from(size)]))
            .collect();
        self.event(pcr, EV_NO_ACTION, &zeros, data)
    }

    fn bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// What a TPM holds after `measurements`, chained with ring from `start`
/// (all zeros, or the StartupLocality value for PCR 0).
fn expected_pcrs(banks: &[HashAlg], measurements: &[Measurement], pcr0_locality: u8) -> PcrValues {
    let mut values = PcrValues::new();
    for &bank in banks {
        let mut pcrs: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
        for measurement in measurements {
            let value = pcrs.entry(measurement.pcr).or_insert_with(|| {
                let mut start = vec![0; bank.digest_len()];
                if measurement.pcr == 0 {
                    start[bank.digest_len() - 1] = pcr0_locality;
                }
                start
            });
            let digest = hash(bank, &measurement.hashed);
            *value = hash(bank, &[value.as_slice(), digest.as_slice()].concat());
        }
        for (pcr, value) in pcrs {
            values.insert(bank, pcr, value);
        }
    }
    values
}

fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn secure_boot_variable(enabled: bool) -> Vec<u8> {
    let name = utf16("SecureBoot");
    let mut data = EFI_GLOBAL_VARIABLE.to_vec();
    data.extend_from_slice(&u64::try_from(name.len() / 2).unwrap().to_le_bytes());
    data.extend_from_slice(&1u64.to_le_bytes());
    data.extend_from_slice(&name);
    data.push(u8::from(enabled));
    data
}

fn image_load_event(path: &str) -> Vec<u8> {
    let mut file_path = utf16(path);
    file_path.extend_from_slice(&[0, 0]);
    let mut device_path = vec![0x04, 0x04];
    device_path.extend_from_slice(&u16::try_from(file_path.len() + 4).unwrap().to_le_bytes());
    device_path.extend_from_slice(&file_path);
    device_path.extend_from_slice(&[0x7f, 0xff, 0x04, 0x00]);
    let mut data = [0u64, 0x2000, 0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect::<Vec<u8>>();
    data.extend_from_slice(&u64::try_from(device_path.len()).unwrap().to_le_bytes());
    data.extend_from_slice(&device_path);
    data
}

const CMDLINE: &str = "root=/dev/vda1 ro console=ttyS0";

/// A shim → GRUB → kernel boot as OVMF, shim and GRUB would log it.
fn boot_measurements() -> Vec<Measurement> {
    let mut measurements = vec![
        measured(0, EV_S_CRTM_VERSION, &utf16("OVMF 1.0\0")),
        measured(0, EV_POST_CODE, b"firmware volume"),
        measured(
            7,
            EV_EFI_VARIABLE_DRIVER_CONFIG,
            &secure_boot_variable(true),
        ),
    ];
    for pcr in 0..8 {
        measurements.push(measured(pcr, EV_SEPARATOR, &[0; 4]));
    }
    measurements.extend([
        Measurement {
            hashed: b"shim authenticode".to_vec(),
            ..measured(
                4,
                EV_EFI_BOOT_SERVICES_APPLICATION,
                &image_load_event("\\EFI\\BOOT\\BOOTX64.EFI"),
            )
        },
        Measurement {
            hashed: b"grub authenticode".to_vec(),
            ..measured(
                4,
                EV_EFI_BOOT_SERVICES_APPLICATION,
                &image_load_event("\\EFI\\debian\\grubx64.efi"),
            )
        },
        Measurement {
            hashed: CMDLINE.as_bytes().to_vec(),
            ..measured(8, EV_IPL, format!("kernel_cmdline: {CMDLINE}\0").as_bytes())
        },
        Measurement {
            hashed: b"kernel authenticode".to_vec(),
            ..measured(
                4,
                EV_EFI_BOOT_SERVICES_APPLICATION,
                &image_load_event("\\vmlinuz-6.1.0"),
            )
        },
        measured(5, EV_EFI_ACTION, b"Exit Boot Services Invocation"),
    ]);
    measurements
}

const MULTI_BANK: [(u16, u16); 4] = [(SHA1, 20), (SHA256, 32), (SHA384, 48), (SM3_256, 32)];
const COMPUTABLE: [HashAlg; 3] = [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384];

fn boot_log(algorithms: &[(u16, u16)], measurements: &[Measurement]) -> Vec<u8> {
    measurements
        .iter()
        .fold(Log::new(algorithms), |log, measurement| {
            log.measure(measurement)
        })
        .bytes()
}

fn parsed(bytes: &[u8]) -> EventLog {
    parse_event_log(bytes).expect("constructed log parses")
}

#[test]
fn a_multi_bank_log_replays_to_independently_computed_pcrs() {
    let measurements = boot_measurements();
    let log = parsed(&boot_log(&MULTI_BANK, &measurements));
    let expected = expected_pcrs(&COMPUTABLE, &measurements, 0);
    for bank in COMPUTABLE {
        let replayed = replay(&log, bank).expect("replays");
        let expected_bank: BTreeMap<u8, Vec<u8>> = expected
            .iter()
            .filter(|(b, _, _)| *b == bank)
            .map(|(_, pcr, value)| (pcr, value.to_vec()))
            .collect();
        assert_eq!(replayed, expected_bank, "{bank}");
    }
    let claims = verify_event_log(&log, &expected).expect("log matches the quote");
    assert_eq!(claims.verified_pcrs, (0..=8).collect::<Vec<u8>>());
}

#[test]
fn claims_come_from_the_verified_boot() {
    let measurements = boot_measurements();
    let log = parsed(&boot_log(&MULTI_BANK, &measurements));
    let claims = verify_event_log(&log, &expected_pcrs(&[HashAlg::Sha256], &measurements, 0))
        .expect("log matches the quote");
    let paths: Vec<Option<String>> = claims
        .boot_applications
        .iter()
        .map(|application| application.path.clone())
        .collect();
    assert_eq!(
        claims,
        BootClaims {
            secure_boot: Some(true),
            boot_applications: claims.boot_applications.clone(),
            kernel_digests: vec![(SHA256, hash(HashAlg::Sha256, b"kernel authenticode"))],
            kernel_cmdline: Some(CMDLINE.to_owned()),
            events_replayed: measurements.len(),
            verified_pcrs: (0..=8).collect(),
        }
    );
    let digests: Vec<&[(u16, Vec<u8>)]> = claims
        .boot_applications
        .iter()
        .map(|application| application.digests.as_slice())
        .collect();
    let authenticode = |image: &[u8]| vec![(SHA256, hash(HashAlg::Sha256, image))];
    assert_eq!(
        digests,
        vec![
            authenticode(b"shim authenticode").as_slice(),
            authenticode(b"grub authenticode").as_slice(),
            authenticode(b"kernel authenticode").as_slice(),
        ]
    );
    assert_eq!(
        paths,
        vec![
            Some("\\EFI\\BOOT\\BOOTX64.EFI".to_owned()),
            Some("\\EFI\\debian\\grubx64.efi".to_owned()),
            Some("\\vmlinuz-6.1.0".to_owned()),
        ]
    );
}

/// Offsets of every byte of each event's digests and data in a serialised
/// log, for tampering with one at a time.
fn event_regions(bytes: &[u8], digest_sizes: &[(u16, u16)]) -> Vec<(u8, Vec<usize>, Vec<usize>)> {
    let read_u32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let mut at = 32 + read_u32(28);
    let mut regions = Vec::new();
    while at < bytes.len() {
        let pcr = u8::try_from(read_u32(at)).unwrap();
        let count = read_u32(at + 8);
        at += 12;
        let mut digest_bytes = Vec::new();
        for _ in 0..count {
            let alg = u16::from_le_bytes([bytes[at], bytes[at + 1]]);
            let size = usize::from(digest_sizes.iter().find(|(id, _)| *id == alg).unwrap().1);
            digest_bytes.extend(at + 2..at + 2 + size);
            at += 2 + size;
        }
        let data_len = read_u32(at);
        let data_bytes = (at + 4..at + 4 + data_len).collect();
        at += 4 + data_len;
        regions.push((pcr, digest_bytes, data_bytes));
    }
    regions
}

#[test]
fn changing_any_byte_of_any_sha256_digest_fails_naming_the_pcr() {
    let measurements = boot_measurements();
    let algorithms = [(SHA1, 20), (SHA256, 32)];
    let bytes = boot_log(&algorithms, &measurements);
    let quoted = expected_pcrs(&[HashAlg::Sha256], &measurements, 0);
    for (pcr, digest_bytes, _) in event_regions(&bytes, &algorithms) {
        // The SHA-256 digest is the second in each event.
        for &at in &digest_bytes[20..] {
            let mut tampered = bytes.clone();
            tampered[at] ^= 0x01;
            let error = verify_event_log(&parsed(&tampered), &quoted).unwrap_err();
            assert!(
                matches!(error, EventLogError::PcrMismatch { bank: HashAlg::Sha256, pcr: p, .. } if p == pcr),
                "byte {at}: {error:?}"
            );
            assert!(
                error.to_string().contains(&format!("PCR sha256:{pcr} ")),
                "{error}"
            );
        }
    }
}

#[test]
fn changing_a_byte_of_data_a_claim_rests_on_fails_naming_the_pcr() {
    let measurements = boot_measurements();
    let algorithms = [(SHA256, 32)];
    let bytes = boot_log(&algorithms, &measurements);
    let quoted = expected_pcrs(&[HashAlg::Sha256], &measurements, 0);
    let regions = event_regions(&bytes, &algorithms);
    // Event 3 is the SecureBoot variable (PCR 7); the GRUB command line is in PCR 8.
    let (secure_boot_pcr, _, secure_boot_data) = &regions[2];
    let (cmdline_pcr, _, cmdline_data) = regions.iter().find(|(pcr, _, _)| *pcr == 8).unwrap();
    for (pcr, data) in [
        (secure_boot_pcr, secure_boot_data),
        (cmdline_pcr, cmdline_data),
    ] {
        let mut tampered = bytes.clone();
        // The last meaningful byte: the SecureBoot value, the command line's last character.
        let at = if *pcr == 8 {
            data[data.len() - 2]
        } else {
            data[data.len() - 1]
        };
        tampered[at] ^= 0x01;
        let error = verify_event_log(&parsed(&tampered), &quoted).unwrap_err();
        assert!(
            matches!(error, EventLogError::EventDataMismatch { pcr: p, bank: HashAlg::Sha256, .. } if p == u32::from(*pcr)),
            "{error:?}"
        );
        assert!(
            error.to_string().contains(&format!("PCR {pcr})")),
            "{error}"
        );
    }
}

#[test]
fn startup_locality_is_part_of_pcr0() {
    let measurements = boot_measurements();
    let bytes = measurements
        .iter()
        .fold(
            Log::new(&[(SHA256, 32)]).no_action(0, b"StartupLocality\0\x03"),
            |log, measurement| log.measure(measurement),
        )
        .bytes();
    let log = parsed(&bytes);
    let from_locality_3 = expected_pcrs(&[HashAlg::Sha256], &measurements, 3);
    assert!(verify_event_log(&log, &from_locality_3).is_ok());

    let from_zero = expected_pcrs(&[HashAlg::Sha256], &measurements, 0);
    let error = verify_event_log(&log, &from_zero).unwrap_err();
    assert!(
        matches!(error, EventLogError::PcrMismatch { pcr: 0, .. }),
        "{error:?}"
    );
}

#[test]
fn sp800_155_and_other_no_action_events_change_nothing() {
    let measurements = boot_measurements();
    let bytes = measurements
        .iter()
        .fold(
            Log::new(&[(SHA256, 32)]).no_action(0, b"SP800-155 Event\0platform manifest"),
            |log, measurement| log.measure(measurement),
        )
        .no_action(7, b"late vendor note")
        .bytes();
    let quoted = expected_pcrs(&[HashAlg::Sha256], &measurements, 0);
    assert!(verify_event_log(&parsed(&bytes), &quoted).is_ok());
}

#[test]
fn a_zero_padded_log_verifies_like_the_unpadded_one() {
    let measurements = boot_measurements();
    let mut bytes = boot_log(&[(SHA256, 32)], &measurements);
    bytes.resize(bytes.len() + 65_536, 0);
    let quoted = expected_pcrs(&[HashAlg::Sha256], &measurements, 0);
    assert!(verify_event_log(&parsed(&bytes), &quoted).is_ok());
}

#[test]
fn a_quoted_bank_missing_from_the_log_is_refused() {
    let measurements = boot_measurements();
    let log = parsed(&boot_log(&[(SHA256, 32)], &measurements));
    let quoted = expected_pcrs(&[HashAlg::Sha1, HashAlg::Sha256], &measurements, 0);
    assert_eq!(
        verify_event_log(&log, &quoted),
        Err(EventLogError::BankNotInLog {
            bank: HashAlg::Sha1
        })
    );
}

#[test]
fn an_event_omitting_a_declared_bank_is_refused_by_name() {
    let measurements = boot_measurements();
    let bytes = measurements
        .iter()
        .fold(Log::new(&[(SHA1, 20), (SHA256, 32)]), |log, m| {
            log.measure(m)
        })
        .event(
            4,
            EV_EFI_BOOT_SERVICES_APPLICATION,
            &[(SHA256, hash(HashAlg::Sha256, b"x"))],
            b"",
        )
        .bytes();
    let quoted = expected_pcrs(&[HashAlg::Sha1], &measurements, 0);
    let error = verify_event_log(&parsed(&bytes), &quoted).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "event {} (EV_EFI_BOOT_SERVICES_APPLICATION, PCR 4) has no sha1 digest although the Spec ID event declares sha1",
            measurements.len() + 1
        )
    );
}

#[test]
fn hostile_sizes_are_refused_not_followed() {
    let bytes = Log::new(&[(SHA256, 32)])
        .event(0, EV_POST_CODE, &[], &[])
        .bytes();
    let mut oversized = bytes.clone();
    let size_at = oversized.len() - 4;
    oversized[size_at..].copy_from_slice(&le32(MAX_EVENT_DATA_LEN + 1));
    assert!(matches!(
        parse_event_log(&oversized),
        Err(EventLogError::Malformed { event: 1, .. })
    ));
}

/// `tpm2_eventlog`'s `pcrs:` section: bank name → PCR → value.
fn tpm2_eventlog_pcrs(log: &[u8]) -> BTreeMap<String, BTreeMap<u8, Vec<u8>>> {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), log).expect("write log");
    let output = Command::new("tpm2_eventlog")
        .arg(file.path())
        .output()
        .expect("tpm2_eventlog (tpm2-tools) must be installed: scripts/ensure-deps.sh");
    assert!(
        output.status.success(),
        "tpm2_eventlog failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse_pcrs_section(&String::from_utf8_lossy(&output.stdout))
}

fn parse_pcrs_section(yaml: &str) -> BTreeMap<String, BTreeMap<u8, Vec<u8>>> {
    let mut banks: BTreeMap<String, BTreeMap<u8, Vec<u8>>> = BTreeMap::new();
    let mut bank = None;
    for line in yaml.lines().skip_while(|line| *line != "pcrs:").skip(1) {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_suffix(':') {
            bank = Some(name.to_owned());
            banks.entry(name.to_owned()).or_default();
        } else if let (Some((index, value)), Some(bank)) = (trimmed.split_once(':'), &bank) {
            let index: u8 = index.trim().parse().expect("PCR index");
            let value = hex::decode(value.trim().trim_start_matches("0x")).expect("PCR hex");
            banks.entry(bank.clone()).or_default().insert(index, value);
        }
    }
    banks
}

#[test]
fn tpm2_eventlog_replays_constructed_logs_to_the_same_pcrs() {
    let measurements = boot_measurements();
    for algorithms in [
        &MULTI_BANK[..3],
        &[(SHA256, 32)][..],
        &[(SHA1, 20), (SHA384, 48)][..],
    ] {
        let bytes = boot_log(algorithms, &measurements);
        let theirs = tpm2_eventlog_pcrs(&bytes);
        let log = parsed(&bytes);
        let mut ours = BTreeMap::new();
        for &(alg_id, _) in algorithms {
            let bank = HashAlg::from_tpm(alg_id).unwrap();
            ours.insert(bank.to_string(), replay(&log, bank).unwrap());
        }
        assert_eq!(ours, theirs, "{algorithms:?}");
        assert!(!theirs.is_empty());
    }
}

// ---------------------------------------------------------------------------
// Real logs: QEMU + OVMF + swtpm guests (tests/fixtures/eventlog/*/README.md).
// Each directory holds the guest's log, its PCRs as `tpm2_pcrread` printed
// them, and a TPM quote over sha256 PCRs 0–10. The tests rely on relations
// (quote verifies, log replays to the quoted PCRs), not on digests, so a
// regenerated fixture keeps them meaningful.

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

/// `tpm2_pcrread`'s YAML (`  sha1:` then `    0 : 0x…` lines).
fn pcrs_read_in_guest(dir: &std::path::Path) -> PcrValues {
    let yaml = format!(
        "pcrs:\n{}",
        String::from_utf8(read(dir, "pcrs.yaml")).unwrap()
    );
    let mut values = PcrValues::new();
    for (bank, pcrs) in parse_pcrs_section(&yaml) {
        let bank = match bank.as_str() {
            "sha1" => HashAlg::Sha1,
            "sha256" => HashAlg::Sha256,
            other => panic!("unexpected bank {other}"),
        };
        for (pcr, value) in pcrs {
            values.insert(bank, pcr, value);
        }
    }
    assert_eq!(values.len(), 48, "{}: 24 PCRs in 2 banks", dir.display());
    values
}

/// The guest's quote, verified: only its PCR values are evidence.
fn verified_quote(dir: &std::path::Path) -> attestd_verifier::VerifiedQuote {
    let ak = attestd_verifier::TpmPublic::parse_tpm2b(&read(dir, "ak.pub")).expect("AK parses");
    let nonce = hex::decode(String::from_utf8(read(dir, "nonce.hex")).unwrap().trim()).unwrap();
    attestd_verifier::verify_quote(
        &ak,
        &read(dir, "quote.msg"),
        &read(dir, "quote.sig"),
        &nonce,
        &pcrs_read_in_guest(dir),
    )
    .unwrap_or_else(|error| panic!("{}: quote: {error}", dir.display()))
}

#[test]
fn real_logs_replay_to_the_pcrs_read_in_the_guest() {
    for dir in fixture_dirs() {
        let log = parsed(&read(&dir, "binary_bios_measurements"));
        let read_in_guest = pcrs_read_in_guest(&dir);
        for bank in [HashAlg::Sha1, HashAlg::Sha256] {
            let replayed = replay(&log, bank).unwrap();
            assert!(
                (0..=7).all(|pcr| replayed.contains_key(&pcr)),
                "{}: {bank} replay covers PCRs 0-7",
                dir.display()
            );
            for (pcr, value) in &replayed {
                assert_eq!(
                    Some(value.as_slice()),
                    read_in_guest.get(bank, *pcr),
                    "{}: {bank}:{pcr}",
                    dir.display()
                );
            }
        }
        // Every PCR read in the guest that the log does not cover is at its
        // reset value or belongs to another log (PCR 10, IMA).
        let claims = verify_event_log(&log, &read_in_guest)
            .unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
        assert_eq!(claims.verified_pcrs, vec![0, 1, 2, 3, 4, 5, 6, 7, 9]);
    }
}

#[test]
fn real_logs_replay_to_the_same_pcrs_as_tpm2_eventlog() {
    for dir in fixture_dirs() {
        let bytes = read(&dir, "binary_bios_measurements");
        let theirs = tpm2_eventlog_pcrs(&bytes);
        let log = parsed(&bytes);
        let ours: BTreeMap<String, BTreeMap<u8, Vec<u8>>> = [HashAlg::Sha1, HashAlg::Sha256]
            .into_iter()
            .map(|bank| (bank.to_string(), replay(&log, bank).unwrap()))
            .collect();
        assert_eq!(ours, theirs, "{}", dir.display());
    }
}

#[test]
fn real_logs_verify_against_their_verified_quotes() {
    for dir in fixture_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let quote = verified_quote(&dir);
        let log = parsed(&read(&dir, "binary_bios_measurements"));
        let claims = verify_event_log(&log, &quote.pcr_values)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        // sha256 0-10 quoted; PCR 8 (no boot manager) and 10 (IMA) have no events.
        assert_eq!(
            claims.verified_pcrs,
            vec![0, 1, 2, 3, 4, 5, 6, 7, 9],
            "{name}"
        );
        let secure_boot = name.contains("secureboot");
        assert_eq!(claims.secure_boot, Some(secure_boot), "{name}");
        // The Linux EFI stub logs only a description for the command line.
        assert_eq!(claims.kernel_cmdline, None, "{name}");
        if secure_boot {
            // OVMF's legacy loader: no kernel measurement in PCR 4 (see README).
            assert!(claims.boot_applications.is_empty(), "{name}");
            assert!(claims.kernel_digests.is_empty(), "{name}");
        } else {
            assert_eq!(claims.boot_applications.len(), 1, "{name}");
            let kernel = &claims.boot_applications[0];
            assert_eq!(
                kernel.path.as_deref(),
                Some("VenMedia(1428f772-b64a-441e-b8c3-9ebdd7f893c7)/kernel"),
                "{name}"
            );
            let logged = log
                .events
                .iter()
                .find(|event| event.event_type == EV_EFI_BOOT_SERVICES_APPLICATION)
                .unwrap();
            // Only the quoted bank's digest is a claim.
            assert_eq!(
                claims.kernel_digests,
                vec![(SHA256, logged.digest(SHA256).unwrap().to_vec())],
                "{name}"
            );
        }
    }
}

#[test]
fn changing_any_measured_digest_of_a_real_log_is_refused_naming_its_pcr() {
    for dir in fixture_dirs() {
        let quote = verified_quote(&dir);
        let log = parsed(&read(&dir, "binary_bios_measurements"));
        for (index, event) in log.events.iter().enumerate() {
            if event.event_type == EV_NO_ACTION {
                continue;
            }
            let mut tampered = log.clone();
            let digest = &mut tampered.events[index].digests;
            let sha256 = digest.iter_mut().find(|(alg, _)| *alg == SHA256).unwrap();
            sha256.1[0] ^= 0x80;
            let error = verify_event_log(&tampered, &quote.pcr_values).unwrap_err();
            assert!(
                matches!(error, EventLogError::PcrMismatch { bank: HashAlg::Sha256, pcr, .. } if u32::from(pcr) == event.pcr),
                "{}: event {index}: {error:?}",
                dir.display()
            );
        }
    }
}
