//! Marshals TPM structures by hand and signs them with a software ECDSA key,
//! so tests can present validly signed evidence with chosen defects.

use attestd_verifier::TpmPublic;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

pub const TPM_GENERATED: u32 = 0xff54_4347;
pub const ST_ATTEST_QUOTE: u16 = 0x8018;
pub const ST_ATTEST_CERTIFY: u16 = 0x8017;
/// restricted | sign | fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth
pub const AK_ATTRIBUTES: u32 = 0x0005_0072;

pub fn tpm2b(bytes: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(bytes.len())
        .expect("fits")
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A P-256 ECDSA/SHA-256 key standing in for a TPM AK.
pub struct SoftAk {
    key_pair: EcdsaKeyPair,
    pub public: TpmPublic,
}

impl SoftAk {
    pub fn new(attributes: u32) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("key generation");
        let key_pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .expect("key loads");
        let point = key_pair.public_key().as_ref();
        let (x, y) = point[1..].split_at(32);
        let mut raw = Vec::new();
        raw.extend_from_slice(&0x0023u16.to_be_bytes()); // ECC
        raw.extend_from_slice(&0x000bu16.to_be_bytes()); // nameAlg SHA-256
        raw.extend_from_slice(&attributes.to_be_bytes());
        raw.extend_from_slice(&tpm2b(&[])); // authPolicy
        raw.extend_from_slice(&0x0010u16.to_be_bytes()); // symmetric NULL
        raw.extend_from_slice(&0x0018u16.to_be_bytes()); // scheme ECDSA
        raw.extend_from_slice(&0x000bu16.to_be_bytes()); // ... with SHA-256
        raw.extend_from_slice(&0x0003u16.to_be_bytes()); // NIST P-256
        raw.extend_from_slice(&0x0010u16.to_be_bytes()); // kdf NULL
        raw.extend_from_slice(&tpm2b(x));
        raw.extend_from_slice(&tpm2b(y));
        let public = TpmPublic::parse(&raw).expect("built public area parses");
        Self { key_pair, public }
    }

    /// A marshalled TPMT_SIGNATURE (ECDSA, SHA-256) over `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature = self
            .key_pair
            .sign(&SystemRandom::new(), message)
            .expect("signing");
        let (r, s) = signature.as_ref().split_at(32);
        let mut out = Vec::new();
        out.extend_from_slice(&0x0018u16.to_be_bytes());
        out.extend_from_slice(&0x000bu16.to_be_bytes());
        out.extend_from_slice(&tpm2b(r));
        out.extend_from_slice(&tpm2b(s));
        out
    }
}

/// A TPMS_ATTEST with a quote body; fields default to a plausible quote.
pub struct AttestBuilder {
    pub magic: u32,
    pub attest_type: u16,
    pub extra_data: Vec<u8>,
    /// (TPM_ALG_ID of the bank, PCR bitmap)
    pub selection: Vec<(u16, Vec<u8>)>,
    pub pcr_digest: Vec<u8>,
}

impl AttestBuilder {
    pub fn quote(extra_data: &[u8], selection: Vec<(u16, Vec<u8>)>, pcr_digest: Vec<u8>) -> Self {
        Self {
            magic: TPM_GENERATED,
            attest_type: ST_ATTEST_QUOTE,
            extra_data: extra_data.to_vec(),
            selection,
            pcr_digest,
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.magic.to_be_bytes());
        out.extend_from_slice(&self.attest_type.to_be_bytes());
        let mut signer = vec![0x00, 0x0b];
        signer.extend_from_slice(&[0x5a; 32]);
        out.extend_from_slice(&tpm2b(&signer));
        out.extend_from_slice(&tpm2b(&self.extra_data));
        out.extend_from_slice(&1234u64.to_be_bytes()); // clock
        out.extend_from_slice(&1u32.to_be_bytes()); // resetCount
        out.extend_from_slice(&0u32.to_be_bytes()); // restartCount
        out.push(1); // safe
        out.extend_from_slice(&0x2019_1023_0016_3636u64.to_be_bytes());
        out.extend_from_slice(
            &u32::try_from(self.selection.len())
                .expect("fits")
                .to_be_bytes(),
        );
        for (bank, bitmap) in &self.selection {
            out.extend_from_slice(&bank.to_be_bytes());
            out.push(u8::try_from(bitmap.len()).expect("fits"));
            out.extend_from_slice(bitmap);
        }
        out.extend_from_slice(&tpm2b(&self.pcr_digest));
        out
    }
}
