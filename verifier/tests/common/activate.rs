//! A software TPM2_ActivateCredential written independently of the crate
//! (RustCrypto hmac/sha2 instead of ring), so a credential made by the crate is
//! checked by different code, and that code is itself checked by tpm2-tools.

use aes::{Aes128, Aes192, Aes256};
use attestd_verifier::tpm2::{PublicKey, TpmPublic};
use attestd_verifier::HashAlg;
use cfb_mode::cipher::{AsyncStreamCipher, KeyIvInit};
use hmac::{Hmac, Mac};
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Oaep, RsaPrivateKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The EK private half the test knows.
pub enum EkPrivate {
    Rsa(Box<RsaPrivateKey>),
    P256(p256::SecretKey),
    P384(p384::SecretKey),
}

impl EkPrivate {
    pub fn rsa_from_pkcs8(der: &[u8]) -> Self {
        Self::Rsa(Box::new(
            RsaPrivateKey::from_pkcs8_der(der).expect("PKCS#8 RSA key"),
        ))
    }

    pub fn ecc_from_hex(hex_scalar: &str) -> Self {
        let scalar = hex::decode(hex_scalar.trim()).expect("hex scalar");
        match scalar.len() {
            32 => Self::P256(p256::SecretKey::from_slice(&scalar).expect("P-256 scalar")),
            48 => Self::P384(p384::SecretKey::from_slice(&scalar).expect("P-384 scalar")),
            other => panic!("unexpected scalar length {other}"),
        }
    }
}

/// Splits a tpm2-tools credential file into (TPM2B_ID_OBJECT contents,
/// TPM2B_ENCRYPTED_SECRET contents).
pub fn split_tpm2_tools_credential(file: &[u8]) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(&file[..4], &[0xba, 0xdc, 0xc0, 0xde], "magic");
    assert_eq!(&file[4..8], &[0, 0, 0, 1], "version");
    let mut rest = &file[8..];
    let mut take = || {
        let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let value = rest[2..2 + size].to_vec();
        rest = &rest[2 + size..];
        value
    };
    let blob = take();
    let secret = take();
    assert!(rest.is_empty(), "trailing bytes in credential file");
    (blob, secret)
}

fn hash(alg: HashAlg, parts: &[&[u8]]) -> Vec<u8> {
    fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
        let mut digest = D::new();
        for part in parts {
            digest.update(part);
        }
        digest.finalize().to_vec()
    }
    match alg {
        HashAlg::Sha256 => run::<Sha256>(parts),
        HashAlg::Sha384 => run::<Sha384>(parts),
        HashAlg::Sha512 => run::<Sha512>(parts),
        HashAlg::Sha1 => panic!("SHA-1 not used"),
    }
}

fn hmac(alg: HashAlg, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("any key size");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match alg {
        HashAlg::Sha256 => run::<Hmac<Sha256>>(key, parts),
        HashAlg::Sha384 => run::<Hmac<Sha384>>(key, parts),
        HashAlg::Sha512 => run::<Hmac<Sha512>>(key, parts),
        HashAlg::Sha1 => panic!("SHA-1 not used"),
    }
}

fn kdfa(alg: HashAlg, key: &[u8], label: &[u8], u: &[u8], v: &[u8], bits: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut counter = 1u32;
    while out.len() * 8 < bits as usize {
        out.extend(hmac(
            alg,
            key,
            &[
                &counter.to_be_bytes(),
                label,
                &[0],
                u,
                v,
                &bits.to_be_bytes(),
            ],
        ));
        counter += 1;
    }
    out.truncate(bits as usize / 8);
    out
}

fn kdfe(alg: HashAlg, z: &[u8], label: &[u8], u: &[u8], v: &[u8], bits: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut counter = 1u32;
    while out.len() * 8 < bits as usize {
        out.extend(hash(alg, &[&counter.to_be_bytes(), z, label, &[0], u, v]));
        counter += 1;
    }
    out.truncate(bits as usize / 8);
    out
}

fn split_point(point: &[u8]) -> (&[u8], &[u8]) {
    let x_len = usize::from(u16::from_be_bytes([point[0], point[1]]));
    let x = &point[2..2 + x_len];
    let rest = &point[2 + x_len..];
    let y_len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
    assert_eq!(rest.len(), 2 + y_len, "TPMS_ECC_POINT has trailing bytes");
    (x, &rest[2..])
}

