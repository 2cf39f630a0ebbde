//! Value types shared by the TPM operations: key algorithms, PCR selections and the
//! results handed back to callers. Plain data; nothing here touches the TPM.

use std::fmt;
use std::str::FromStr;

use tss_esapi::interface_types::algorithm::HashingAlgorithm;

/// Endorsement key types defined by the TCG EK Credential Profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EkAlgorithm {
    /// Template L-1: RSA-2048, SHA-256, AES-128-CFB. Certificate at NV 0x01c00002.
    Rsa2048,
    /// Template L-2: ECC NIST P-256, SHA-256, AES-128-CFB. Certificate at NV 0x01c0000a.
    EccP256,
    /// Template H-3: ECC NIST P-384, SHA-384, AES-256-CFB. Certificate at NV 0x01c00016.
    EccP384,
}

impl EkAlgorithm {
    pub const ALL: [EkAlgorithm; 3] = [
        EkAlgorithm::Rsa2048,
        EkAlgorithm::EccP256,
        EkAlgorithm::EccP384,
    ];

    /// The NV index where the manufacturer stores this EK's certificate.
    pub fn certificate_nv_index(self) -> u32 {
        match self {
            EkAlgorithm::Rsa2048 => 0x01c0_0002,
            EkAlgorithm::EccP256 => 0x01c0_000a,
            EkAlgorithm::EccP384 => 0x01c0_0016,
        }
    }
}

impl fmt::Display for EkAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EkAlgorithm::Rsa2048 => "rsa2048",
            EkAlgorithm::EccP256 => "ecc-p256",
            EkAlgorithm::EccP384 => "ecc-p384",
        })
    }
}

impl FromStr for EkAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rsa2048" | "rsa" => Ok(EkAlgorithm::Rsa2048),
            "ecc-p256" | "ecc256" => Ok(EkAlgorithm::EccP256),
            "ecc-p384" | "ecc384" => Ok(EkAlgorithm::EccP384),
            other => Err(format!(
                "unknown EK algorithm \"{other}\"; expected rsa2048, ecc-p256 or ecc-p384"
            )),
        }
    }
}

/// Attestation key types. All are restricted signing keys with SHA-256.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AkAlgorithm {
    /// ECDSA over NIST P-256: the default, and the fastest on most TPMs.
    #[default]
    EccP256,
    /// RSA-2048 with RSASSA-PKCS1-v1_5.
    Rsa2048,
    /// RSA-2048 with RSASSA-PSS.
    Rsa2048Pss,
}

impl fmt::Display for AkAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AkAlgorithm::EccP256 => "ecc-p256",
            AkAlgorithm::Rsa2048 => "rsa2048",
            AkAlgorithm::Rsa2048Pss => "rsa2048-pss",
        })
    }
}

impl FromStr for AkAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ecc-p256" | "ecc" => Ok(AkAlgorithm::EccP256),
            "rsa2048" | "rsa" => Ok(AkAlgorithm::Rsa2048),
            "rsa2048-pss" | "rsapss" => Ok(AkAlgorithm::Rsa2048Pss),
            other => Err(format!(
                "unknown AK algorithm \"{other}\"; expected ecc-p256, rsa2048 or rsa2048-pss"
            )),
        }
    }
}

/// A PCR bank, named by its hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PcrBank {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl PcrBank {
    pub fn digest_len(self) -> usize {
        match self {
            PcrBank::Sha1 => 20,
            PcrBank::Sha256 => 32,
            PcrBank::Sha384 => 48,
            PcrBank::Sha512 => 64,
        }
    }

    /// The bank whose hash has this TPM_ALG_ID.
    pub fn from_alg_id(alg_id: u16) -> Option<PcrBank> {
        [
            PcrBank::Sha1,
            PcrBank::Sha256,
            PcrBank::Sha384,
            PcrBank::Sha512,
        ]
        .into_iter()
        .find(|bank| bank.alg_id() == alg_id)
    }

    /// TPM_ALG_ID of the bank's hash.
    pub fn alg_id(self) -> u16 {
        match self {
            PcrBank::Sha1 => 0x0004,
            PcrBank::Sha256 => 0x000b,
            PcrBank::Sha384 => 0x000c,
            PcrBank::Sha512 => 0x000d,
        }
    }

    pub(crate) fn from_hashing_algorithm(alg: HashingAlgorithm) -> Option<PcrBank> {
        match alg {
            HashingAlgorithm::Sha1 => Some(PcrBank::Sha1),
            HashingAlgorithm::Sha256 => Some(PcrBank::Sha256),
            HashingAlgorithm::Sha384 => Some(PcrBank::Sha384),
            HashingAlgorithm::Sha512 => Some(PcrBank::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for PcrBank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PcrBank::Sha1 => "sha1",
            PcrBank::Sha256 => "sha256",
            PcrBank::Sha384 => "sha384",
            PcrBank::Sha512 => "sha512",
        })
    }
}

