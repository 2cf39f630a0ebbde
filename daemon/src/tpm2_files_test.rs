//! The PCR file codec round-trips and refuses malformed input.

use super::*;
use attestd_attestors::tpm::PcrBankValues;

fn sample(indices: &[u8]) -> (PcrSelection, PcrValues) {
    let selection = PcrSelection::new(vec![(PcrBank::Sha256, indices.to_vec())]).unwrap();
    let values = PcrValues {
        banks: vec![PcrBankValues {
            bank: PcrBank::Sha256,
            values: indices.iter().map(|i| (*i, vec![*i; 32])).collect(),
        }],
    };
    (selection, values)
}

#[test]
fn three_pcrs_make_the_668_byte_file_tpm2_quote_writes() {
    let (selection, values) = sample(&[0, 1, 2]);
    let bytes = encode_pcrs(&selection, &values).unwrap();
    assert_eq!(bytes.len(), 668);
    assert_eq!(&bytes[..8], &[1, 0, 0, 0, 0x0b, 0x00, 3, 0x07]);
    assert_eq!(decode_pcrs(&bytes).unwrap(), (selection, values));
}

#[test]
fn more_than_eight_pcrs_span_several_digest_blocks() {
    let (selection, values) = sample(&(0..=23).collect::<Vec<u8>>());
    let bytes = encode_pcrs(&selection, &values).unwrap();
    assert_eq!(bytes.len(), SELECTION_BYTES + 4 + 3 * DIGEST_BLOCK_BYTES);
    assert_eq!(decode_pcrs(&bytes).unwrap(), (selection, values));
}

#[test]
fn malformed_files_are_refused_without_panicking() {
    let (selection, values) = sample(&[0, 7]);
    let good = encode_pcrs(&selection, &values).unwrap();
    assert!(matches!(
        decode_pcrs(&good[..100]),
        Err(PcrFileError::Truncated(100))
    ));
    let mut too_many_banks = good.clone();
    too_many_banks[0] = 17;
    assert!(decode_pcrs(&too_many_banks).is_err());
    let mut huge_digest = good.clone();
    huge_digest[SELECTION_BYTES + 8] = 0xff;
    assert!(decode_pcrs(&huge_digest).is_err());
    let mut extra = good.clone();
    extra.push(0);
    assert!(decode_pcrs(&extra).is_err());
    for cut in 0..good.len() {
        let _ = decode_pcrs(&good[..cut]);
    }
}