fn recover_seed(
    ek: &TpmPublic,
    private: &EkPrivate,
    encrypted_secret: &[u8],
) -> Result<Vec<u8>, String> {
    let name_alg = ek.name_alg;
    let bits = u32::try_from(name_alg.digest_len() * 8).expect("small");
    match private {
        EkPrivate::Rsa(key) => {
            let padding = match name_alg {
                HashAlg::Sha256 => Oaep::new_with_label::<Sha256, _>("IDENTITY\0"),
                HashAlg::Sha384 => Oaep::new_with_label::<Sha384, _>("IDENTITY\0"),
                _ => panic!("unexpected EK nameAlg"),
            };
            key.decrypt(padding, encrypted_secret)
                .map_err(|error| format!("OAEP decryption failed: {error}"))
        }
        EkPrivate::P256(key) => {
            let (x, y) = split_point(encrypted_secret);
            let ephemeral = p256::PublicKey::from_sec1_bytes(&[&[4u8][..], x, y].concat())
                .map_err(|_| "ephemeral point invalid".to_string())?;
            let z = p256::ecdh::diffie_hellman(key.to_nonzero_scalar(), ephemeral.as_affine());
            let ek_x = ecc_x(ek);
            Ok(kdfe(
                name_alg,
                z.raw_secret_bytes(),
                b"IDENTITY",
                x,
                &ek_x,
                bits,
            ))
        }
        EkPrivate::P384(key) => {
            let (x, y) = split_point(encrypted_secret);
            let ephemeral = p384::PublicKey::from_sec1_bytes(&[&[4u8][..], x, y].concat())
                .map_err(|_| "ephemeral point invalid".to_string())?;
            let z = p384::ecdh::diffie_hellman(key.to_nonzero_scalar(), ephemeral.as_affine());
            let ek_x = ecc_x(ek);
            Ok(kdfe(
                name_alg,
                z.raw_secret_bytes(),
                b"IDENTITY",
                x,
                &ek_x,
                bits,
            ))
        }
    }
}

fn ecc_x(ek: &TpmPublic) -> Vec<u8> {
    match &ek.key {
        PublicKey::Ecc { x, .. } => x.clone(),
        PublicKey::Rsa { .. } => panic!("not an ECC EK"),
    }
}

/// TPM2_ActivateCredential in software: returns the secret, or why the TPM
/// would have refused (wrong key, wrong name, tampered blob).
pub fn activate(
    ek: &TpmPublic,
    private: &EkPrivate,
    object_name: &[u8],
    credential_blob: &[u8],
    encrypted_secret: &[u8],
) -> Result<Vec<u8>, String> {
    let name_alg = ek.name_alg;
    let seed = recover_seed(ek, private, encrypted_secret)?;
    let hmac_bits = u32::try_from(name_alg.digest_len() * 8).expect("small");
    let hmac_key = kdfa(name_alg, &seed, b"INTEGRITY", b"", b"", hmac_bits);

    let hmac_len = usize::from(u16::from_be_bytes([credential_blob[0], credential_blob[1]]));
    let integrity = &credential_blob[2..2 + hmac_len];
    let enc_identity = &credential_blob[2 + hmac_len..];
    if hmac(name_alg, &hmac_key, &[enc_identity, object_name]) != integrity {
        return Err("integrity HMAC mismatch".into());
    }

    let sym_bits = u32::from(
        ek.parameters
            .symmetric()
            .expect("EK has a symmetric definition")
            .key_bits,
    );
    let sym_key = kdfa(name_alg, &seed, b"STORAGE", object_name, b"", sym_bits);
    let mut plain = enc_identity.to_vec();
    let iv = [0u8; 16];
    match sym_key.len() {
        16 => cfb_mode::Decryptor::<Aes128>::new_from_slices(&sym_key, &iv)
            .unwrap()
            .decrypt(&mut plain),
        24 => cfb_mode::Decryptor::<Aes192>::new_from_slices(&sym_key, &iv)
            .unwrap()
            .decrypt(&mut plain),
        32 => cfb_mode::Decryptor::<Aes256>::new_from_slices(&sym_key, &iv)
            .unwrap()
            .decrypt(&mut plain),
        other => panic!("unexpected AES key length {other}"),
    }
    let size = usize::from(u16::from_be_bytes([plain[0], plain[1]]));
    if plain.len() != 2 + size {
        return Err("decrypted TPM2B_DIGEST has the wrong size".into());
    }
    Ok(plain[2..].to_vec())
}