impl FromStr for PcrBank {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "sha1" => Ok(PcrBank::Sha1),
            "sha256" => Ok(PcrBank::Sha256),
            "sha384" => Ok(PcrBank::Sha384),
            "sha512" => Ok(PcrBank::Sha512),
            other => Err(format!(
                "unknown PCR bank \"{other}\"; expected sha1, sha256, sha384 or sha512"
            )),
        }
    }
}

/// The highest PCR index a PC Client TPM has.
pub const MAX_PCR_INDEX: u8 = 23;

/// Which PCRs to quote or read, bank by bank, in the order given.
///
/// Written as tpm2-tools writes it: `sha256:0,1,2+sha1:0,7`, or `sha256:all`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcrSelection {
    banks: Vec<(PcrBank, Vec<u8>)>,
}

impl PcrSelection {
    /// Builds a selection; indices are sorted and deduplicated, empty banks dropped.
    pub fn new(banks: Vec<(PcrBank, Vec<u8>)>) -> Result<Self, String> {
        let mut normalised: Vec<(PcrBank, Vec<u8>)> = Vec::new();
        for (bank, mut indices) in banks {
            if let Some(bad) = indices.iter().find(|i| **i > MAX_PCR_INDEX) {
                return Err(format!("PCR index {bad} is out of range 0-{MAX_PCR_INDEX}"));
            }
            if normalised.iter().any(|(seen, _)| *seen == bank) {
                return Err(format!("bank {bank} is listed twice"));
            }
            indices.sort_unstable();
            indices.dedup();
            if !indices.is_empty() {
                normalised.push((bank, indices));
            }
        }
        if normalised.is_empty() {
            return Err("the PCR selection is empty".to_owned());
        }
        Ok(PcrSelection { banks: normalised })
    }

    pub fn banks(&self) -> &[(PcrBank, Vec<u8>)] {
        &self.banks
    }
}

impl FromStr for PcrSelection {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut banks = Vec::new();
        for part in s.split('+').filter(|p| !p.trim().is_empty()) {
            let (bank, list) = part
                .split_once(':')
                .ok_or_else(|| format!("\"{part}\" should look like sha256:0,1,2"))?;
            let bank: PcrBank = bank.trim().parse()?;
            let indices = if list.trim() == "all" {
                (0..=MAX_PCR_INDEX).collect()
            } else {
                list.split(',')
                    .map(|i| {
                        i.trim()
                            .parse::<u8>()
                            .map_err(|_| format!("\"{i}\" is not a PCR index"))
                    })
                    .collect::<Result<Vec<u8>, String>>()?
            };
            banks.push((bank, indices));
        }
        PcrSelection::new(banks)
    }
}

impl fmt::Display for PcrSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, (bank, indices)) in self.banks.iter().enumerate() {
            if n > 0 {
                f.write_str("+")?;
            }
            write!(f, "{bank}:")?;
            for (m, index) in indices.iter().enumerate() {
                if m > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{index}")?;
            }
        }
        Ok(())
    }
}

/// PCR values read from the TPM, bank by bank, indices ascending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PcrValues {
    pub banks: Vec<PcrBankValues>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcrBankValues {
    pub bank: PcrBank,
    /// (PCR index, digest), ascending by index.
    pub values: Vec<(u8, Vec<u8>)>,
}

impl PcrValues {
    pub fn get(&self, bank: PcrBank, index: u8) -> Option<&[u8]> {
        self.banks
            .iter()
            .find(|b| b.bank == bank)?
            .values
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, v)| v.as_slice())
    }
}

/// An EK's public area and, when present, its certificate and chain from NV.
#[derive(Clone, Debug)]
pub struct EkInfo {
    pub algorithm: EkAlgorithm,
    /// Marshalled TPMT_PUBLIC.
    pub public: Vec<u8>,
    /// The EK certificate, DER, without NV padding.
    pub certificate: Option<Vec<u8>>,
    /// Certificates from the chain indices (0x01c00100 onwards), DER, in index order.
    pub chain: Vec<Vec<u8>>,
}

/// The attestation key as a verifier needs it.
#[derive(Clone, Debug)]
pub struct AkInfo {
    pub algorithm: AkAlgorithm,
    /// Marshalled TPMT_PUBLIC.
    pub public: Vec<u8>,
    /// TPM name: nameAlg (2 bytes) followed by the digest of the public area.
    pub name: Vec<u8>,
}

/// A quote and the PCR values it covers.
#[derive(Clone, Debug)]
pub struct Quote {
    /// Marshalled TPMS_ATTEST, exactly the bytes the AK signed.
    pub attest: Vec<u8>,
    /// Marshalled TPMT_SIGNATURE.
    pub signature: Vec<u8>,
    /// The selection the TPM reports it quoted, in its order.
    pub selection: PcrSelection,
    /// Values of the quoted PCRs, read right after the quote and checked against its digest.
    pub pcrs: PcrValues,
}
