//! `attestd quote`: one quote, exported in tpm2-tools formats and verified by our
//! own verifier before we claim success.

use std::fmt::Write as _;

use attestd_attestors::tpm::PcrValues;
use attestd_verifier::quote::verify_quote;
use attestd_verifier::tpm2::{self as verifier_tpm2, HashAlg, TpmPublic};

use super::{open_tpm, write_files, Failure};
use crate::cli::QuoteArgs;
use attestd::tpm2_files::{decode_pcrs, encode_pcrs};

pub async fn run(args: QuoteArgs) -> Result<(), Failure> {
    let tpm = open_tpm(&args.tpm).await?;
    let quote = tpm
        .quote(args.nonce.0.clone(), args.pcrs.clone())
        .await
        .map_err(Failure::tpm)?;
    let ak = tpm.ak();
    let ak_public = TpmPublic::parse(&ak.public).map_err(Failure::verification)?;
    let spki = ak_public.spki_der().ok_or_else(|| {
        Failure::verification("the AK's key type has no SubjectPublicKeyInfo form")
    })?;
    let ak_pem = pem::encode(&pem::Pem::new("PUBLIC KEY", spki));
    let mut ak_tpm2b = (ak.public.len() as u16).to_be_bytes().to_vec();
    ak_tpm2b.extend_from_slice(&ak.public);
    let pcrs_file =
        encode_pcrs(&quote.selection, &quote.pcrs).map_err(|e| Failure::output("quote.pcrs", e))?;
    write_files(
        &args.out,
        &[
            ("ak.pem", ak_pem.as_bytes()),
            ("ak.pub", &ak_tpm2b),
            ("ak.name", &ak.name),
            ("quote.msg", &quote.attest),
            ("quote.sig", &quote.signature),
            ("quote.pcrs", &pcrs_file),
        ],
    )?;

    // Verify what landed on disk, not what is in memory: the files are the product.
    let read = |name: &str| {
        let path = args.out.join(name);
        std::fs::read(&path).map_err(|e| Failure::input(path.display(), e))
    };
    let (_, pcrs_on_disk) =
        decode_pcrs(&read("quote.pcrs")?).map_err(|e| Failure::input("quote.pcrs", e))?;
    verify_quote(
        &ak_public,
        &read("quote.msg")?,
        &read("quote.sig")?,
        &args.nonce.0,
        &to_verifier_pcrs(&pcrs_on_disk),
    )
    .map_err(Failure::verification)?;

    let out = args.out.display();
    let nonce = hex::encode(&args.nonce.0);
    let mut report = String::new();
    let _ = writeln!(
        report,
        "AK          {} name {}",
        ak.algorithm,
        hex::encode(&ak.name)
    );
    let _ = writeln!(report, "quoted      {}", quote.selection);
    for bank in &quote.pcrs.banks {
        for (index, value) in &bank.values {
            let _ = writeln!(report, "  {}:{index:<2} {}", bank.bank, hex::encode(value));
        }
    }
    let _ = writeln!(report, "nonce       {nonce}");
    let _ = writeln!(
        report,
        "wrote       {out}/{{ak.pem,ak.pub,ak.name,quote.msg,quote.sig,quote.pcrs}}"
    );
    let _ = writeln!(
        report,
        "verified    attestd-verifier: AK signature, nonce and PCR digest match"
    );
    let _ = writeln!(
        report,
        "cross-check tpm2_checkquote -u {out}/ak.pem -m {out}/quote.msg -s {out}/quote.sig \
         -f {out}/quote.pcrs -g sha256 -q {nonce}"
    );
    print!("{report}");
    Ok(())
}

/// The verifier has its own PCR types (it links nothing of the TSS); copy across.
pub(crate) fn to_verifier_pcrs(values: &PcrValues) -> verifier_tpm2::PcrValues {
    let mut out = verifier_tpm2::PcrValues::new();
    for bank in &values.banks {
        if let Some(hash) = HashAlg::from_tpm(bank.bank.alg_id()) {
            for (index, value) in &bank.values {
                out.insert(hash, *index, value.clone());
            }
        }
    }
    out
}
