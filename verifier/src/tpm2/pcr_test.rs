//! Unit tests for PCR selection parsing and the PCR value map.

use super::*;

#[test]
fn selection_bitmap_lists_pcrs_in_ascending_order() {
    // count=1, sha256, 3 bytes: PCR 0, 1, 16 (0x03, 0x00, 0x01)
    let bytes = [0, 0, 0, 1, 0x00, 0x0b, 3, 0x03, 0x00, 0x01];
    let list = parse_pcr_selection_list(&bytes).expect("valid selection");
    assert_eq!(
        list,
        vec![PcrSelection {
            hash: HashAlg::Sha256,
            pcrs: vec![0, 1, 16]
        }]
    );
}

#[test]
fn selection_keeps_bank_order_as_given() {
    let bytes = [
        0, 0, 0, 2, 0x00, 0x0b, 3, 0x80, 0x00, 0x00, 0x00, 0x04, 3, 0x01, 0x00, 0x00,
    ];
    let list = parse_pcr_selection_list(&bytes).expect("valid selection");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].hash, HashAlg::Sha256);
    assert_eq!(list[0].pcrs, vec![7]);
    assert_eq!(list[1].hash, HashAlg::Sha1);
    assert_eq!(list[1].pcrs, vec![0]);
}

#[test]
fn rejects_absurd_bank_count_without_allocating() {
    let bytes = [0xff, 0xff, 0xff, 0xff];
    assert!(matches!(
        parse_pcr_selection_list(&bytes),
        Err(ParseError::TooLarge {
            field: "TPML_PCR_SELECTION.count",
            ..
        })
    ));
}

#[test]
fn rejects_unknown_bank_algorithm() {
    let bytes = [0, 0, 0, 1, 0x00, 0x12, 3, 0x01, 0x00, 0x00];
    assert_eq!(
        parse_pcr_selection_list(&bytes),
        Err(ParseError::UnsupportedAlgorithm {
            field: "TPMS_PCR_SELECTION.hash",
            alg: 0x0012
        })
    );
}

#[test]
fn highest_bitmap_bit_maps_to_pcr_255() {
    let mut bitmap = [0u8; 32];
    bitmap[31] = 0x80;
    assert_eq!(bitmap_to_indices(&bitmap), vec![255]);
}

#[test]
fn pcr_values_iterate_in_bank_then_index_order() {
    let mut values = PcrValues::new();
    values.insert(HashAlg::Sha256, 7, vec![7; 32]);
    values.insert(HashAlg::Sha1, 9, vec![9; 20]);
    values.insert(HashAlg::Sha256, 0, vec![0; 32]);
    let order: Vec<_> = values
        .iter()
        .map(|(bank, index, _)| (bank, index))
        .collect();
    assert_eq!(
        order,
        vec![
            (HashAlg::Sha1, 9),
            (HashAlg::Sha256, 0),
            (HashAlg::Sha256, 7)
        ]
    );
    assert_eq!(values.get(HashAlg::Sha256, 7), Some(&[7u8; 32][..]));
    assert_eq!(values.get(HashAlg::Sha384, 7), None);
}
