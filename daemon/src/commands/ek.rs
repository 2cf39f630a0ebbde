//! `attestd ek show`: what the TPM's endorsement key is and who certified it.

use std::path::Path;

use attestd_attestors::tpm::{Tpm, TpmConfig};
use attestd_verifier::ek_cert::{parse_pem_bundle, verify_ek_certificate};
use attestd_verifier::tpm2::{HashAlg, TpmPublic};

use super::{write_files, Failure};
use crate::cli::EkArgs;

pub async fn show(args: EkArgs) -> Result<(), Failure> {
    let algorithm = args.ek_algorithm;
    let ek = Tpm::read_ek(
        args.tcti.clone(),
        algorithm,
        TpmConfig::default().request_timeout,
    )
    .await
    .map_err(Failure::tpm)?;
    let public = TpmPublic::parse(&ek.public).map_err(Failure::verification)?;
    let spki = public.spki_der().ok_or_else(|| {
        Failure::verification("the EK's key type has no SubjectPublicKeyInfo form")
    })?;
    println!("EK           {algorithm}");
    // The EK's identity everywhere in attestd: SHA-256 of its SubjectPublicKeyInfo,
    // which operators can also compute with openssl from a PEM.
    let hash = hex::encode(HashAlg::Sha256.digest(&spki));
    println!("public key   sha256:{hash}");
    println!("allowlist    {hash}");
    match &ek.certificate {
        Some(cert) => print_certificate(cert),
        None => println!(
            "certificate  none in NV 0x{:08x}",
            algorithm.certificate_nv_index()
        ),
    }
    println!(
        "chain        {} certificate(s) in NV 0x01c00100..",
        ek.chain.len()
    );
    if let Some(roots) = &args.roots {
        let cert = ek
            .certificate
            .as_deref()
            .ok_or_else(|| Failure::verification("the TPM holds no EK certificate to verify"))?;
        let roots = read_bundle(roots)?;
        let mut intermediates = ek.chain.clone();
        if let Some(path) = &args.intermediates {
            intermediates.extend(read_bundle(path)?);
        }
        let verified = verify_ek_certificate(cert, &intermediates, &roots, unix_now())
            .map_err(Failure::verification)?;
        verified.matches(&public).map_err(Failure::verification)?;
        println!("verified     attestd-verifier: EK certificate chains to the given roots and certifies this EK");
    }
    if let Some(dir) = &args.out {
        let mut files: Vec<(String, &[u8])> = vec![("ek.pub".into(), &ek.public)];
        if let Some(cert) = &ek.certificate {
            files.push(("ek-cert.der".into(), cert));
        }
        for (n, cert) in ek.chain.iter().enumerate() {
            files.push((format!("ek-chain-{n}.der"), cert));
        }
        let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), *b)).collect();
        write_files(dir, &borrowed)?;
        println!("wrote        {}", dir.display());
    }
    if let Some(cert) = &ek.certificate {
        print!(
            "{}",
            pem::encode(&pem::Pem::new("CERTIFICATE", cert.clone()))
        );
    }
    Ok(())
}

/// The certificate's subject, issuer, validity and serial. It comes from the
/// TPM's NV, so a certificate that does not parse is reported, not trusted.
fn print_certificate(der: &[u8]) {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            println!(
                "certificate  subject  {}",
                printable(&cert.subject().to_string())
            );
            println!(
                "             issuer   {}",
                printable(&cert.issuer().to_string())
            );
            let validity = cert.validity();
            println!(
                "             valid    {} to {}",
                validity.not_before, validity.not_after
            );
            println!("             serial   {}", cert.raw_serial_as_string());
        }
        Err(error) => println!(
            "certificate  {} bytes of DER that do not parse: {error}",
            der.len()
        ),
    }
}

/// Names in a certificate are attacker-chosen bytes: no control characters
/// reach the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn read_bundle(path: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    let bytes = std::fs::read(path).map_err(|e| Failure::input(path.display(), e))?;
    parse_pem_bundle(&bytes).map_err(|e| Failure::input(path.display(), e))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
